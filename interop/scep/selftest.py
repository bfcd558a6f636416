#!/usr/bin/env python3
"""Self-test of scep_client.py without privca.

Proves the client codec against OpenSSL's command line and a small SCEP server written here:
  * every PKCSReq cipher x digest: `openssl cms -verify -noverify` accepts the signature and
    `openssl cms -decrypt` with the RA key yields the CSR byte for byte (challengePassword and
    SAN inside); RenewalReq signed by EC P-256 and RSA certificates, sha*WithRSAEncryption,
    CertPoll/GetCert/GetCRL contents;
  * CertReps built the way a server builds them (certs-only by `openssl crl2pkcs7`, enveloped by
    `openssl cms -encrypt`, signed by the RA here and checked by `openssl cms -verify`) are
    accepted by parse_cert_rep: SUCCESS with the certificate, GetCRL with the CRL, PENDING,
    FAILURE; tampered or mismatched ones are refused;
  * GetCACert order, the GET encodings, and the CLI (enroll/poll by POST, GET, wrapped GET;
    renewal, getcert, getcrl) against a mock SCEP server on 127.0.0.1;
  * if certmonger's scep-submit is installed: it takes `scep_client.py pkcsreq` output with -p,
    and its SUCCESS / PENDING / FAILURE outputs and exit codes are as documented in scep_client.py.

usage: selftest.py        Prints one "ok"/"FAIL" line per check and "N passed, M failed";
                          exits 1 if any check failed.
"""
import base64
import datetime
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import char, univ
from pyasn1_alt_modules import rfc5652, rfc8894

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scep_client as sc  # noqa: E402

SCEP_SUBMIT = "/usr/lib/certmonger/scep-submit"
WORK = tempfile.mkdtemp(prefix="scep-selftest.")
PASSED = 0
FAILED = 0


