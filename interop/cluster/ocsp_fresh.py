"""OCSP freshness through the load balancer: for SECONDS, asks about every certificate in
CERTS again and again (one POST per certificate, no nonce, so the answer is the pre-signed
response the cluster's sweep keeps fresh) and checks each answer: HTTP 200, status successful,
signed by a responder certificate the certificate's issuer signed, the certificate's status as
the ledger had it (`good`, or `revoked` for one revoked before), thisUpdate not in the future and
nextUpdate in the future. A connection refused or reset (the balancer sending one to an instance
killed a moment ago) is retried once and counted.
Independent of privca's code: Python `cryptography` + urllib.

usage: ocsp_fresh.py URL CERTS SECONDS   (CERTS: lines `serial|status|issuer.pem|base64 DER`)
Prints a summary line; exits 1 if any answer failed a check."""
import base64, datetime, sys, time, urllib.error, urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp


def verify(resp, issuer):
    """The response verifies under a responder certificate the issuer signed (or the issuer)."""
    signer = resp.certificates[0] if resp.certificates else issuer
    if signer is not issuer:
        signer.verify_directly_issued_by(issuer)
    key = signer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), resp.signature_hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm))
    else:
        key.verify(resp.signature, resp.tbs_response_bytes)


def ask(url, body):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


def main():
    url, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    certs = []
    for line in open(path):
        serial, status, issuer_pem, der = line.strip().split("|")
        cert = x509.load_der_x509_certificate(base64.b64decode(der))
        issuer = x509.load_pem_x509_certificate(open(issuer_pem, "rb").read())
        body = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(Encoding.DER)
        certs.append((serial, status, issuer, body))
    answers = failures = retried = 0
    least = None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for serial, status, issuer, body in certs:
            for attempt in (0, 1):
                try:
                    code, raw = ask(url, body)
                    break
                except (ConnectionError, urllib.error.URLError) as e:
                    if attempt or isinstance(e, urllib.error.HTTPError):
                        code, raw = getattr(e, "code", 0), b""
                        break
                    retried += 1
            answers += 1
            now = datetime.datetime.now(datetime.timezone.utc)
            problem = None
            try:
                resp = ocsp.load_der_ocsp_response(raw) if code == 200 else None
                if resp is None:
                    problem = f"HTTP {code}"
                elif resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                    problem = resp.response_status.name
                else:
                    verify(resp, issuer)
                    got = resp.certificate_status.name.lower()
                    left = (resp.next_update_utc - now).total_seconds()
                    least = left if least is None else min(least, left)
                    if got != status:
                        problem = f"status {got}, ledger {status}"
                    elif left <= 0:
                        problem = f"nextUpdate {resp.next_update_utc.isoformat()} passed"
                    elif resp.this_update_utc > now + datetime.timedelta(seconds=5):
                        problem = f"thisUpdate {resp.this_update_utc.isoformat()} in the future"
            except Exception as e:
                problem = f"{type(e).__name__}: {e}"
            if problem:
                failures += 1
                print(f"  {now.time().isoformat('seconds')} serial {serial}: {problem}")
        time.sleep(0.2)
    least_s = "none" if least is None else f"{least:.0f}s"
    print(f"{len(certs)} certificates, {answers} answers, {failures} failed, {retried} retried after a "
          f"refused connection, least nextUpdate margin seen {least_s}")
    return 0 if failures == 0 and answers > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
