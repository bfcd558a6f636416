"""The signing and HTTP of the interop scripts' independent ACME clients (protocol.py,
cluster/account.py, outage/acme_account.py): base64url, account keys (a fresh P-256 key, or an
RSA or EC key read from PEM), flattened JWS request bodies (RFC 8555 §6.2, RFC 7515 §7.2.2) and
one urllib request. Independent of privca's code: Python `cryptography` + urllib."""
import base64, hashlib, json, urllib.error, urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class Key:
    """An account key: a fresh P-256 key (ES256), or one read from PEM: RSA (RS256) or EC
    P-256/P-384 (ES256/ES384)."""

    def __init__(self, pem=None):
        self.k = ec.generate_private_key(ec.SECP256R1()) if pem is None else serialization.load_pem_private_key(pem, None)
        if isinstance(self.k, rsa.RSAPrivateKey):
            n = self.k.public_key().public_numbers()
            self.alg, self.jwk = "RS256", {"e": b64(uint(n.e)), "kty": "RSA", "n": b64(uint(n.n))}
            return
        self.size = (self.k.curve.key_size + 7) // 8
        self.alg = {32: "ES256", 48: "ES384"}[self.size]
        self.hash = {32: hashes.SHA256(), 48: hashes.SHA384()}[self.size]
        n = self.k.public_key().public_numbers()
        self.jwk = {"crv": f"P-{self.k.curve.key_size}", "kty": "EC",
                    "x": b64(n.x.to_bytes(self.size, "big")), "y": b64(n.y.to_bytes(self.size, "big"))}

    def thumbprint(self):
        """RFC 7638: SHA-256 of the JWK's required members, sorted, without whitespace."""
        return b64(hashlib.sha256(json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()).digest())

    def sign(self, data):
        if self.alg == "RS256":
            return self.k.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.k.sign(data, ec.ECDSA(self.hash)))
        return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")


def body(key, url, payload, nonce, kid=None, alg=None, tamper=False):
    """A JWS request body for `url`: `kid` in the protected header, else the key's `jwk`;
    payload None is a POST-as-GET (empty payload); `tamper` flips a bit of the signature."""
    prot = {"alg": alg or key.alg, "nonce": nonce, "url": url}
    if kid:
        prot["kid"] = kid
    else:
        prot["jwk"] = key.jwk
    h64 = b64(json.dumps(prot).encode())
    p64 = "" if payload is None else b64(json.dumps(payload).encode())
    sig = key.sign(f"{h64}.{p64}".encode())
    if tamper:
        sig = bytes([sig[0] ^ 1]) + sig[1:]
    return json.dumps({"protected": h64, "payload": p64, "signature": b64(sig)}).encode()


def http(ctx, method, url, data=None, agent="privca-interop", ctype="application/jose+json", headers=None,
         timeout=30):
    """One request: (status, headers, body), an HTTP error status included."""
    req = urllib.request.Request(url, data=data, method=method, headers={"User-Agent": agent, **(headers or {})})
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