def check(what, cond, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print(f"  ok   {what}")
    else:
        FAILED += 1
        print(f"  FAIL {what}" + (f": {detail}" if detail else ""))


def path(name):
    return os.path.join(WORK, name)


def write(name, data):
    with open(path(name), "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path(name)


def read(name):
    with open(path(name), "rb") as f:
        return f.read()


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=60)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def refused(fn):
    try:
        fn()
    except sc.ScepError as e:
        return str(e)
    return None


# ---------------------------------------------------------------- test PKI

def issue(subject, public_key, issuer_cert, issuer_key, ca=False, key_usage=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    ku = key_usage or {"digital_signature": True, "key_encipherment": True}
    flags = {k: ku.get(k, False) for k in ("digital_signature", "content_commitment", "key_encipherment",
                                            "data_encipherment", "key_agreement", "key_cert_sign",
                                            "crl_sign", "encipher_only", "decipher_only")}
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**flags), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


CA_KEY = sc.new_rsa_key()
CA = issue(name("SCEP selftest CA"), CA_KEY.public_key(), None, CA_KEY, ca=True,
           key_usage={"key_cert_sign": True, "crl_sign": True, "digital_signature": True})
RA_KEY = sc.new_rsa_key()
RA = issue(name("SCEP selftest RA"), RA_KEY.public_key(), CA, CA_KEY)
write("ca.pem", pem(CA))
write("ra.pem", pem(RA))
write("ra.key", sc._key_pem(RA_KEY))
write("ca-certs.pem", pem(RA) + pem(CA))


# ---------------------------------------------------------------- server side (independent of the client's parser)

def server_read(der, tag):
    """What a server learns from a client pkiMessage: OpenSSL checks the signature and decrypts;
    the SCEP attributes and the signer certificate are read here with pyasn1."""
    write(f"{tag}.req.der", der)
    verify = openssl("cms", "-verify", "-noverify", "-inform", "DER", "-in", path(f"{tag}.req.der"),
                     "-out", path(f"{tag}.env.der"), "-certsout", path(f"{tag}.signer.pem"))
    if verify.returncode != 0:
        return None
    decrypt = openssl("cms", "-decrypt", "-inform", "DER", "-in", path(f"{tag}.env.der"), "-recip", path("ra.pem"),
                      "-inkey", path("ra.key"), "-out", path(f"{tag}.inner.der"))
    if decrypt.returncode != 0:
        return None
    ci = decoder.decode(der, asn1Spec=rfc5652.ContentInfo())[0]
    sd = decoder.decode(ci["content"], asn1Spec=rfc5652.SignedData())[0]
    attrs = {str(a["attrType"]): bytes(a["attrValues"][0]) for a in sd["signerInfos"][0]["signedAttrs"]}
    return {
        "txid": str(decoder.decode(attrs[str(rfc8894.id_transactionID)], asn1Spec=char.PrintableString())[0]),
        "type": str(decoder.decode(attrs[str(rfc8894.id_messageType)], asn1Spec=char.PrintableString())[0]),
        "nonce": bytes(decoder.decode(attrs[str(rfc8894.id_senderNonce)], asn1Spec=univ.OctetString())[0]),
        "signer": x509.load_pem_x509_certificate(read(f"{tag}.signer.pem")),
        "inner": read(f"{tag}.inner.der"),
    }


def certs_only(tag, certs=(), crl=None):
    """Degenerate certs-only SignedData DER by `openssl crl2pkcs7`, certificates in the given order."""
    args = ["crl2pkcs7", "-outform", "DER", "-out", path(f"{tag}.p7.der")]
    if crl is None:
        args.append("-nocrl")
    else:
        args += ["-in", write(f"{tag}.crl.pem", crl.public_bytes(serialization.Encoding.PEM))]
    for i, c in enumerate(certs):
        args += ["-certfile", write(f"{tag}.c{i}.pem", pem(c))]
    assert openssl(*args).returncode == 0
    return read(f"{tag}.p7.der")


def certs_only_envelope(tag, recipient, cipher="-aes256", certs=(), crl=None):
    """certs_only() enveloped for `recipient` by `openssl cms -encrypt`."""
    certs_only(tag, certs, crl)
    r = openssl("cms", "-encrypt", "-binary", cipher, "-inform", "DER", "-outform", "DER", "-in",
                path(f"{tag}.p7.der"), write(f"{tag}.recipient.pem", pem(recipient)))
    assert r.returncode == 0, r.stderr
    return r.stdout


def cert_rep(txid, recipient_nonce, status, content=None, fail_info=None, signer=(RA, RA_KEY),
             message_type="3", sender_nonce=True, digest="sha256"):
    attrs = [(rfc8894.id_transactionID, char.PrintableString(txid)),
             (rfc8894.id_messageType, char.PrintableString(message_type)),
             (rfc8894.id_pkiStatus, char.PrintableString(status)),
             (rfc8894.id_recipientNonce, univ.OctetString(recipient_nonce))]
    if sender_nonce:
        attrs.append((rfc8894.id_senderNonce, univ.OctetString(os.urandom(16))))
    if fail_info is not None:
        attrs.append((rfc8894.id_failInfo, char.PrintableString(fail_info)))
    return sc.sign_message(content, attrs, signer[0], signer[1], digest)


NOW = datetime.datetime.now(datetime.timezone.utc)
CRL = (x509.CertificateRevocationListBuilder().issuer_name(CA.subject).last_update(NOW)
       .next_update(NOW + datetime.timedelta(days=1))
       .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(42).revocation_date(NOW).build())
       .sign(CA_KEY, hashes.SHA256()))
# raw query strings seen; CSR DER by subject DER (for CertPoll); issued certificates by serial (for GetCert)
MOCK = {"queries": [], "csr": {}, "issued": {}}


