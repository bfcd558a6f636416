"""Steady mixed load and sampler for interop/soak/soak.sh.

One thread per request kind sends requests on a fixed schedule (`--rates`, requests per second;
a late request starts at once, never two at a time), checks every answer and records its
latency (the server's exchanges as the client sees them: a whole order for ACME, without the
client's own key generation and message building for the others):

  acme       a whole RFC 8555 order (newOrder, http-01 answered on 127.0.0.1:5002, finalize with a
             fresh P-256 CSR, download): the order must end `valid` and the chain's leaf must
             carry exactly the name and the CSR's key and verify under its issuer
  est        EST simpleenroll (Basic) with a fresh P-256 key: a certs-only reply whose certificate
             has that key and verifies under its issuer
  scep       SCEP PKCSReq to the `lab` name (static challenge, fresh RSA-2048 key, independent
             codec interop/scep/scep_client.py): a signed CertRep, SUCCESS, the certificate
             decrypted with the requester's key
  ocsp_get   OCSP GET (SHA-1 CertID, no nonce) for a certificate issued above
  ocsp_post  OCSP POST (SHA-256 CertID, with a nonce) for a certificate issued above
             OCSP answers must be `successful`, name the serial, be signed by a responder the
             issuer certified, be current, and say `good`, or `revoked` once the certificate's
             revocation is older than --grace seconds (a certificate within the grace is not asked)
  crl        the complete CRL of each issuing CA seen: signature by that CA, nextUpdate ahead,
             cRLNumber never lower than before, every revocation older than --crl-grace listed
  revoke     the oldest unrevoked certificate: ACME revokeCert by the ordering account for ACME
             certificates, the admin API (operator token) for EST and SCEP ones

Every --interval seconds the main thread samples the server process (VmRSS, RssAnon, RssFile
from /proc/<pid>/status; open descriptors from /proc/<pid>/fd), the ledger's size (SQLite file +
WAL, or pg_database_size) and, per kind, the requests finished in that window, their p99
latency and the errors, as one TSV row (--out). At the end, --summary gets per-kind totals and
the first errors (JSON).

usage: load.py --pid PID --root ROOT_PEM --seconds S --out TSV --summary JSON --ledger
       sqlite:PATH|postgres://... --est-user U --est-password P --scep-challenge C --admin-token T
       [--rates acme=0.5,...] [--interval 10]
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import random
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID, NameOID

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scep"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "acme"))
import jws  # noqa: E402
import scep_client  # noqa: E402

KINDS = ["acme", "est", "scep", "ocsp_get", "ocsp_post", "crl", "revoke"]
DEFAULT_RATES = "acme=0.5,est=1,scep=0.5,ocsp_get=4,ocsp_post=4,crl=0.5,revoke=0.2"
HTTPS = "https://127.0.0.1:8443"
HTTP = "http://127.0.0.1:8080"
ADMIN = "https://127.0.0.1:9443"


class Bad(Exception):
    """An answer that is not the correct one."""


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------- HTTP: one connection per request

def fetch(method, url, body=None, headers=None, ctx=None, timeout=30):
    """(status, lower-cased headers, body) of one request on a new connection."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        path = u.path + ("?" + u.query if u.query else "")
        conn.request(method, path, body=body, headers={"User-Agent": "privca-soak", **(headers or {})})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- certificates seen

