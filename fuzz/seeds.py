"""Seed corpora for the fuzz targets that need a client's cryptography (see seeds.sh).

Requests are built the way the interop scripts' independent clients build them: SCEP
pkiMessages with interop/scep/scep_client.py (pyasn1-alt-modules + cryptography, the codec
scep.sh drives against privca), Full PKI Requests with interop/est/cmc.py's
`full_pki_request`, ACME JWS bodies with the signing of interop/acme/protocol.py (flattened
JSON, protected header with nonce and url, jwk or kid) for every algorithm privca accepts.

usage: seeds.py OUT_DIR CSR_DIR   (CSR_DIR: the openssl-made CSRs of seeds.sh)
"""
import ast
import base64
import hashlib
import hmac
import json
import os
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "interop/scep"))
import scep_client  # noqa: E402

OUT = pathlib.Path(sys.argv[1])
CSRS = pathlib.Path(sys.argv[2])


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ------------------------------------------------------------------ ACME JWS (RFC 8555 §6.2)
class Key:
    def __init__(self, alg):
        self.alg = alg
        if alg in ("ES256", "ES384"):
            curve, size = (ec.SECP256R1(), 32) if alg == "ES256" else (ec.SECP384R1(), 48)
            self.k, self.size = ec.generate_private_key(curve), size
            n = self.k.public_key().public_numbers()
            self.jwk = {"crv": curve.name.replace("secp256r1", "P-256").replace("secp384r1", "P-384"), "kty": "EC",
                        "x": b64u(n.x.to_bytes(size, "big")), "y": b64u(n.y.to_bytes(size, "big"))}
        elif alg in ("RS256", "PS256"):
            self.k = rsa.generate_private_key(65537, 2048)
            n = self.k.public_key().public_numbers()
            self.jwk = {"e": b64u(n.e.to_bytes(3, "big")), "kty": "RSA", "n": b64u(n.n.to_bytes(256, "big"))}
        else:
            self.k = ed25519.Ed25519PrivateKey.generate()
            raw = self.k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64u(raw)}

    def sign(self, data):
        if self.alg in ("ES256", "ES384"):
            h = hashes.SHA256() if self.alg == "ES256" else hashes.SHA384()
            r, s = decode_dss_signature(self.k.sign(data, ec.ECDSA(h)))
            return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")
        if self.alg == "RS256":
            return self.k.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "PS256":
            return self.k.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        return self.k.sign(data)

    def thumbprint(self):
        return b64u(hashlib.sha256(json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()).digest())


BASE = "https://127.0.0.1:8443/acme"
NONCE = "Vn5Wq0C7TnCPmSRs3dH1pnK5Uc9GsbGCqNDmHnd9dnvLQLj0WBQ"


def jws_obj(key, url, payload, kid=None, nonce=NONCE):
    prot = {"alg": key.alg, "url": url}
    if nonce:
        prot["nonce"] = nonce
    if kid:
        prot["kid"] = kid
    else:
        prot["jwk"] = key.jwk
    p64 = "" if payload is None else b64u(json.dumps(payload).encode())
    h64 = b64u(json.dumps(prot).encode())
    return {"protected": h64, "payload": p64, "signature": b64u(key.sign(f"{h64}.{p64}".encode()))}


def jws(key, url, payload, kid=None):
    return json.dumps(jws_obj(key, url, payload, kid))