def answer(req_der, tag):
    """The mock CA: PENDING for CN pending*, FAILURE badRequest for CN reject* (both with an empty
    eContent; CN noecontent-pending*: PENDING without eContent), else a certificate (for CertPoll:
    of the CSR sent earlier with that subject); GetCert: the certificate or badCertId; GetCRL: CRL."""
    info = server_read(req_der, tag)
    if info is None:
        return None
    if info["type"] in ("19", "17"):
        csr = x509.load_der_x509_csr(info["inner"])
        MOCK["csr"][csr.subject.public_bytes()] = info["inner"]
        cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        if "pending" in cn and info["type"] == "19":
            return cert_rep(info["txid"], info["nonce"], "3", content=None if cn.startswith("noecontent") else b"")
        if cn.startswith("reject"):
            return cert_rep(info["txid"], info["nonce"], "2", content=b"", fail_info="2")
        cert = issue(csr.subject, csr.public_key(), CA, CA_KEY)
    elif info["type"] == "20":
        ias = decoder.decode(info["inner"], asn1Spec=rfc8894.IssuerAndSubject())[0]
        csr = x509.load_der_x509_csr(MOCK["csr"][encoder.encode(ias["subject"])])
        cert = issue(csr.subject, csr.public_key(), CA, CA_KEY)
    elif info["type"] == "21":
        ias = decoder.decode(info["inner"], asn1Spec=rfc5652.IssuerAndSerialNumber())[0]
        found = MOCK["issued"].get(int(ias["serialNumber"]))
        if found is None:
            return cert_rep(info["txid"], info["nonce"], "2", content=b"", fail_info="4")
        return cert_rep(info["txid"], info["nonce"], "0", certs_only_envelope(tag, info["signer"], certs=[found]))
    else:
        return cert_rep(info["txid"], info["nonce"], "0", certs_only_envelope(tag, info["signer"], crl=CRL))
    MOCK["issued"][cert.serial_number] = cert
    return cert_rep(info["txid"], info["nonce"], "0", certs_only_envelope(tag, info["signer"], certs=[cert, CA]))


# ---------------------------------------------------------------- 1. outbound messages checked by OpenSSL

print("pkiMessages checked by openssl cms:")
CLIENT_KEY = sc.new_rsa_key()
CSR = sc.make_csr(CLIENT_KEY, "dev1.example.test", ["dev1.example.test", "192.0.2.7"], "s3cret-challenge")
CSR_DER = CSR.public_bytes(serialization.Encoding.DER)
SELF = sc.self_signed(CLIENT_KEY, CSR.subject)
OPENSSL_CIPHER = {"aes128": "aes-128-cbc", "aes256": "aes-256-cbc", "3des": "des-ede3-cbc"}


def cms_print(file):
    return openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", path(file)).stdout.decode()


for cipher in sc.CIPHERS:
    for digest in sc.DIGESTS:
        tag = f"pkcsreq-{cipher}-{digest}"
        req = sc.pkcs_req(CSR, RA, SELF, CLIENT_KEY, cipher=cipher, digest=digest)
        info = server_read(req.der, tag)
        check(f"PKCSReq {cipher}/{digest}: signature verifies, RA decrypts the CSR byte for byte",
              info is not None and info["inner"] == CSR_DER)
        check(f"PKCSReq {cipher}/{digest}: {OPENSSL_CIPHER[cipher]} and {digest} as printed by openssl; "
              "messageType 19, transactionID, 16-byte senderNonce, self-signed signer",
              info is not None and f"algorithm: {OPENSSL_CIPHER[cipher]} (" in cms_print(f"{tag}.env.der")
              and f"algorithm: {digest} (" in cms_print(f"{tag}.req.der")
              and info["type"] == "19" and info["txid"] == req.transaction_id
              and info["nonce"] == req.sender_nonce and len(req.sender_nonce) == 16 and info["signer"] == SELF)

csr_text = subprocess.run(["openssl", "req", "-inform", "DER", "-noout", "-text", "-verify"], input=CSR_DER,
                          capture_output=True, timeout=60)
