"""What each instance of a cluster answers for one ACME account, asked directly (not through the
load balancer), for every instance port given, signed with KEY by `kid`, with a nonce the same
instance gave; the JWS `url` is the URL the directory names (the load balancer's), as a client
behind the balancer signs it. MODE `orders`: a POST-as-GET of the account's orders URL, which
reads the account (an instance keeps its copy) without changing it; MODE `account`: a POST of an
empty update ({}) to the account URL, answered with the account.
Independent of privca's code: Python `cryptography` + urllib.

usage: account.py ROOT_PEM KEY_PEM -                          (look the account up: newAccount
       account.py ROOT_PEM KEY_PEM KID ORDERS MODE PORT...     onlyReturnExisting, through the
                                                              balancer; prints `kid URL` and
                                                              `orders URL`)
Prints one line per port: `PORT STATUS ACCOUNT-STATUS CONTACTS` (account), `PORT STATUS ok`
(orders), or `PORT STATUS PROBLEM-TYPE` for a problem."""
import base64, json, ssl, sys, urllib.error, urllib.parse, urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

DIR = "https://127.0.0.1:8443/acme/directory"
CTX = ssl.create_default_context(cafile=sys.argv[1])


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class Key:
    """An account key read from PEM: RSA (RS256) or EC P-256/P-384 (ES256/ES384)."""

    def __init__(self, pem):
        self.k = serialization.load_pem_private_key(pem, None)
        if isinstance(self.k, rsa.RSAPrivateKey):
            n = self.k.public_key().public_numbers()
            self.alg, self.jwk = "RS256", {"e": b64(uint(n.e)), "kty": "RSA", "n": b64(uint(n.n))}
        else:
            size = (self.k.curve.key_size + 7) // 8
            n = self.k.public_key().public_numbers()
            self.alg = {32: "ES256", 48: "ES384"}[size]
            self.hash = {32: hashes.SHA256(), 48: hashes.SHA384()}[size]
            self.size = size
            self.jwk = {"crv": f"P-{self.k.curve.key_size}", "kty": "EC",
                        "x": b64(n.x.to_bytes(size, "big")), "y": b64(n.y.to_bytes(size, "big"))}

    def sign(self, data):
        if self.alg == "RS256":
            return self.k.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.k.sign(data, ec.ECDSA(self.hash)))
        return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": "privca-interop-cluster"})
    if body is not None:
        req.add_header("Content-Type", "application/jose+json")
    try:
        with urllib.request.urlopen(req, context=CTX, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def on_port(url, port):
    """url with its authority replaced by 127.0.0.1:port (one instance, not the balancer)."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, f"127.0.0.1:{port}", u.path, u.query, u.fragment))


def post(key, url, payload, port=None, kid=None):
    """A JWS POST signed for `url`, sent to instance `port` (or to the balancer); payload None
    is a POST-as-GET (empty payload)."""
    directory = json.loads(http("GET", DIR)[2])
    new_nonce = directory["newNonce"] if port is None else on_port(directory["newNonce"], port)
    prot = {"alg": key.alg, "nonce": http("HEAD", new_nonce)[1]["Replay-Nonce"], "url": url}
    if kid:
        prot["kid"] = kid
    else:
        prot["jwk"] = key.jwk
    h64 = b64(json.dumps(prot).encode())
    p64 = "" if payload is None else b64(json.dumps(payload).encode())
    body = json.dumps({"protected": h64, "payload": p64, "signature": b64(key.sign(f"{h64}.{p64}".encode()))})
    status, headers, raw = http("POST", url if port is None else on_port(url, port), body.encode())
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {}
    return status, headers, doc


def main():
    key = Key(open(sys.argv[2], "rb").read())
    if sys.argv[3] == "-":
        new_account = json.loads(http("GET", DIR)[2])["newAccount"]
        status, headers, doc = post(key, new_account, {"onlyReturnExisting": True})
        if status != 200 or not headers.get("Location"):
            print(f"lookup {status} {doc.get('type', '')}")
            return 1
        print(f"kid {headers['Location']}")
        print(f"orders {doc.get('orders', '')}")
        return 0
    kid, orders, mode = sys.argv[3], sys.argv[4], sys.argv[5]
    for port in sys.argv[6:]:
        if mode == "orders":
            status, _, doc = post(key, orders, None, port=int(port), kid=kid)
        else:
            status, _, doc = post(key, kid, {}, port=int(port), kid=kid)
        if "type" in doc:
            print(port, status, doc["type"])
        elif mode == "orders":
            print(port, status, "ok" if isinstance(doc.get("orders"), list) else "-")
        else:
            print(port, status, doc.get("status", "-"), ",".join(doc.get("contact", [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
