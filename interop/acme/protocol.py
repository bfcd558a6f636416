"""Scripted ACME client for what no Debian client exercises: error cases (bad signature,
replayed nonce, wrong url, unknown account, wrong content type, oversized body, alg none,
CSR names != order, CSR key = account key, bad revocation reason, GET on a POST resource),
profiles (meta.profiles, newOrder "profile"), ARI (renewalInfo, "replaces", alreadyReplaced), and
http-01 validation as a port scanner would use it (redirects to other ports, denied addresses: one
generic problem, no address, port or cause in it).
Independent of privca's code: Python `cryptography` + urllib. Usage: protocol.py ROOT_PEM [--deny]
(--deny: only the checks for a server whose [acme.validation] deny_ranges is ["127.0.0.2/32"]).

http-01 responder: 127.0.0.1:5002 and 127.0.0.2:5002 (the dev config's validation port), plus
127.0.0.2:80 and TLS on 127.0.0.2:443 as redirect targets (binding them needs root, as CI runs).
DNS: pebble-challtestsrv answers 127.0.0.1 for every name unless told otherwise (/add-a)."""
import base64, datetime, hashlib, json, os, socketserver, ssl, sys, tempfile, threading, time
import urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, HTTPServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import jws as _jws
from jws import Key, b64

DIR = "https://127.0.0.1:8443/acme/directory"
CTX = ssl.create_default_context(cafile=sys.argv[1])
PASSED = FAILED = 0


def check(what, cond):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print(f"  ok   {what}")
    else:
        FAILED += 1
        print(f"  FAIL {what}")


def http(method, url, body=None, ctype="application/jose+json", headers=None):
    return _jws.http(CTX, method, url, body, ctype=ctype, headers=headers, timeout=None)


directory = json.loads(http("GET", DIR)[2])
NONCE = [None]


def nonce():
    if NONCE[0]:
        n, NONCE[0] = NONCE[0], None
        return n
    return http("HEAD", directory["newNonce"])[1]["Replay-Nonce"]


def jws(key, url, payload, kid=None, alg="ES256", n=None, tamper=False):
    return _jws.body(key, url, payload, n or nonce(), kid, alg=alg, tamper=tamper)


def post(key, url, payload, kid=None, **kw):
    status, headers, body = http("POST", url, jws(key, url, payload, kid, **kw))
    NONCE[0] = headers.get("Replay-Nonce")
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        doc = {"raw": body}
    return status, headers, doc


def problem(doc):
    return doc.get("type", "").rsplit(":", 1)[-1] if isinstance(doc, dict) else ""


# --- http-01 responder: ANSWERS maps a path to (status, headers, body), whatever the host.
ANSWERS = {}


