"""Client side of encrypted /serverkeygen (RFC 7030 4.4.1.2, 4.4.2) for est.sh, built on Python
`cryptography` and hand-written DER, not on privca's code:

  serverkey.py csrs DIR      RSA key DIR/kgenc.key and three base64 CSRs: kgenc.b64 (its own key
                             named by AsymmetricDecryptKeyIdentifier), kgenc-psk.b64
                             (DecryptKeyIdentifier) and kgenc-unknown.b64 (an identifier naming
                             no key the server knows)
  serverkey.py parts MP CTYPE DIR   checks the multipart answer; DIR/kgenc.env.der, DIR/kgenc.p7b64
  serverkey.py wrap IN OUT   a bare SignedData (what the envelope holds) as a ContentInfo
  serverkey.py unpack IN OUT the single OneAsymmetricKey of an AsymmetricKeyPackage (PKCS#8 DER)
"""
import base64
import email
import hashlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

ASYMM_DECRYPT_KEY_ID = x509.ObjectIdentifier("1.2.840.113549.1.9.16.2.54")
DECRYPT_KEY_ID = x509.ObjectIdentifier("1.2.840.113549.1.9.16.2.37")
SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def read_tlv(der):
    """(tag, content, rest) of the first TLV."""
    tag, first = der[0], der[1]
    if first < 0x80:
        start, length = 2, first
    else:
        n = first & 0x7F
        start, length = 2 + n, int.from_bytes(der[2 : 2 + n], "big")
    return tag, der[start : start + length], der[start + length :]


def csrs(out):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    open(f"{out}/kgenc.key", "wb").write(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    # RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (the PKCS#1 RSAPublicKey).
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    key_id = hashlib.sha1(pkcs1).digest()
    for name, oid, value in [
        ("kgenc", ASYMM_DECRYPT_KEY_ID, key_id),
        ("kgenc-psk", DECRYPT_KEY_ID, b"a pre-shared key"),
        ("kgenc-unknown", ASYMM_DECRYPT_KEY_ID, hashlib.sha1(b"nobody").digest()),
    ]:
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.example.test")]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"{name}.example.test")]), critical=False)
            .add_attribute(oid, value, _tag=_ASN1Type.OctetString)
            .sign(key, hashes.SHA256())
        )
        open(f"{out}/{name}.b64", "wb").write(base64.encodebytes(csr.public_bytes(serialization.Encoding.DER)))


def parts(mp, ctype, out):
    msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + open(mp, "rb").read())
    key_part, cert_part = msg.get_payload()
    assert key_part.get_content_type() == "application/pkcs7-mime", key_part["Content-Type"]
    assert key_part.get_param("smime-type") == "server-generated-key", key_part["Content-Type"]
    assert key_part["Content-Transfer-Encoding"] == "base64"
    assert cert_part.get_param("smime-type") == "certs-only"
    open(f"{out}/kgenc.env.der", "wb").write(base64.b64decode(key_part.get_payload()))
    open(f"{out}/kgenc.p7b64", "wb").write(cert_part.get_payload().encode())


def wrap(src, dst):
    signed_data = open(src, "rb").read()
    open(dst, "wb").write(tlv(0x30, SIGNED_DATA_OID + tlv(0xA0, signed_data)))


def unpack(src, dst):
    tag, package, rest = read_tlv(open(src, "rb").read())
    assert tag == 0x30 and not rest, "AsymmetricKeyPackage is one SEQUENCE"
    tag, one_key, more = read_tlv(package)
    assert tag == 0x30 and not more, "exactly one OneAsymmetricKey"
    open(dst, "wb").write(tlv(0x30, one_key))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"csrs": csrs, "parts": parts, "wrap": wrap, "unpack": unpack}[cmd](*args)