out = csr_text.stdout.decode() + csr_text.stderr.decode()
check("CSR: self-signature verifies, challengePassword and SAN (DNS, IP) present",
      "verify OK" in out and "challengePassword" in out and "DNS:dev1.example.test" in out
      and "IP Address:192.0.2.7" in out)

req = sc.pkcs_req(CSR, RA, SELF, CLIENT_KEY, rsa_oid="withDigest", signing_time=False)
info = server_read(req.der, "withdigest")
printed = cms_print("withdigest.req.der")
check("PKCSReq with sha256WithRSAEncryption as signatureAlgorithm and no signingTime verifies",
      info is not None and "sha256WithRSAEncryption" in printed and "signingTime" not in printed
      and "signingTime" in cms_print("pkcsreq-aes128-sha256.req.der"))

for kind, key in (("EC P-256", ec.generate_private_key(ec.SECP256R1())), ("RSA-2048", sc.new_rsa_key())):
    old = issue(name("dev1.example.test"), key.public_key(), CA, CA_KEY)
    new_key = sc.new_rsa_key()
    new_csr = sc.make_csr(new_key, "dev1.example.test", ["dev1.example.test"])
    req = sc.pkcs_req(new_csr, RA, old, key, renewal=True)
    info = server_read(req.der, f"renew-{kind[:2]}")
    check(f"RenewalReq signed by the {kind} certificate: messageType 17, signer = old certificate, new CSR inside",
          info is not None and info["type"] == "17" and info["signer"] == old
          and info["inner"] == new_csr.public_bytes(serialization.Encoding.DER))

req = sc.cert_poll(CA, CSR.subject, "TX-1", RA, SELF, CLIENT_KEY)
info = server_read(req.der, "certpoll")
ias = decoder.decode(info["inner"], asn1Spec=rfc8894.IssuerAndSubject())[0] if info else None
check("CertPoll: messageType 20, transactionID kept, IssuerAndSubject = (CA subject, CSR subject)",
      info is not None and info["type"] == "20" and info["txid"] == "TX-1"
      and encoder.encode(ias["issuer"]) == CA.subject.public_bytes()
      and encoder.encode(ias["subject"]) == CSR.subject.public_bytes())
for mtype, builder in (("GetCert", lambda: sc.get_cert(CA, 0x1234ABCD, RA, SELF, CLIENT_KEY)),
                       ("GetCRL", lambda: sc.get_crl(RA, RA, SELF, CLIENT_KEY))):
    req = builder()
    info = server_read(req.der, mtype)
    serial = 0x1234ABCD if mtype == "GetCert" else RA.serial_number
    issuer = CA.subject if mtype == "GetCert" else RA.issuer
    parsed = decoder.decode(info["inner"], asn1Spec=rfc5652.IssuerAndSerialNumber())[0] if info else None
    check(f"{mtype}: messageType {sc.MESSAGE_TYPES[mtype]}, IssuerAndSerialNumber inside",
          info is not None and info["type"] == str(sc.MESSAGE_TYPES[mtype])
          and int(parsed["serialNumber"]) == serial and encoder.encode(parsed["issuer"]) == issuer.public_bytes())

# ---------------------------------------------------------------- 2. CertReps

print("CertRep parsing:")
REQ = sc.pkcs_req(CSR, RA, SELF, CLIENT_KEY)
ISSUED = issue(CSR.subject, CSR.public_key(), CA, CA_KEY)
for cipher in ("-aes128", "-aes256", "-des3"):
    env = certs_only_envelope(f"rep{cipher}", SELF, cipher, certs=[ISSUED, CA])
    rep = cert_rep(REQ.transaction_id, REQ.sender_nonce, "0", content=env)
    write(f"rep{cipher}.der", rep)
    ossl = openssl("cms", "-verify", "-noverify", "-inform", "DER", "-in", path(f"rep{cipher}.der"),
                   "-out", "/dev/null")
    try:
        r = sc.parse_cert_rep(rep, [RA, CA], CLIENT_KEY, REQ.transaction_id, REQ.sender_nonce)
    except sc.ScepError as e:
        r = {"status": str(e)}
    check(f"SUCCESS CertRep ({cipher[1:]}, checked by openssl cms -verify): certificate then CA, in order",
          ossl.returncode == 0 and r["status"] == "SUCCESS" and r["certs"] == [ISSUED, CA] and r["signer_cert"] == RA,
          r["status"])