class Pool:
    """Every certificate issued during the run, its issuer and its revocation time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.certs = []          # dicts: cert, issuer, source, kid, revoked_at
        self.issuers = {}        # issuer subject DER -> CA certificate
        self.crl_urls = {}       # CRL URL -> issuer subject DER

    def add_issuer(self, ca):
        with self.lock:
            self.issuers[ca.subject.public_bytes()] = ca

    def issuer_of(self, cert):
        with self.lock:
            ca = self.issuers.get(cert.issuer.public_bytes())
        if ca is None:
            raise Bad(f"issuer {cert.issuer.rfc4514_string()} unknown")
        try:
            cert.verify_directly_issued_by(ca)
        except Exception as e:  # noqa: BLE001 (any failure is a wrong certificate)
            raise Bad(f"certificate does not verify under its issuer: {e}") from e
        return ca

    def add(self, cert, source, kid=None):
        ca = self.issuer_of(cert)
        try:
            dp = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
            urls = [n.value for p in dp for n in (p.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)]
        except x509.ExtensionNotFound:
            urls = []
        with self.lock:
            self.certs.append({"cert": cert, "issuer": ca, "source": source, "kid": kid, "revoked_at": None})
            for u in urls:
                self.crl_urls.setdefault(u, ca.subject.public_bytes())

    def pick_for_ocsp(self, grace):
        """A random certificate whose expected status is settled: ('good'|'revoked', entry)."""
        t = time.time()
        with self.lock:
            revoked = [c for c in self.certs if c["revoked_at"] is not None and c["revoked_at"] < t - grace]
            good = [c for c in self.certs if c["revoked_at"] is None and not c.get("revoking")]
            if revoked and (not good or random.random() < 0.3):
                return "revoked", random.choice(revoked)
            if good:
                return "good", random.choice(good)
        return None, None

    def oldest_unrevoked(self):
        with self.lock:
            for c in self.certs:
                if c["revoked_at"] is None and not c.get("revoking"):
                    c["revoking"] = True
                    return c
        return None

    def revoked_before(self, issuer_der, t):
        with self.lock:
            return [c["cert"].serial_number for c in self.certs
                    if c["revoked_at"] is not None and c["revoked_at"] < t
                    and c["issuer"].subject.public_bytes() == issuer_der]


def same_key(cert, key):
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


def verify_signature(public_key, signature, data, hash_alg):
    """Raises unless `signature` over `data` verifies under `public_key` (EC or RSA PKCS#1 v1.5)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_alg))
    else:
        public_key.verify(signature, data, padding.PKCS1v15(), hash_alg)


def p256_csr(name, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    return key, csr


# ---------------------------------------------------------------- ACME

class Acme:
    """A minimal RFC 8555 client (ES256 account key, one account for the run; JWS bodies from
    interop/acme/jws.py)."""

    def __init__(self, ctx, tokens):
        self.ctx, self.tokens = ctx, tokens
        self.key = jws.Key()
        self.thumb = self.key.thumbprint()
        s, _, body = fetch("GET", HTTPS + "/acme/directory", ctx=ctx)
        if s != 200:
            raise Bad(f"directory: HTTP {s}")
        self.dir = json.loads(body)
        self.nonces = threading.local()
        s, h, doc = self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True}, kid=None)
        if s not in (200, 201) or "location" not in h:
            raise Bad(f"newAccount: HTTP {s} {doc}")
        self.kid = h["location"]

    def nonce(self):
        n = getattr(self.nonces, "n", None)
        self.nonces.n = None
        if n:
            return n
        s, h, _ = fetch("HEAD", self.dir["newNonce"], ctx=self.ctx)
        if "replay-nonce" not in h:
            raise Bad(f"newNonce: HTTP {s} without Replay-Nonce")
        return h["replay-nonce"]

    def post(self, url, payload, kid=True):
        body = jws.body(self.key, url, payload, self.nonce(), kid=self.kid if kid else None)
        status, headers, raw = fetch("POST", url, body, {"Content-Type": "application/jose+json"}, self.ctx)
        self.nonces.n = headers.get("replay-nonce")
        ctype = headers.get("content-type", "")
        doc = json.loads(raw) if raw and "json" in ctype else raw
        return status, headers, doc

    def poll(self, url, done, timeout=30):
        delay, t_end = 0.005, time.time() + timeout
        while True:
            s, _, doc = self.post(url, None)
            if s != 200:
                raise Bad(f"POST-as-GET {url}: HTTP {s} {doc}")
            if done(doc["status"]):
                return doc
            if time.time() > t_end:
                raise Bad(f"{url} still {doc['status']} after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def order(self, name):
        """One whole order; returns the leaf certificate (checked) and its issuer from the chain."""
        s, h, order = self.post(self.dir["newOrder"], {"identifiers": [{"type": "dns", "value": name}]})
        if s != 201:
            raise Bad(f"newOrder: HTTP {s} {order}")
        url = h["location"]
        token = None
        try:
            for a in order["authorizations"]:
                s, _, authz = self.post(a, None)
                if s != 200:
                    raise Bad(f"authorization: HTTP {s} {authz}")
                if authz["status"] != "pending":
                    continue
                ch = next(c for c in authz["challenges"] if c["type"] == "http-01")
                token = ch["token"]
                self.tokens[token] = f"{token}.{self.thumb}"
                s, _, doc = self.post(ch["url"], {})
                if s != 200:
                    raise Bad(f"challenge: HTTP {s} {doc}")
            order = self.poll(url, lambda st: st in ("ready", "invalid"))
        finally:
            if token:
                self.tokens.pop(token, None)
        if order["status"] != "ready":
            raise Bad(f"order {order['status']} after validation: {order.get('error')}")
        key, csr = p256_csr(name)
        s, _, doc = self.post(order["finalize"], {"csr": b64u(csr.public_bytes(serialization.Encoding.DER))})
        if s != 200:
            raise Bad(f"finalize: HTTP {s} {doc}")
        order = self.poll(url, lambda st: st in ("valid", "invalid"))
        if order["status"] != "valid":
            raise Bad(f"order {order['status']} after finalize: {order.get('error')}")
        s, h, pem = self.post(order["certificate"], None)
        if s != 200 or not h.get("content-type", "").startswith("application/pem-certificate-chain"):
            raise Bad(f"certificate download: HTTP {s} {h.get('content-type')}")
        chain = x509.load_pem_x509_certificates(pem)
        leaf = chain[0]
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        if sans != [name] or not same_key(leaf, key):
            raise Bad(f"certificate names {sans} or key differ from the order's")
        return leaf, chain[1:]

    def revoke(self, cert):
        der = cert.public_bytes(serialization.Encoding.DER)
        s, _, doc = self.post(self.dir["revokeCert"], {"certificate": b64u(der), "reason": 1})
        if s != 200:
            raise Bad(f"revokeCert: HTTP {s} {doc}")


def http01_responder(tokens):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            prefix = "/.well-known/acme-challenge/"
            v = tokens.get(self.path[len(prefix):]) if self.path.startswith(prefix) else None
            body = (v or "not here").encode()
            self.send_response(200 if v else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class S(socketserver.ThreadingMixIn, HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = S(("127.0.0.1", 5002), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---------------------------------------------------------------- the request kinds

class Load:
    def __init__(self, args):
        self.args = args
        self.ctx = ssl.create_default_context(cafile=args.root)
        self.pool = Pool()
        self.events = []
        self.events_lock = threading.Lock()
        self.stop = threading.Event()
        self.counter = 0
        self.counter_lock = threading.Lock()
        self.crl_numbers = {}
        self.tokens = {}
        http01_responder(self.tokens)
        self.acme = Acme(self.ctx, self.tokens)
        self.basic = "Basic " + base64.b64encode(f"{args.est_user}:{args.est_password}".encode()).decode()
        self.scep_url = HTTP + "/scep/lab"
        _, self.scep_ca_certs = scep_client.get_ca_cert(self.scep_url)
        self.scep_ra, scep_ca = scep_client.pick_ra(self.scep_ca_certs)
        self.pool.add_issuer(scep_ca)
        s, _, body = fetch("GET", HTTPS + "/.well-known/est/cacerts", ctx=self.ctx)
        if s != 200:
            raise Bad(f"EST cacerts: HTTP {s}")
        for ca in pkcs7.load_der_pkcs7_certificates(base64.b64decode(body)):
            self.pool.add_issuer(ca)

    def next_id(self):
        with self.counter_lock:
            self.counter += 1
            return self.counter

    def record(self, kind, t0, ok, detail="", latency=None):
        t1 = time.time()
        with self.events_lock:
            self.events.append((t1, kind, t1 - t0 if latency is None else latency, ok, detail))

    def take_events(self):
        with self.events_lock:
            ev, self.events = self.events, []
        return ev

    # Each kind: one request, raising Bad (or anything) when the answer is wrong; returns False
    # when there is nothing to ask about yet, else the latency of the server's exchanges (the
    # client's own key generation and message building left out), or None for the whole call.

    def do_acme(self):
        leaf, chain = self.acme.order(f"a{self.next_id()}.soak.test")
        for ca in chain:
            self.pool.add_issuer(ca)
        self.pool.add(leaf, "acme")

    def do_est(self):
        name = f"e{self.next_id()}.soak.test"
        key, csr = p256_csr(name)
        body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
        t0 = time.time()
        s, h, reply = fetch("POST", HTTPS + "/.well-known/est/simpleenroll", body,
                            {"Content-Type": "application/pkcs10", "Authorization": self.basic}, self.ctx)
        latency = time.time() - t0
        if s != 200 or not h.get("content-type", "").startswith("application/pkcs7-mime"):
            raise Bad(f"simpleenroll: HTTP {s} {h.get('content-type')} {reply[:200]!r}")
        certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(reply))
        mine = [c for c in certs if same_key(c, key)]
        if len(mine) != 1:
            raise Bad(f"simpleenroll: {len(certs)} certificates, {len(mine)} with the CSR's key")
        self.pool.add(mine[0], "est")
        return latency

    def do_scep(self):
        name = f"s{self.next_id()}.soak.test"
        key = scep_client.new_rsa_key()
        csr = scep_client.make_csr(key, name, [name], self.args.scep_challenge)
        signer = scep_client.self_signed(key, csr.subject)
        req = scep_client.pkcs_req(csr, self.scep_ra, signer, key, txid=f"SOAK{os.getpid()}X{name}")
        t0 = time.time()
        s, media, body = scep_client.send(self.scep_url, req.der)
        latency = time.time() - t0
        if s != 200 or media != "application/x-pki-message":
            raise Bad(f"PKCSReq: HTTP {s} {media} {body[:200]!r}")
        rep = scep_client.parse_cert_rep(body, self.scep_ca_certs, key, req.transaction_id, req.sender_nonce)
        if rep["status"] != "SUCCESS":
            raise Bad(f"PKCSReq: {rep['status']} {rep['fail_info']} {rep['fail_info_text']}")
        mine = [c for c in rep["certs"] if same_key(c, key)]
        if len(mine) != 1:
            raise Bad(f"CertRep: {len(rep['certs'])} certificates, {len(mine)} with the CSR's key")
        self.pool.add(mine[0], "scep")
        return latency

    def ocsp(self, method):
        want, entry = self.pool.pick_for_ocsp(self.args.grace)
        if entry is None:
            return False
        cert, ca = entry["cert"], entry["issuer"]
        b = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA1() if method == "GET" else hashes.SHA256())
        nonce = None
        if method == "POST":
            nonce = os.urandom(16)
            b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
        der = b.build().public_bytes(serialization.Encoding.DER)
        t0 = time.time()
        if method == "GET":
            s, h, body = fetch("GET", HTTP + "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
        else:
            s, h, body = fetch("POST", HTTP + "/ocsp", der, {"Content-Type": "application/ocsp-request"})
        latency = time.time() - t0
        if s != 200 or h.get("content-type") != "application/ocsp-response":
            raise Bad(f"OCSP {method}: HTTP {s} {h.get('content-type')}")
        r = ocsp.load_der_ocsp_response(body)
        if r.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise Bad(f"OCSP {method}: {r.response_status.name}")
        if r.serial_number != cert.serial_number:
            raise Bad(f"OCSP {method}: answers serial {r.serial_number:x}, asked {cert.serial_number:x}")
        got = r.certificate_status.name.lower()
        # A revocation that began while this request was in flight makes either answer right.
        if got != want and not (want == "good" and got == "revoked" and (entry.get("revoking") or entry["revoked_at"])):
            raise Bad(f"OCSP {method}: serial {cert.serial_number:x} {got}, expected {want}")
        t = now_utc()
        if r.this_update_utc > t + datetime.timedelta(minutes=1) or r.next_update_utc is None or r.next_update_utc < t:
            raise Bad(f"OCSP {method}: not current ({r.this_update_utc} .. {r.next_update_utc})")
        signer = r.certificates[0] if r.certificates else ca
        if signer is not ca:
            signer.verify_directly_issued_by(ca)
        verify_signature(signer.public_key(), r.signature, r.tbs_response_bytes, r.signature_hash_algorithm)
        if nonce is not None:
            try:
                echoed = r.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound:
                echoed = None
            if echoed is not None and echoed != nonce:
                raise Bad("OCSP POST: a nonce other than the request's")
        return latency

    def do_ocsp_get(self):
        return self.ocsp("GET")

    def do_ocsp_post(self):
        return self.ocsp("POST")

    def do_crl(self):
        with self.pool.lock:
            urls = sorted(self.pool.crl_urls.items())
        if not urls:
            return False
        t = time.time()
        latency = 0.0
        for url, issuer_der in urls:
            ca = self.pool.issuers[issuer_der]
            t0 = time.time()
            s, _, body = fetch("GET", url)
            latency += time.time() - t0
            if s != 200:
                raise Bad(f"CRL {url}: HTTP {s}")
            crl = x509.load_der_x509_crl(body)
            if crl.issuer.public_bytes() != issuer_der or not crl.is_signature_valid(ca.public_key()):
                raise Bad(f"CRL {url}: not signed by its CA")
            if crl.next_update_utc is None or crl.next_update_utc < now_utc():
                raise Bad(f"CRL {url}: nextUpdate passed")
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            if number < self.crl_numbers.get(url, 0):
                raise Bad(f"CRL {url}: cRLNumber {number} after {self.crl_numbers[url]}")
            self.crl_numbers[url] = number
            missing = [s for s in self.pool.revoked_before(issuer_der, t - self.args.crl_grace)
                       if crl.get_revoked_certificate_by_serial_number(s) is None]
            if missing:
                raise Bad(f"CRL {url} (number {number}): {len(missing)} revocations older than "
                          f"{self.args.crl_grace} s missing, e.g. {missing[0]:x}")
        return latency

    def do_revoke(self):
        entry = self.pool.oldest_unrevoked()
        if entry is None:
            return False
        cert = entry["cert"]
        try:
            if entry["source"] == "acme":
                self.acme.revoke(cert)
            else:
                url = f"{ADMIN}/api/v1/certificates/{cert.fingerprint(hashes.SHA256()).hex()}/revoke"
                s, _, body = fetch("POST", url, json.dumps({"reason": "keyCompromise"}).encode(),
                                   {"Content-Type": "application/json", "Authorization": f"Bearer {self.args.admin_token}"},
                                   self.ctx)
                if s != 200 or json.loads(body).get("outcome") != "revoked":
                    raise Bad(f"admin revoke: HTTP {s} {body[:200]!r}")
        except Exception:
            entry["revoking"] = False
            raise
        entry["revoked_at"] = time.time()
        return None

    def run_kind(self, kind, rate):
        """Requests of one kind every 1/rate s until stopped; a late start never doubles up."""
        period = 1.0 / rate
        t_next = time.time() + random.uniform(0, period)
        do = getattr(self, "do_" + kind)
        while not self.stop.is_set():
            delay = t_next - time.time()
            if delay > 0 and self.stop.wait(delay):
                break
            t_next = max(t_next + period, time.time() - period)
            t0 = time.time()
            try:
                latency = do()
                if latency is False:
                    continue  # nothing to ask about yet (no certificate issued)
                self.record(kind, t0, True, latency=latency)
            except Exception as e:  # noqa: BLE001 (every failure is counted and reported)
                self.record(kind, t0, False, f"{type(e).__name__}: {e}"[:300])


# ---------------------------------------------------------------- sampling

def proc_status(pid):
    v = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                v[k] = int(rest.split()[0])
    v["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return v


def ledger_bytes(spec):
    if spec.startswith("sqlite:"):
        path = spec[len("sqlite:"):]
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    out = subprocess.run(["psql", spec, "-tAqc", "SELECT pg_database_size(current_database())"],
                         capture_output=True, text=True, timeout=30, check=True)
    return int(out.stdout.strip())


def p99(latencies):
    if not latencies:
        return ""
    s = sorted(latencies)
    return f"{s[max(0, -(-len(s) * 99 // 100) - 1)] * 1000:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--out", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--ledger", required=True)
    ap.add_argument("--est-user", required=True)
    ap.add_argument("--est-password", required=True)
    ap.add_argument("--scep-challenge", required=True)
    ap.add_argument("--admin-token", required=True)
    ap.add_argument("--rates", default=DEFAULT_RATES)
    ap.add_argument("--grace", type=float, default=5, help="s after a revocation before OCSP must say revoked")
    ap.add_argument("--crl-grace", type=float, default=30, help="s after a revocation before the CRL must list it")
    args = ap.parse_args()
    rates = {k: float(v) for k, v in (p.split("=") for p in args.rates.split(","))}
    unknown = set(rates) - set(KINDS)
    if unknown:
        sys.exit(f"unknown kinds in --rates: {sorted(unknown)}")

    load = Load(args)
    threads = [threading.Thread(target=load.run_kind, args=(k, r), daemon=True) for k, r in rates.items() if r > 0]
    totals = {k: {"ok": 0, "errors": 0, "latencies": []} for k in KINDS}
    errors = []
    cols = ["t_s", "rss_kib", "rss_anon_kib", "rss_file_kib", "threads", "fds", "ledger_bytes"]
    for k in KINDS:
        cols += [f"{k}_n", f"{k}_p99_ms", f"{k}_err"]
    out = open(args.out, "w")
    out.write("\t".join(cols) + "\n")
    start = time.time()
    for t in threads:
        t.start()
    n = 0
    while True:
        n += 1
        t_sample = start + n * args.interval
        if t_sample > start + args.seconds + 1e-6:
            break
        time.sleep(max(0, t_sample - time.time()))
        try:
            st = proc_status(args.pid)
        except FileNotFoundError:
            errors.append(("server", "privca exited"))
            break
        size = ledger_bytes(args.ledger)
        window = {k: [] for k in KINDS}
        errs = {k: 0 for k in KINDS}
        for t1, kind, lat, ok, detail in load.take_events():
            if ok:
                window[kind].append(lat)
                totals[kind]["ok"] += 1
                totals[kind]["latencies"].append(lat)
            else:
                errs[kind] += 1
                totals[kind]["errors"] += 1
                if len(errors) < 20:
                    errors.append((kind, detail))
                    print(f"soak: {kind} error at {t1 - start:.0f} s: {detail}", flush=True)
        row = [f"{t_sample - start:.0f}", st["VmRSS"], st["RssAnon"], st["RssFile"], st["Threads"], st["fds"], size]
        for k in KINDS:
            row += [len(window[k]) + errs[k], p99(window[k]), errs[k]]
        out.write("\t".join(str(x) for x in row) + "\n")
        out.flush()
        if n % 6 == 0:
            print(f"soak: {t_sample - start:.0f} s: RSS {st['VmRSS'] / 1024:.1f} MiB, {st['fds']} fds, ledger "
                  f"{size / 1048576:.1f} MiB, requests so far {sum(v['ok'] for v in totals.values())}, "
                  f"errors {sum(v['errors'] for v in totals.values())}", flush=True)
    load.stop.set()
    for t in threads:
        t.join(timeout=60)
    out.close()
    # Requests that finished after the last sample still count in the totals.
    for t1, kind, lat, ok, detail in load.take_events():
        totals[kind]["ok" if ok else "errors"] += 1
        if ok:
            totals[kind]["latencies"].append(lat)
        elif len(errors) < 20:
            errors.append((kind, detail))
            print(f"soak: {kind} error at {t1 - start:.0f} s: {detail}", flush=True)
    elapsed = time.time() - start
    summary = {"seconds": elapsed, "rates": rates, "kinds": {}, "errors": errors}
    for k in KINDS:
        lat = sorted(totals[k]["latencies"])
        summary["kinds"][k] = {
            "ok": totals[k]["ok"], "errors": totals[k]["errors"],
            "per_s": totals[k]["ok"] / elapsed,
            "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
            "p99_ms": float(p99(lat)) if lat else None,
            "max_ms": lat[-1] * 1000 if lat else None,
        }
    with open(args.summary, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
