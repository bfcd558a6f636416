#!/usr/bin/env python3
"""Tries to read the secret part of every private key in a PKCS#11 token (PyKCS11).

    read_private.py MODULE TOKEN_LABEL PIN            one line per key, exit 0 only if every
                                                      read was refused with CKR_ATTRIBUTE_SENSITIVE
    read_private.py MODULE TOKEN_LABEL PIN --make-extractable LABEL
                                                      generates a P-256 key pair whose private key is
                                                      neither sensitive nor non-extractable (the
                                                      self-test's control: its value must be readable)

The secret part is CKA_VALUE for EC and EdDSA keys and CKA_PRIVATE_EXPONENT, CKA_PRIME_1 and
CKA_PRIME_2 for RSA keys (an RSA key has no CKA_VALUE: asking for it would be refused with
CKR_ATTRIBUTE_TYPE_INVALID whatever the key's protection, a refusal that proves nothing).
Exit 1 if any secret was read or refused for another reason, 2 on a setup error.
"""
import sys

import PyKCS11
from PyKCS11 import LowLevel


def secret_attributes(key_type):
    if key_type == PyKCS11.CKK_RSA:
        return [PyKCS11.CKA_PRIVATE_EXPONENT, PyKCS11.CKA_PRIME_1, PyKCS11.CKA_PRIME_2]
    return [PyKCS11.CKA_VALUE]


def read_attribute(session, obj, attr):
    """(rv, value bytes or None) of one C_GetAttributeValue, sized then read."""
    tmpl = LowLevel.ckattrlist(1)
    tmpl[0].SetType(attr)
    rv = session.lib.C_GetAttributeValue(session.session, obj, tmpl)
    if rv != PyKCS11.CKR_OK:
        return rv, None
    rv = session.lib.C_GetAttributeValue(session.session, obj, tmpl)
    if rv != PyKCS11.CKR_OK:
        return rv, None
    return rv, bytes(tmpl[0].GetBin())


def open_session(module, label, pin):
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == label:
            session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
            session.login(pin)
            return session
    sys.exit(f"no token labelled {label!r}")


def make_extractable(session, label):
    p256 = bytes.fromhex("06082a8648ce3d030107")
    public = [
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_LABEL, label),
        (PyKCS11.CKA_EC_PARAMS, p256),
        (PyKCS11.CKA_VERIFY, True),
    ]
    private = [
        (PyKCS11.CKA_TOKEN, True),
        (PyKCS11.CKA_PRIVATE, True),
        (PyKCS11.CKA_LABEL, label),
        (PyKCS11.CKA_SIGN, True),
        (PyKCS11.CKA_SENSITIVE, False),
        (PyKCS11.CKA_EXTRACTABLE, True),
    ]
    session.generateKeyPair(public, private, mecha=PyKCS11.MechanismECGENERATEKEYPAIR)


def main():
    if len(sys.argv) not in (4, 6):
        sys.exit(__doc__)
    module, label, pin = sys.argv[1:4]
    session = open_session(module, label, pin)
    if len(sys.argv) == 6:
        if sys.argv[4] != "--make-extractable":
            sys.exit(__doc__)
        make_extractable(session, sys.argv[5])
        return 0
    keys = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)])
    if not keys:
        print("no private key in the token")
        return 2
    bad = 0
    for obj in keys:
        key_label, key_type = session.getAttributeValue(obj, [PyKCS11.CKA_LABEL, PyKCS11.CKA_KEY_TYPE])
        for attr in secret_attributes(key_type):
            name = PyKCS11.CKA[attr]
            rv, value = read_attribute(session, obj, attr)
            if rv == PyKCS11.CKR_ATTRIBUTE_SENSITIVE:
                print(f"{key_label}: {name} refused (CKR_ATTRIBUTE_SENSITIVE)")
            elif value is not None:
                bad += 1
                print(f"{key_label}: {name} READ ({len(value)} bytes)")
            else:
                bad += 1
                print(f"{key_label}: {name} refused with {PyKCS11.CKR.get(rv, hex(rv))}, not as sensitive")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