rep = cert_rep(REQ.transaction_id, REQ.sender_nonce, "0", certs_only_envelope("crl", SELF, crl=CRL), digest="sha512")
r = sc.parse_cert_rep(rep, RA, CLIENT_KEY, REQ.transaction_id, REQ.sender_nonce)
check("GetCRL-style SUCCESS (sha512): the CRL in crls, no certificates",
      r["status"] == "SUCCESS" and r["crls"] == [CRL] and r["certs"] == [])
for what, content in (("without eContent", None), ("with an empty eContent", b"")):
    r = sc.parse_cert_rep(cert_rep(REQ.transaction_id, REQ.sender_nonce, "3", content), RA, CLIENT_KEY,
                          REQ.transaction_id, REQ.sender_nonce)
    check(f"PENDING CertRep {what}", r["status"] == "PENDING" and r["certs"] == [])
for code, fname in sc.FAIL_INFO.items():
    r = sc.parse_cert_rep(cert_rep(REQ.transaction_id, REQ.sender_nonce, "2", fail_info=code), RA, CLIENT_KEY,
                          REQ.transaction_id, REQ.sender_nonce)
    check(f"FAILURE CertRep failInfo {code} = {fname}", r["status"] == "FAILURE" and r["fail_info"] == fname)

good_env = certs_only_envelope("tamper", SELF, certs=[ISSUED])
good = cert_rep(REQ.transaction_id, REQ.sender_nonce, "0", content=good_env)
check("untampered CertRep accepted", refused(lambda: sc.parse_cert_rep(good, RA, CLIENT_KEY, REQ.transaction_id,
                                                                       REQ.sender_nonce)) is None)
at = good.index(good_env) + len(good_env) // 2
flipped_content = good[:at] + bytes([good[at] ^ 1]) + good[at + 1:]
flipped_sig = good[:-5] + bytes([good[-5] ^ 1]) + good[-4:]
other_key = sc.new_rsa_key()
other_ra = sc.self_signed(other_key, name("not the RA"))
tampered = {
    "content byte flipped (messageDigest)": flipped_content,
    "signature byte flipped": flipped_sig,
    "signed by another key under the RA's name": cert_rep(REQ.transaction_id, REQ.sender_nonce, "0", good_env,
                                                         signer=(RA, other_key)),
    "signed by a certificate that is not the RA": cert_rep(REQ.transaction_id, REQ.sender_nonce, "0", good_env,
                                                          signer=(other_ra, other_key)),
    "other transactionID": cert_rep("OTHER", REQ.sender_nonce, "0", good_env),
    "recipientNonce not our senderNonce": cert_rep(REQ.transaction_id, os.urandom(16), "0", good_env),
    "no senderNonce": cert_rep(REQ.transaction_id, REQ.sender_nonce, "0", good_env, sender_nonce=False),
    "messageType 19 instead of 3": cert_rep(REQ.transaction_id, REQ.sender_nonce, "0", good_env, message_type="19"),
    "pkiStatus 1": cert_rep(REQ.transaction_id, REQ.sender_nonce, "1", good_env),
    "FAILURE without failInfo": cert_rep(REQ.transaction_id, REQ.sender_nonce, "2"),
    "SUCCESS without content": cert_rep(REQ.transaction_id, REQ.sender_nonce, "0"),
    "envelope for another key": cert_rep(REQ.transaction_id, REQ.sender_nonce, "0",
                                         certs_only_envelope("otherkey", other_ra, certs=[ISSUED])),
}
for what, der in tampered.items():
    why = refused(lambda: sc.parse_cert_rep(der, RA, CLIENT_KEY, REQ.transaction_id, REQ.sender_nonce))
    check(f"refused: {what} ({why})", why is not None)

