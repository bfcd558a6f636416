"""One ACME newAccount with a fresh P-256 key (RFC 8555 §7.3), written by a client independent
of privca's code (Python `cryptography` + urllib). Prints `STATUS TYPE RETRY-AFTER SECONDS`:
`201 - - 0.05` when the account was created, `503 serverInternal 5 0.01` while the ledger is down.
Usage: acme_account.py ROOT_PEM [DIRECTORY_URL]"""
import json, os, ssl, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "acme"))
import jws  # noqa: E402

CTX = ssl.create_default_context(cafile=sys.argv[1])
DIR = sys.argv[2] if len(sys.argv) > 2 else "https://127.0.0.1:8443/acme/directory"


def http(method, url, body=None):
    return jws.http(CTX, method, url, body, agent="privca-interop-outage")


directory = json.loads(http("GET", DIR)[2])
url = directory["newAccount"]
body = jws.body(jws.Key(), url, {"termsOfServiceAgreed": True}, http("HEAD", directory["newNonce"])[1]["Replay-Nonce"])
started = time.monotonic()
status, headers, raw = http("POST", url, body)
elapsed = time.monotonic() - started
kind = "-"
if status >= 400:
    kind = json.loads(raw).get("type", "").rsplit(":", 1)[-1] or "?"
print(status, kind, headers.get("Retry-After") or "-", f"{elapsed:.2f}")
