"""Turns the request log of fuzz/capture.sh (capture_addon.py) into seed files.

    python capture_seeds.py LOG SEEDS_DIR

Each request becomes at most one seed in SEEDS_DIR/<target>/, named after its client and
operation: ACME JWS bodies (acme_jws/, one per client and operation; POST-as-GET once per
client) and the CSR inside each finalize (csr/, one per client and key type), EST bodies
(est_body/, one per client, operation and layout, and the `Authorization: Basic` value), OCSP
POST bodies (ocsp_request/) and GET paths as the router sees them, after `/ocsp`
(ocsp_get/), SCEP GET queries and PKIOperation bodies (scep_message/). Answered requests
(2xx) are preferred; identical bytes are kept once per target. Prints what it wrote.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def b64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_type(csr_der):
    key = x509.load_der_x509_csr(csr_der).public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}.get(key.curve.name, key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return "key"


def acme(client, path, body):
    """(target, name, bytes) seeds of one ACME POST."""
    jws = json.loads(body)
    protected = json.loads(b64u(jws["protected"]))
    raw = b64u(jws.get("payload", ""))
    payload = json.loads(raw) if raw else None
    seg = path.split("/")[2:]  # after /acme/
    kind = seg[0]
    if payload is None and kind != "key-change":
        op = "post-as-get"
    elif kind == "new-account":
        op = "new-account" + ("-eab" if "externalAccountBinding" in payload else "")
        op += "-existing" if payload.get("onlyReturnExisting") else ""
    elif kind == "account":
        op = "account-deactivate" if payload.get("status") == "deactivated" else "account-update"
    elif kind == "order" and seg[-1] == "finalize":
        op = "finalize"
    elif kind == "chall":
        op = f"challenge-{seg[-1]}" if len(seg) > 2 else "challenge"
    elif kind == "revoke-cert":
        op = "revoke-cert-by-" + ("cert-key" if "jwk" in protected else "account")
    else:
        op = kind + ("-deactivate" if payload.get("status") == "deactivated" else "")
    seeds = [("acme_jws", f"{client}-{op}.json", body)]
    if op == "finalize":
        csr = b64u(payload["csr"])
        seeds.append(("csr", f"{client}-finalize-{key_type(csr)}.der", csr))
    return seeds


def est(client, label, path, body, headers):
    op = path.rstrip("/").split("/")[-1]
    text = body.decode("ascii", "replace")
    if label:
        layout = f"-{label}"
    elif "-----BEGIN" in text:
        layout = "-pem"
    elif "\r\n" in text:
        layout = "-crlf"
    elif "\n" not in text.rstrip("\n"):
        layout = "-one-line"
    else:
        layout = ""
    seeds = [("est_body", f"{client}-{op}{layout}.b64", body)]
    auth = headers.get("authorization", "")
    if auth.startswith("Basic "):
        seeds.append(("est_body", f"{client}-basic-auth.txt", auth.encode()))
    return seeds


def classify(record):
    client, _, label = record["tag"].partition(":")
    client = client or "unknown"
    method, body = record["method"], base64.b64decode(record["body"])
    url = urlsplit(record["path"])
    path = url.path
    suffix = f"-{label}" if label else ""
    if path.startswith("/acme/") and method == "POST" and body:
        return acme(client, path, body)
    if path.startswith("/.well-known/est/") and method == "POST":
        return est(client, label, path, body, record["headers"])
    if path.startswith("/ocsp"):
        if method == "POST":
            return [("ocsp_request", f"{client}-ocsp{suffix}.der", body)]
        rest = path[len("/ocsp"):]
        if rest.strip("/"):
            return [("ocsp_get", f"{client}-ocsp-get{suffix}.txt", rest.encode())]
    if path.startswith("/scep"):
        if method == "POST":
            return [("scep_message", f"{client}-{label or 'pkioperation'}.der", body)]
        operation = parse_qs(url.query).get("operation", ["none"])[0].lower()
        return [("scep_message", f"{client}-{operation}.txt", url.query.encode())]
    return []


def main(log, out):
    records = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
    # Answered requests first: a refused copy of the same operation is the fallback.
    records.sort(key=lambda r: not (r["status"] is not None and 200 <= r["status"] < 300))
    names, digests, written = set(), set(), []
    for record in records:
        for target, name, data in classify(record):
            digest = hashlib.sha256(data).digest()
            if (target, name) in names or (target, digest) in digests:
                continue
            names.add((target, name))
            digests.add((target, digest))
            d = Path(out) / target
            d.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(data)
            written.append(f"{target}/{name} ({len(data)} bytes, HTTP {record['status']})")
    for line in sorted(written):
        print(line)
    print(f"{len(written)} seeds from {len(records)} requests")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