# ---------------------------------------------------------------- 3. GetCACert order, GET encoding

print("GetCACert and GET encoding:")
for order in ([RA, CA], [CA, RA]):
    certs = sc.parse_ca_certs("application/x-x509-ca-ra-cert", certs_only("cacert", order))
    check(f"x-x509-ca-ra-cert order kept ({', '.join(c.subject.rfc4514_string() for c in order)}); "
          "pick_ra = (RA, CA)", certs == order and sc.pick_ra(certs) == (RA, CA))
check("x-x509-ca-cert: one DER certificate, which is both RA and CA",
      sc.pick_ra(sc.parse_ca_certs("application/x-x509-ca-cert", CA.public_bytes(serialization.Encoding.DER)))
      == (CA, CA))

der = b"\xfb\xff\xbf" * 40 + b"\x00"  # base64 "+/+/..." ending in "=="
q = sc.message_query(der).split("message=", 1)[1]
check("GET: '+' and '/' raw, only '=' as %3D, round-trips",
      "+" in q and "/" in q and "=" not in q and "%3D" in q and q.count("%") == q.count("%3D")
      and base64.b64decode(urllib.parse.unquote(q)) == der)
w = sc.message_query(der, wrap=True).split("message=", 1)[1]
lines = urllib.parse.unquote(w).split("\n")
check("GET wrapped: %0A after every 64 characters, round-trips",
      all(len(line) == 64 for line in lines[:-1]) and 0 < len(lines[-1]) <= 64
      and base64.b64decode("".join(lines)) == der)


# ---------------------------------------------------------------- 4. mock SCEP server on loopback

class Mock(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def pki(self, der):
        body = answer(der, f"mock{len(MOCK['queries'])}")
        if body is None:
            self.reply(400, "text/plain", b"bad pkiMessage")
        else:
            self.reply(200, "application/x-pki-message", body)

    def do_GET(self):
        raw = self.path.split("?", 1)[1] if "?" in self.path else ""
        MOCK["queries"].append(("GET", raw))
        params = dict(p.split("=", 1) for p in raw.split("&") if "=" in p)
        op = params.get("operation")
        if op == "GetCACaps":
            self.reply(200, "text/plain",
                       b"AES\r\nPOSTPKIOperation\r\nRenewal\r\nSHA-256\r\nSHA-512\r\nSCEPStandard\r\n")
        elif op == "GetCACert":
            self.reply(200, "application/x-x509-ca-ra-cert", CACERT_REPLY)
        elif op == "PKIOperation":
            try:
                der = base64.b64decode(urllib.parse.unquote(params["message"]).replace("\n", ""), validate=True)
            except ValueError:
                return self.reply(400, "text/plain", b"bad base64")
            self.pki(der)
        else:
            self.reply(400, "text/plain", b"unknown operation")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        MOCK["queries"].append(("POST", self.path))
        if self.headers.get("Content-Type") != "application/x-pki-message":
            self.reply(415, "text/plain", b"")
        else:
            self.pki(body)


CACERT_REPLY = certs_only("cacert-mock", [RA, CA])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mock)
threading.Thread(target=server.serve_forever, daemon=True).start()
URL = f"http://127.0.0.1:{server.server_port}/scep"
print(f"mock SCEP server and CLI ({URL}):")

check("get_ca_caps splits CRLF lines", sc.get_ca_caps(URL) == ["AES", "POSTPKIOperation", "Renewal", "SHA-256",
                                                                 "SHA-512", "SCEPStandard"])
check("get_ca_cert: x-x509-ca-ra-cert, RA then CA", sc.get_ca_cert(URL) == ("application/x-x509-ca-ra-cert", [RA, CA]))


