"""Pre-generates PKCSReq pkiMessages for benches/scep.sh with the independent client codec
(interop/scep/scep_client.py): one RSA-2048 requester key, certificate and CSR carrying the
`lab` name's static challenge, then N messages with unique transactionIDs and nonces (each one
a new enrollment for privca), written as DER files.

usage: scep_requests.py URL CHALLENGE COUNT OUT_DIR
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop", "scep"))
import scep_client  # noqa: E402

url, challenge, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
_, ca_certs = scep_client.get_ca_cert(url)
ra, _ = scep_client.pick_ra(ca_certs)
key = scep_client.new_rsa_key()
csr = scep_client.make_csr(key, "bench.scep.test", ["bench.scep.test"], challenge)
signer = scep_client.self_signed(key, csr.subject)
os.makedirs(out, exist_ok=True)
for i in range(count):
    req = scep_client.pkcs_req(csr, ra, signer, key, txid=f"BENCH{os.getpid()}X{i:08d}")
    with open(os.path.join(out, f"{i:08d}.der"), "wb") as f:
        f.write(req.der)