def eab(hmac_key, kid, url, jwk):
    h64 = b64u(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
    p64 = b64u(json.dumps(jwk).encode())
    mac = hmac.new(hmac_key, f"{h64}.{p64}".encode(), hashlib.sha256).digest()
    return {"protected": h64, "payload": p64, "signature": b64u(mac)}


def acme():
    keys = {alg: Key(alg) for alg in ("ES256", "ES384", "RS256", "PS256", "EdDSA")}
    acct = f"{BASE}/acct/3q2xkC4kQkyNaWc2Lr0S7w"
    csr = (CSRS / "p256-sans.der").read_bytes()
    for alg, key in keys.items():
        write("acme_jws", f"new-account-{alg}.json",
              jws(key, f"{BASE}/new-account", {"termsOfServiceAgreed": True, "contact": ["mailto:ops@example.test"]}))
    es = keys["ES256"]
    write("acme_jws", "new-account-eab.json", jws(es, f"{BASE}/new-account", {
        "termsOfServiceAgreed": True,
        "externalAccountBinding": eab(b"\x5a" * 32, "kid-1", f"{BASE}/new-account", es.jwk)}))
    write("acme_jws", "new-order-kid.json", jws(es, f"{BASE}/new-order", {
        "identifiers": [{"type": "dns", "value": "www.example.test"}, {"type": "ip", "value": "192.0.2.7"}],
        "profile": "tls-server"}, kid=acct))
    write("acme_jws", "finalize-kid.json", jws(es, f"{BASE}/order/Zx1/finalize", {"csr": b64u(csr)}, kid=acct))
    write("acme_jws", "post-as-get.json", jws(es, f"{BASE}/authz/Ab2", None, kid=acct))
    write("acme_jws", "challenge-kid.json", jws(es, f"{BASE}/chall/Cd3", {}, kid=acct))
    new = keys["ES384"]
    inner = jws_obj(new, f"{BASE}/key-change", {"account": acct, "oldKey": es.jwk}, nonce=None)
    write("acme_jws", "key-change.json", jws(es, f"{BASE}/key-change", inner, kid=acct))
    write("acme_jws", "revoke-cert-key.json", jws(keys["RS256"], f"{BASE}/revoke-cert",
                                                  {"certificate": b64u(csr), "reason": 1}))
    # RFC 7515 Appendix A.3 (ES256), in the flattened serialization (no nonce or url: refused).
    write("acme_jws", "rfc7515-a3-flattened.json", json.dumps({
        "protected": "eyJhbGciOiJFUzI1NiJ9",
        "payload": "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
        "signature": "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"}))


# ------------------------------------------------------------------ SCEP (RFC 8894)
def scep():
    ra = x509.load_der_x509_certificate((ROOT / "protocols/scep/tests/vectors/test-rsa2048.crt.der").read_bytes())
    key = scep_client.new_rsa_key()
    signer = scep_client.self_signed(key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "router1.example.test")]))
    csr = scep_client.make_csr(key, "router1.example.test", sans=("router1.example.test",), challenge="lab")
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    variants = [("pkcsreq-aes128-sha256", {}), ("pkcsreq-3des-sha1", {"cipher": "3des", "digest": "sha1"}),
                ("pkcsreq-aes256-sha512", {"cipher": "aes256", "digest": "sha512"})]
    for name, opts in variants:
        write("scep_message", f"{name}.der", scep_client.pkcs_req(csr, ra, signer, key, **opts).der)
    write("scep_message", "renewalreq.der", scep_client.pkcs_req(csr, ra, signer, key, renewal=True).der)
    txid = scep_client.transaction_id(csr.public_key())
    write("scep_message", "certpoll.der", scep_client.cert_poll(ra, csr.subject, txid, ra, signer, key).der)
    write("scep_message", "getcert.der", scep_client.get_cert(ra, 0x1234, ra, signer, key).der)
    write("scep_message", "getcrl.der", scep_client.get_crl(ra, ra, signer, key).der)
    get = scep_client.pkcs_req(csr, ra, signer, key).der
    write("scep_message", "get-query-wrapped.txt", scep_client.message_query(get, wrap=True))
    write("scep_message", "content-pkcs10.bin", b"content:" + csr_der)
    write("scep_message", "content-issuer-and-serial.bin",
          b"content:" + scep_client.issuer_and_serial(ra.subject, 0x1234))
    write("scep_message", "content-issuer-and-subject.bin",
          b"content:" + scep_client.issuer_and_subject(ra.subject, csr.subject))


# ------------------------------------------------------------------ EST /fullcmc (RFC 5272)
def load_cmc():
    """`csr_for` and `full_pki_request` from interop/est/cmc.py (a script: its defs only)."""
    tree = ast.parse((ROOT / "interop/est/cmc.py").read_text())
    body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) or
            (isinstance(n, ast.FunctionDef) and n.name in ("csr_for", "full_pki_request"))]
    ns = {}
    exec(compile(ast.Module(body=body, type_ignores=[]), "cmc.py", "exec"), ns)
    return ns


def est():
    cmc = load_cmc()
    key = ec.generate_private_key(ec.SECP256R1())
    req = cmc["full_pki_request"](cmc["csr_for"]("cmc.example.test", key), key)
    write("est_body", "fullcmc.b64", base64.encodebytes(req))
    write("est_body", "fullcmc-one-line.b64", base64.b64encode(req))


if __name__ == "__main__":
    acme()
    scep()
    est()