class Responder(BaseHTTPRequestHandler):
    def do_GET(self):
        status, headers, body = ANSWERS.get(self.path, (404, {}, b"not here"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def tls_context():
    """A self-signed certificate for the https: redirect target (not verified by the validator)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, NoEncryption
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redirect-target.privca.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "c.pem"), "wb") as f:
        f.write(cert.public_bytes(Encoding.PEM))
        f.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "c.pem"))
    return ctx


def start_responders(redirect_targets):
    """127.0.0.1:5002 and 127.0.0.2:5002; with redirect_targets also 127.0.0.2:80 and :443 (TLS).
    Returns the addresses that could not be bound."""
    failed = []
    binds = [("127.0.0.1", 5002, None), ("127.0.0.2", 5002, None)]
    if redirect_targets:
        binds += [("127.0.0.2", 80, None), ("127.0.0.2", 443, tls_context())]
    for host, port, ctx in binds:
        try:
            srv = Server((host, port), Responder)
        except OSError as e:
            failed.append(f"{host}:{port} ({e})")
            continue
        if ctx:
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    return failed


def add_a(name, address):
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:8055/add-a", data=json.dumps(
        {"host": f"{name}.", "addresses": [address]}).encode()))


def http01(key, account, name, answer):
    """Orders `name`, answers its http-01 challenge with answer(path, key_authorization) put in
    ANSWERS, and returns the challenge object once validation has finished."""
    s, _, order = post(key, directory["newOrder"], {"identifiers": [{"type": "dns", "value": name}]}, kid=account)
    _, _, a = post(key, order["authorizations"][0], None, kid=account)
    ch = next(c for c in a["challenges"] if c["type"] == "http-01")
    path = f"/.well-known/acme-challenge/{ch['token']}"
    answer(path, f"{ch['token']}.{key.thumbprint()}".encode())
    post(key, ch["url"], {}, kid=account)
    for _ in range(200):
        _, _, a = post(key, order["authorizations"][0], None, kid=account)
        if a["status"] != "pending":
            break
        time.sleep(0.1)
    return next(c for c in a["challenges"] if c["type"] == "http-01")


def serve_key_authorization(path, ka):
    ANSWERS[path] = (200, {}, ka)


def redirect_to(location):
    """An answer that redirects the challenge path to location (+ the token), where the key
    authorization is served too."""
    def answer(path, ka):
        token = path.rsplit("/", 1)[-1]
        ANSWERS[path] = (302, {"Location": location + token}, b"")
        ANSWERS["/target/" + token] = (200, {}, ka)
    return answer


def generic(ch, name, *leaks):
    """The challenge failed with exactly the generic connection problem, naming nothing else."""
    err = ch.get("error", {})
    detail = err.get("detail", "")
    rest = detail.replace(name, "")
    ok = (ch.get("status") == "invalid" and problem(err) == "connection"
          and detail == f"http-01: could not fetch the challenge response from {name}"
          and not any(leak in rest for leak in leaks))
    if not ok:
        print("    challenge:", json.dumps(ch))
    return ok


def new_account():
    key = Key()
    _, h, _ = post(key, directory["newAccount"], {"termsOfServiceAgreed": True})
    return key, h.get("Location")


if "--deny" in sys.argv[2:]:
    # The server runs with deny_ranges = ["127.0.0.2/32"]; the responders are as in the first run.
    failed = start_responders(redirect_targets=True)
    check(f"http-01 responders bound (unbound: {failed or 'none'})", not failed)
    key, account = new_account()
    add_a("denied-address.privca.test", "127.0.0.2")
    ch = http01(key, account, "denied-address.privca.test", serve_key_authorization)
    check("deny list: a name resolving into a denied range fails with the generic connection problem",
          generic(ch, "denied-address.privca.test", "127.0.0.2", "denied", "5002"))
    ch = http01(key, account, "denied-redirect.privca.test", redirect_to("http://127.0.0.2/target/"))
    check("deny list: a redirect to a denied IP literal (port 80, answering) fails with the same generic problem",
          generic(ch, "denied-redirect.privca.test", "127.0.0.2", "denied", ":80"))
    add_a("denied-target.privca.test", "127.0.0.2")
    ch = http01(key, account, "denied-by-name.privca.test", redirect_to("http://denied-target.privca.test/target/"))
    check("deny list: a redirect to a name resolving into a denied range fails with the same generic problem",
          generic(ch, "denied-by-name.privca.test", "127.0.0.2", "denied", "denied-target"))
    ch = http01(key, account, "allowed-address.privca.test", serve_key_authorization)
    check("deny list: an address outside the denied ranges still validates", ch.get("status") == "valid")
    print(f"protocol (deny list): {PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


check("directory has renewalInfo", "renewalInfo" in directory)
check("meta.profiles lists the ACME profiles", set(directory["meta"].get("profiles", {})) >= {"tls-server", "tls-server-gated"})
s, h, _ = http("HEAD", directory["newNonce"])
check("HEAD newNonce: 200, no-store", s == 200 and h.get("Cache-Control") == "no-store" and h.get("Replay-Nonce"))
s, h, _ = http("GET", directory["newNonce"])
check("GET newNonce: 204", s == 204 and h.get("Replay-Nonce"))

acct = Key()
s, h, doc = post(acct, directory["newAccount"], {"termsOfServiceAgreed": True, "contact": ["mailto:p@privca.test"]})
kid = h.get("Location")
check("newAccount: 201 + Location", s == 201 and kid)
s, h, doc = post(acct, directory["newAccount"], {"termsOfServiceAgreed": True})
check("same key again: 200, same Location", s == 200 and h.get("Location") == kid)
s, h, doc = post(acct, directory["newAccount"], {"onlyReturnExisting": True}, tamper=True)
check("bad signature: 400 malformed with a fresh nonce", s == 400 and problem(doc) == "malformed" and h.get("Replay-Nonce"))
s, h, doc = post(acct, directory["newAccount"], {"onlyReturnExisting": True})
check("  the nonce from the error works", s == 200)
used = nonce()
post(acct, directory["newAccount"], {"onlyReturnExisting": True}, n=used)
s, h, doc = post(acct, directory["newAccount"], {"onlyReturnExisting": True}, n=used)
check("replayed nonce: 400 badNonce + Replay-Nonce", s == 400 and problem(doc) == "badNonce" and h.get("Replay-Nonce"))
s, h, b = http("POST", directory["newAccount"], jws(acct, directory["newOrder"], {"onlyReturnExisting": True}))
check("wrong url: unauthorized", problem(json.loads(b)) == "unauthorized")
s, h, doc = post(Key(), directory["newOrder"], {"identifiers": [{"type": "dns", "value": "x.privca.test"}]},
                 kid=kid.rsplit("/", 1)[0] + "/nosuchaccount")
check("unknown account: accountDoesNotExist", s == 400 and problem(doc) == "accountDoesNotExist")
s, h, b = http("POST", directory["newAccount"], jws(acct, directory["newAccount"], {}), ctype="application/json")
check("wrong Content-Type: 415", s == 415 and problem(json.loads(b)) == "malformed")
s, h, b = http("POST", directory["newOrder"], b"{" + b" " * 100_000 + b"}")
check("oversized body: 413 problem", s == 413 and h.get("Content-Type") == "application/problem+json")
s, h, doc = post(acct, directory["newAccount"], {}, alg="none")
check("alg none: badSignatureAlgorithm with algorithms list", problem(doc) == "badSignatureAlgorithm" and "ES256" in doc.get("algorithms", []))
s, h, doc = post(acct, directory["newAccount"], {"contact": ["tel:+123"]}, kid=None)
s, h, doc = post(acct, directory["newOrder"], {"identifiers": [{"type": "dns", "value": "Upper.privca.test"}]}, kid=kid)
check("upper-case identifier: rejectedIdentifier", problem(doc) == "rejectedIdentifier")
s, h, doc = post(acct, directory["newOrder"], {"identifiers": [{"type": "email", "value": "a@b.test"}]}, kid=kid)
check("email identifier: unsupportedIdentifier", problem(doc) == "unsupportedIdentifier")
s, h, doc = post(acct, directory["newOrder"], {"identifiers": [{"type": "dns", "value": "p.privca.test"}], "profile": "nope"}, kid=kid)
check("unknown profile: malformed", problem(doc) == "malformed")


def authorize_dns(order):
    for az in order["authorizations"]:
        _, _, a = post(acct, az, None, kid=kid)
        ch = next(c for c in a["challenges"] if c["type"] == "dns-01")
        ka = f"{ch['token']}.{acct.thumbprint()}"
        txt = b64(hashlib.sha256(ka.encode()).digest())
        name = a["identifier"]["value"]
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:8055/set-txt", data=json.dumps(
            {"host": f"_acme-challenge.{name}.", "value": txt}).encode()))
        s, h, c = post(acct, ch["url"], {}, kid=kid)
        up = ",".join(h.get_all("Link") or [])
        for _ in range(200):  # 20 s: room for one lost DNS query (dev config: 5 s timeout, 2 attempts)
            _, _, a = post(acct, az, None, kid=kid)
            if a["status"] != "pending":
                break
            time.sleep(0.1)
    return up


def order_for(name, **extra):
    s, h, order = post(acct, directory["newOrder"], {"identifiers": [{"type": "dns", "value": name}], **extra}, kid=kid)
    return s, h.get("Location"), order


def csr_for(names, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
    b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return b64(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


s, url, order = order_for("p.privca.test", profile="tls-server")
check("newOrder with profile: 201, profile echoed", s == 201 and order.get("profile") == "tls-server")
up = authorize_dns(order)
check("challenge response carries Link rel=up", 'rel="up"' in up)
_, _, order = post(acct, url, None, kid=kid)
check("order ready after dns-01", order["status"] == "ready")
if order["status"] != "ready":  # say why, for the log
    for az in order["authorizations"]:
        print("    authorization:", json.dumps(post(acct, az, None, kid=kid)[2]))
s, _, doc = post(acct, order["finalize"], {"csr": csr_for(["p.privca.test", "extra.privca.test"])}, kid=kid)
check("CSR names != order: badCSR", s == 400 and problem(doc) == "badCSR")
_, _, order = post(acct, url, None, kid=kid)
check("  order still ready", order["status"] == "ready")
s, _, doc = post(acct, order["finalize"], {"csr": csr_for(["p.privca.test"], acct.k)}, kid=kid)
check("CSR key = account key: badCSR", problem(doc) == "badCSR")
s, _, order = post(acct, order["finalize"], {"csr": csr_for(["p.privca.test"])}, kid=kid)
check("finalize: valid with certificate URL", s == 200 and order["status"] == "valid" and "certificate" in order)
s, h, _ = http("GET", order["certificate"])
check("GET on a POST-as-GET resource: 405", s == 405)
status, headers, body = http("POST", order["certificate"], jws(acct, order["certificate"], None, kid))
check("download: application/pem-certificate-chain", status == 200 and headers.get("Content-Type") == "application/pem-certificate-chain")
leaf = x509.load_pem_x509_certificate(body)
aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
serial = leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 8) // 8, "big")
cert_id = f"{b64(aki)}.{b64(serial)}"
s, h, b = http("GET", f"{directory['renewalInfo']}/{cert_id}")
w = json.loads(b).get("suggestedWindow", {}) if s == 200 else {}
check("renewalInfo: window start < end, Retry-After", s == 200 and w.get("start", "") < w.get("end", "") and h.get("Retry-After"))
s, h, b = http("GET", f"{directory['renewalInfo']}/{cert_id}=")
check("renewalInfo with padding: 400", s == 400)
unknown = b64(bytes([1, 2]))
s, h, b = http("GET", f"{directory['renewalInfo']}/{b64(aki)}.{unknown}")
check("renewalInfo unknown certificate: 404", s == 404)
s, url2, order2 = order_for("p.privca.test", replaces=cert_id)
check("newOrder replaces: accepted and echoed", s == 201 and order2.get("replaces") == cert_id)
s, _, doc = order_for("p.privca.test", replaces=cert_id)
check("second replacement: 409 alreadyReplaced", s == 409 and problem(doc) == "alreadyReplaced")
_, _, order2 = post(acct, url2, None, kid=kid)
if order2["status"] != "ready":
    authorize_dns(order2)
s, _, order2 = post(acct, order2["finalize"], {"csr": csr_for(["p.privca.test"])}, kid=kid)
check("replacement issued", order2.get("status") == "valid")
_, _, body2 = http("POST", order2["certificate"], jws(acct, order2["certificate"], None, kid))
leaf2 = x509.load_pem_x509_certificate(body2)
serial2 = leaf2.serial_number.to_bytes((leaf2.serial_number.bit_length() + 8) // 8, "big")
der = leaf.public_bytes(serialization.Encoding.DER)
s, _, doc = post(acct, directory["revokeCert"], {"certificate": b64(der), "reason": 7}, kid=kid)
check("revocation reason 7: badRevocationReason", problem(doc) == "badRevocationReason")
s, _, doc = post(acct, directory["revokeCert"], {"certificate": b64(der), "reason": 4}, kid=kid)
check("revoke by the issuing account: 200", s == 200)
s, _, doc = post(acct, directory["revokeCert"], {"certificate": b64(der)}, kid=kid)
check("revoke again: alreadyRevoked", s == 400 and problem(doc) == "alreadyRevoked")
s, h, b = http("GET", f"{directory['renewalInfo']}/{cert_id}")
check("renewalInfo of a revoked certificate: window already open", s == 200 and json.loads(b)["suggestedWindow"]["start"] < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

# http-01 as a port scanner would use it, on the dev config (no deny list).
failed = start_responders(redirect_targets=True)
check(f"http-01 responders bound (unbound: {failed or 'none'})", not failed)
key, account = new_account()
ch = http01(key, account, "redirect-ssh.privca.test", redirect_to("http://127.0.0.1:22/"))
check("http-01 redirect to http://127.0.0.1:22/: the generic connection problem (no port, address or cause)",
      generic(ch, "redirect-ssh.privca.test", "22", "127.0.0.1", "refused", "port"))
ch = http01(key, account, "redirect-8080.privca.test", redirect_to("http://127.0.0.1:8080/"))
check("http-01 redirect to port 8080 (privca's own listener): the same generic problem",
      generic(ch, "redirect-8080.privca.test", "8080", "127.0.0.1", "port"))
ch = http01(key, account, "redirect-ftp.privca.test", redirect_to("ftp://127.0.0.2/target/"))
check("http-01 redirect to ftp: the same generic problem", generic(ch, "redirect-ftp.privca.test", "ftp", "127.0.0.2"))
ch = http01(key, account, "redirect-80.privca.test", redirect_to("http://127.0.0.2/target/"))
check("http-01 redirect to http://127.0.0.2/ (port 80) is followed: valid", ch.get("status") == "valid")
ch = http01(key, account, "redirect-443.privca.test", redirect_to("https://127.0.0.2/target/"))
check("http-01 redirect to https://127.0.0.2/ (443, self-signed) is followed: valid", ch.get("status") == "valid")
add_a("other-address.privca.test", "127.0.0.2")
ch = http01(key, account, "other-address.privca.test", serve_key_authorization)
check("http-01 on 127.0.0.2 validates without a deny list (the --deny run refuses it)", ch.get("status") == "valid")
ch = http01(key, account, "nothing-listens.privca.test", lambda path, ka: add_a("nothing-listens.privca.test", "127.0.0.3"))
check("http-01 to an address where nothing listens: the same generic problem",
      generic(ch, "nothing-listens.privca.test", "127.0.0.3", "refused", "5002"))
print(f"protocol: {PASSED} passed, {FAILED} failed")
print(f"REPLACED_SERIAL={leaf.serial_number:x}")
print(f"REPLACEMENT_SERIAL={leaf2.serial_number:x}")
print(f"REPLACEMENT_ARI_URL={directory['renewalInfo']}/{b64(aki)}.{b64(serial2)}")
sys.exit(1 if FAILED else 0)
