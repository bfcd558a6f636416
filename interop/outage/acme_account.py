"""One ACME newAccount with a fresh P-256 key (RFC 8555 §7.3), written by a client independent
of privca's code (Python `cryptography` + urllib). Prints `STATUS TYPE RETRY-AFTER SECONDS`:
`201 - - 0.05` when the account was created, `503 serverInternal 5 0.01` while the ledger is down.
Usage: acme_account.py ROOT_PEM [DIRECTORY_URL]"""
import base64, json, ssl, sys, time, urllib.error, urllib.request

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

CTX = ssl.create_default_context(cafile=sys.argv[1])
DIR = sys.argv[2] if len(sys.argv) > 2 else "https://127.0.0.1:8443/acme/directory"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": "privca-interop-outage"})
    if body is not None:
        req.add_header("Content-Type", "application/jose+json")
    try:
        with urllib.request.urlopen(req, context=CTX, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


directory = json.loads(http("GET", DIR)[2])
key = ec.generate_private_key(ec.SECP256R1())
n = key.public_key().public_numbers()
jwk = {"crv": "P-256", "kty": "EC", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}
nonce = http("HEAD", directory["newNonce"])[1]["Replay-Nonce"]
url = directory["newAccount"]
protected = b64(json.dumps({"alg": "ES256", "nonce": nonce, "url": url, "jwk": jwk}).encode())
payload = b64(json.dumps({"termsOfServiceAgreed": True}).encode())
r, s = decode_dss_signature(key.sign(f"{protected}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
body = json.dumps({"protected": protected, "payload": payload,
                   "signature": b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}).encode()
started = time.monotonic()
status, headers, raw = http("POST", url, body)
elapsed = time.monotonic() - started
kind = "-"
if status >= 400:
    kind = json.loads(raw).get("type", "").rsplit(":", 1)[-1] or "?"
print(status, kind, headers.get("Retry-After") or "-", f"{elapsed:.2f}")