def cli(*args):
    r = subprocess.run([sys.executable, os.path.join(HERE, "scep_client.py"), *args], capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


for method, cipher, digest in (("post", "aes128", "sha256"), ("get", "3des", "sha1"),
                               ("get-wrapped", "aes256", "sha512")):
    d = path(f"enroll-{method}")
    rc, out = cli("enroll", URL, "--cn", f"{method}.example.test", "--san", f"{method}.example.test",
                  "--challenge", "pw", "--method", method, "--cipher", cipher, "--digest", digest, "--dir", d,
                  *(["--sig-oid", "withDigest", "--no-signing-time"] if method == "get" else []))
    ok = rc == 0 and "status=SUCCESS" in out and os.path.exists(f"{d}/cert.pem")
    if ok:
        leaf = x509.load_pem_x509_certificates(open(f"{d}/cert.pem", "rb").read())[0]
        key = serialization.load_pem_private_key(open(f"{d}/key.pem", "rb").read(), None)
        ok = leaf.public_key() == key.public_key()
    last = MOCK["queries"][-1]
    query = last[1]
    sent = {"post": last[0] == "POST", "get": not any(e in query for e in ("%0A", "%2B", "%2F")),
            "get-wrapped": "%0A" in query}[method]
    extra = ", sha1WithRSAEncryption, no signingTime" if method == "get" else ""
    check(f"CLI enroll by {method} ({cipher}/{digest}{extra}): SUCCESS, cert.pem holds the new key", ok and sent, out)

d = path("enroll-pending")
rc, out = cli("enroll", URL, "--cn", "pending.example.test", "--dir", d)
check("CLI enroll PENDING: exit 3", rc == 3 and "status=PENDING" in out, out)
rc, out = cli("poll", URL, "--dir", d, "--method", "get")
check("CLI poll (CertPoll, same transactionID): SUCCESS", rc == 0 and "status=SUCCESS" in out, out)
rc, out = cli("enroll", URL, "--cn", "reject.example.test", "--dir", path("enroll-reject"))
check("CLI enroll FAILURE: exit 2, failInfo=badRequest", rc == 2 and "failInfo=badRequest" in out, out)
rc, out = cli("enroll", URL, "--cn", "dev1.example.test", "--dir", path("enroll-renew"),
              "--renew-cert", path("enroll-post/cert.pem"), "--renew-key", path("enroll-post/key.pem"))
check("CLI enroll --renew-cert (RenewalReq signed by the issued certificate): SUCCESS",
      rc == 0 and "status=SUCCESS" in out, out)
issued = path("enroll-post/cert.pem")
signed_by = ("--cert", issued, "--key", path("enroll-post/key.pem"))
leaf = x509.load_pem_x509_certificates(open(issued, "rb").read())[0]
rc, out = cli("getcert", URL, *signed_by, "--serial", format(leaf.serial_number, "x"), "--dir", path("getcert"))
got = x509.load_pem_x509_certificates(open(path("getcert/cert.pem"), "rb").read()) if rc == 0 else []
check("CLI getcert --serial: SUCCESS with that certificate", rc == 0 and got == [leaf], out)
rc, out = cli("getcert", URL, *signed_by, "--serial", "1", "--dir", path("getcert-unknown"))
check("CLI getcert for an unknown serial: exit 2, failInfo=badCertId", rc == 2 and "failInfo=badCertId" in out, out)
rc, out = cli("getcrl", URL, *signed_by, "--dir", path("getcrl"))
got = x509.load_pem_x509_crl(open(path("getcrl/crl.pem"), "rb").read()) if rc == 0 else None
check("CLI getcrl: SUCCESS with the CA's CRL in crl.pem", rc == 0 and got == CRL, out)


# ---------------------------------------------------------------- 5. certmonger's scep-submit

def scep_submit(*args):
    r = subprocess.run([SCEP_SUBMIT, "-u", URL, *args], capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


if not os.path.exists(SCEP_SUBMIT):
    print(f"scep-submit: skipped ({SCEP_SUBMIT} not installed)")
else:
    print("certmonger scep-submit against the mock:")
    ra_ca = ["-r", path("ra.pem"), "-N", path("ca.pem")]
    for cn in ("ok", "pending", "reject", "noecontent-pending"):
        cli("pkcsreq", "--ca-certs", path("ca-certs.pem"), "--cn", f"{cn}.example.test", "--dir", path(f"submit-{cn}"))
    d = path("submit-ok")
    before = len(MOCK["queries"])
    rc, out, err = scep_submit(*ra_ca, "-p", f"{d}/pkcsreq.pem")
    queries = MOCK["queries"][before:]
    with open(f"{d}/out.pem", "w") as f:
        f.write(out)
    drc, dout = cli("decrypt", "--dir", d, f"{d}/out.pem")
    leaf = x509.load_pem_x509_certificates(dout.encode())[0] if drc == 0 else None
    key = serialization.load_pem_private_key(open(f"{d}/key.pem", "rb").read(), None)
    check("scep-submit -r RA -N CA -p (SUCCESS): exit 0, PKCS7 PEM that `decrypt` opens to the certificate",
          rc == 0 and out.startswith("-----BEGIN PKCS7-----") and leaf is not None
          and leaf.public_key() == key.public_key(), out + err)
    pki = [q[1].split("message=", 1)[1] for q in queries if "operation=PKIOperation" in q[1]]
    check("scep-submit: GET GetCACaps, then GET PKIOperation with '+', '/', '=' as %2B, %2F, %3D (no POST)",
          [q[0] for q in queries] == ["GET", "GET"] and "operation=GetCACaps" in queries[0][1] and len(pki) == 1
          and not set("+/=") & set(pki[0]) and base64.b64decode(urllib.parse.unquote(pki[0])),
          str(queries)[:300])
    bare = write("submit-bare.b64", "".join(line for line in open(f"{d}/pkcsreq.pem").read().splitlines()
                                            if not line.startswith("-----")))
    rc, out, err = scep_submit(*ra_ca, "-p", bare)
    check("scep-submit -p takes bare base64 too", rc == 0 and out.startswith("-----BEGIN PKCS7-----"), out + err)
    rc, out, err = scep_submit("-r", path("ra.pem"), "-p", f"{d}/pkcsreq.pem")
    check("scep-submit -r RA without -N CA (RA issued by the CA): exit 3, response signature not verified",
          rc == 3 and "failed to verify signature on server response" in out, f"rc={rc} {out[:200]}")
    rc, out, err = scep_submit(*ra_ca, "-p", path("submit-pending/pkcsreq.pem"))
    check("scep-submit -p (PENDING, empty eContent): exit 1, stdout = the CertRep senderNonce in base64",
          rc == 1 and len(base64.b64decode(out.strip(), validate=True)) == 16, f"rc={rc} {out}{err}")
    rc, out, err = scep_submit(*ra_ca, "-p", path("submit-reject/pkcsreq.pem"))
    check("scep-submit -p (FAILURE badRequest, empty eContent): exit 2, names the failure",
          rc == 2 and "not permitted" in out, f"rc={rc} {out}{err}")
    rc, out, err = scep_submit(*ra_ca, "-p", path("submit-noecontent-pending/pkcsreq.pem"))
    check("scep-submit -p (PENDING without eContent): exit 3, PKCS7_verify 'no content'",
          rc == 3 and "failed to verify signature" in out and "no content" in out, f"rc={rc} {out[:200]}")
    rc, out, err = scep_submit(*ra_ca, "-p", "/dev/null")
    check("scep-submit -p with an empty message: exit 16", rc == 16, f"rc={rc} {out}{err}")

server.shutdown()
if FAILED:
    print(f"files kept in {WORK}")
else:
    shutil.rmtree(WORK)
print(f"scep selftest: {PASSED} passed, {FAILED} failed")
sys.exit(1 if FAILED else 0)
