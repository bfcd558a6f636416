"""Asks privca's OCSP responder about every certificate the ledger lists and checks each answer.

usage: ocsp_check.py URL DATA_DIR < LIST      (LIST: one "serial_hex issuer_id status" a line)

For each line: a POST request (SHA-1 CertID built from DATA_DIR/<issuer_id>.pem and the serial,
no nonce, so pre-signed responses are served) must get a successful response for that serial,
signed by the issuer or by a responder certificate the issuer signed, saying `good` for status
`valid` and `revoked` for `revoked`. A mismatch is asked again up to three times a second apart
(a revocation made a moment ago may still be on its way to the pre-signed response). Prints
"ocsp: N answered, M wrong" and the wrong ones; exits 1 if any is wrong.
"""
import hashlib
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp

url, data = sys.argv[1], sys.argv[2]
issuers = {}


def issuer(issuer_id):
    """(certificate, issuerNameHash, issuerKeyHash) of CA `issuer_id`, SHA-1 (RFC 6960 §4.1.1)."""
    if issuer_id not in issuers:
        with open(f"{data}/{issuer_id}.pem", "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        spki = ca.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        issuers[issuer_id] = (ca, hashlib.sha1(ca.subject.public_bytes()).digest(),
                              hashlib.sha1(_bit_string_value(spki)).digest())
    return issuers[issuer_id]


def verify(resp, ca):
    signer = ca
    if resp.certificates:
        signer = resp.certificates[0]
        signer.verify_directly_issued_by(ca)
    key = signer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), resp.signature_hash_algorithm)
    else:
        raise ValueError("responder key is neither EC nor RSA")


def ask(serial, issuer_id, status):
    """None when the answer is right, else what was wrong."""
    ca, name_hash, key_hash = issuer(issuer_id)
    req = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, int(serial, 16), hashes.SHA1()).build()
    http = urllib.request.Request(url, data=req.public_bytes(Encoding.DER),
                                  headers={"Content-Type": "application/ocsp-request"})
    try:
        with urllib.request.urlopen(http, timeout=10) as r:
            resp = ocsp.load_der_ocsp_response(r.read())
    except Exception as e:  # noqa: BLE001 - any transport or decoding problem is a wrong answer
        return f"no answer ({e})"
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"responseStatus {resp.response_status.name}"
    try:
        verify(resp, ca)
    except Exception as e:  # noqa: BLE001
        return f"signature does not verify ({e!r})"
    if resp.serial_number != int(serial, 16):
        return "answer for another serial"
    want = {"valid": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED}.get(status)
    if resp.certificate_status != want:
        return f"{resp.certificate_status.name} for a {status} certificate"
    return None


def _bit_string_value(spki):
    """The subjectPublicKey BIT STRING's bytes (after the unused-bits octet) of SPKI DER."""
    def tlv(buf, pos):
        length = buf[pos + 1]
        start = pos + 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(buf[start:start + n], "big")
            start += n
        return start, start + length
    start, _ = tlv(spki, 0)          # SEQUENCE
    _, alg_end = tlv(spki, start)    # AlgorithmIdentifier
    bits_start, bits_end = tlv(spki, alg_end)
    return spki[bits_start + 1:bits_end]


def check(line):
    serial, issuer_id, status = line.split()
    for attempt in range(4):
        wrong = ask(serial, issuer_id, status)
        if wrong is None:
            return None
        if attempt < 3:
            time.sleep(1)
    return f"{serial} ({issuer_id}, {status}): {wrong}"


lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
with ThreadPoolExecutor(max_workers=4) as pool:
    wrong = [w for w in pool.map(check, lines) if w]
print(f"ocsp: {len(lines)} answered, {len(wrong)} wrong")
for w in wrong[:20]:
    print("  " + w)
sys.exit(1 if wrong else 0)
