"""SCEP checks that need the client library rather than its CLI: a repeated PKCSReq or
RenewalReq (same transactionID, new nonce) gets the same certificate back instead of a second
one, and a tampered signature is answered with a signed CertRep FAILURE badMessageCheck.

usage: checks.py URL DIR [--renewal] [--pending]   (DIR: a directory `scep_client.py enroll`
or `pkcsreq` filled; --renewal repeats a RenewalReq, signed by the certificate it renewed;
--pending expects PENDING, the answer while the transaction's first copy is being signed)
Prints `SERIAL=<hex>` of the certificate the repeated request returned, or `PENDING`; exits 1
on failure.
"""
import sys

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

import scep_client as scep

url, d = sys.argv[1], sys.argv[2]
renewal, pending = "--renewal" in sys.argv[3:], "--pending" in sys.argv[3:]
csr = x509.load_der_x509_csr(open(f"{d}/csr.der", "rb").read())
key = load_pem_private_key(open(f"{d}/signer-key.pem", "rb").read(), None)
signer = x509.load_pem_x509_certificate(open(f"{d}/signer.pem", "rb").read())
txid = open(f"{d}/txid").read().strip()
_, ca_certs = scep.get_ca_cert(url)
ra, _ = scep.pick_ra(ca_certs)
failed = 0

req = scep.pkcs_req(csr, ra, signer, key, renewal=renewal, txid=txid)
status, media, body = scep.send(url, req.der, "post")
rep = scep.parse_cert_rep(body, ca_certs, key, req.transaction_id, req.sender_nonce)
if pending and rep["status"] == "PENDING":
    print("PENDING")
elif not pending and rep["status"] == "SUCCESS" and rep["certs"]:
    print(f"SERIAL={rep['certs'][0].serial_number:x}")
else:
    print(f"repeated {'RenewalReq' if renewal else 'PKCSReq'}: {rep['status']} {rep['fail_info']}")
    failed += 1

original = scep.pkcs_req(csr, ra, signer, key, renewal=renewal, txid=txid + "T")
tampered = bytearray(original.der)
tampered[-5] ^= 0x01  # inside the SignerInfo's signature
status, media, body = scep.send(url, bytes(tampered), "post")
rep = scep.parse_cert_rep(body, ca_certs, key, original.transaction_id, original.sender_nonce) if status == 200 else None
if not (status == 200 and media == "application/x-pki-message" and rep and rep["status"] == "FAILURE"
        and rep["fail_info"] == "badMessageCheck"):
    print(f"tampered signature: HTTP {status} {rep and (rep['status'], rep['fail_info'])}")
    failed += 1
sys.exit(1 if failed else 0)
