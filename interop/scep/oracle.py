"""The RA's decryption key is no padding oracle (Bleichenbacher's attack on PKCS#1 v1.5 key
transport). Well-formed, correctly signed PKCSReqs whose RSA-encrypted content key is
  (a) valid,
  (b) badly PKCS#1-padded (block type 1 instead of 2),
  (c) correctly padded around a 7-byte key,
  (d) a good key over a bad CBC padding,
  (e) a good key and padding over content that is no PKCS#10 request:
(a) must succeed; (b)-(e) must get CertReps byte-for-byte identical apart from the senderNonce,
signingTime and signature (the requests share transactionID and senderNonce), the same size,
and the same failInfo and failInfoText. Then the per-address limit: once the address has had
LIMIT envelopes that do not open within a minute, PKIOperation gets HTTP 429 with
Retry-After, valid requests included.

usage: oracle.py URL CHALLENGE LIMIT
Prints one line per check; exits 1 if any failed.
"""
import os
import statistics
import sys
import time

from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ, useful
from pyasn1_alt_modules import rfc5652, rfc8894

import scep_client as scep

url, challenge, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
failed = 0


def check(what, ok, detail=""):
    global failed
    print(f"  {'ok  ' if ok else 'FAIL'} {what}{'' if ok or not detail else f': {detail}'}")
    failed += 0 if ok else 1


_, ca_certs = scep.get_ca_cert(url)
ra, _ = scep.pick_ra(ca_certs)
numbers = ra.public_key().public_numbers()
size = (numbers.n.bit_length() + 7) // 8
signer_key = scep.new_rsa_key()
csr = scep.make_csr(signer_key, "oracle.example.test", ["oracle.example.test"], challenge)
signer = scep.self_signed(signer_key, csr.subject)
csr_der = csr.public_bytes(scep.serialization.Encoding.DER)


def bad_pkcs1_padding(_cek):
    """RSA of a block of type 1 (signature padding): decrypts, but is no encryption block."""
    block = b"\x00\x01" + b"\xff" * (size - 19) + b"\x00" + os.urandom(16)
    return pow(int.from_bytes(block, "big"), numbers.e, numbers.n).to_bytes(size, "big")


def seven_byte_key(_cek):
    return ra.public_key().encrypt(os.urandom(7), PKCS1v15())


def bad_cbc_padding(content):
    return content + b"\x00" * (16 - len(content) % 16)


txid = scep.transaction_id(signer_key.public_key()) + "ORACLE"
nonce = os.urandom(16)
variants = {
    "(b) bad PKCS#1 padding": (csr_der, {"encrypted_key": bad_pkcs1_padding}),
    "(c) valid padding, 7-byte key": (csr_der, {"encrypted_key": seven_byte_key}),
    "(d) good key, bad CBC padding": (csr_der, {"padded": bad_cbc_padding}),
    "(e) good key, content not PKCS#10": (os.urandom(len(csr_der)), {}),
}


def send(content, opts, **kw):
    req = scep.pki_message("PKCSReq", content, ra, signer, signer_key, envelope_opts=opts, **kw)
    start = time.perf_counter()
    status, media, body = scep.send(url, req.der, "post")
    return req, status, media, body, time.perf_counter() - start


def masked(der):
    """The CertRep with senderNonce, signingTime and signature set to zeros of their size."""
    ci = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())[0]
    sd = decoder.decode(ci["content"], asn1Spec=rfc5652.SignedData())[0]
    si = sd["signerInfos"][0]
    si["signature"] = univ.OctetString(b"\x00" * len(si["signature"]))
    for attr in si["signedAttrs"]:
        if attr["attrType"] in (rfc8894.id_senderNonce, rfc5652.id_signingTime):
            value = bytes(attr["attrValues"][0])
            attr["attrValues"][0] = rfc5652.AttributeValue(value[:2] + b"\x00" * (len(value) - 2))
    ci["content"] = encoder.encode(sd)
    return encoder.encode(ci)


req, status, media, body, _ = send(csr_der, {})
rep = scep.parse_cert_rep(body, ca_certs, signer_key, req.transaction_id, req.sender_nonce) if status == 200 else {}
check("(a) valid envelope: SUCCESS", rep.get("status") == "SUCCESS", f"HTTP {status} {rep.get('status')} "
      f"{rep.get('fail_info')} {rep.get('fail_info_text')}")

replies, times = {}, {}
for what, (content, opts) in variants.items():
    req, status, media, body, elapsed = send(content, opts, txid=txid, sender_nonce=nonce)
    try:
        rep = scep.parse_cert_rep(body, ca_certs, signer_key, txid, nonce) if status == 200 else {}
    except scep.ScepError as e:
        rep = {"error": str(e)}
    replies[what] = (status, media, len(body), rep.get("status"), rep.get("fail_info"), rep.get("fail_info_text"),
                     masked(body) if status == 200 else body)
    times[what] = [elapsed]
    check(f"{what}: signed CertRep FAILURE badMessageCheck",
          status == 200 and media == "application/x-pki-message" and rep.get("status") == "FAILURE"
          and rep.get("fail_info") == "badMessageCheck", f"HTTP {status} {rep}")

first = next(iter(replies.values()))
for what, reply in replies.items():
    check(f"{what}: same size, failInfo and failInfoText as (b)", reply[:6] == first[:6], f"{reply[:6]} vs {first[:6]}")
    check(f"{what}: byte-for-byte the reply to (b) apart from nonce, time and signature", reply[6] == first[6])

# Timing, for the record (not asserted: the HSM's own padding check is outside privca).
for _ in range(2):
    for what, (content, opts) in variants.items():
        times[what].append(send(content, opts, txid=txid, sender_nonce=nonce)[4])
print("  median ms: " + ", ".join(f"{w.split(')')[0]})={statistics.median(t) * 1000:.1f}" for w, t in times.items()))

# The limit: 12 failures were counted above; keep failing until the address is refused.
limited_after = None
for i in range(limit + 1):
    _, status, _, body, _ = send(csr_der, {"encrypted_key": bad_pkcs1_padding})
    if status == 429:
        limited_after = i
        break
check(f"more than {limit} envelope failures a minute: HTTP 429", limited_after is not None)
req, status, media, body, _ = send(csr_der, {})
check("  a valid request from the address is refused too, before any RA key work (429)", status == 429,
      f"HTTP {status}")
sys.exit(1 if failed else 0)
