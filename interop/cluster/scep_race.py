"""Two copies of one SCEP transaction at two instances at the same moment: each round builds
one PKCSReq (a new key, CSR and transactionID) and sends the very same message to URL_A and URL_B
from two threads released together by a barrier, then opens both CertReps. A copy answered
PENDING (it found its twin in flight) then sends CertPoll to the same instance until it is
answered SUCCESS (at most 20 times, 0.5 s apart). A round passes when both answers are signed
CertReps, each SUCCESS or PENDING, at least one SUCCESS, and both copies end with the very same
certificate. With a one-time challenge this holds too: the copy that finds the challenge used
up by its twin is not refused (the ledger records which transaction used it). The ledger side
(one certificate per transaction) is the calling script's to check.
Uses the independent client codec interop/scep/scep_client.py.

usage: scep_race.py URL_A URL_B CHALLENGE ROUNDS
Prints one line per round: `TXID answer-A answer-B` (answers: SUCCESS:<serial hex>,
PENDING->SUCCESS:<serial hex> after CertPoll, PENDING->… when polling did not end in SUCCESS,
FAILURE:<failInfo>, or error); exits 1 if any round failed."""
import os, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scep"))
import scep_client as scep  # noqa: E402


def exchange(url, req, ca_certs, key):
    """(status, certificate or None) of the CertRep to `req`, or ("error:…", None)."""
    try:
        status, media, body = scep.send(url, req.der, "post")
        if status != 200 or media != "application/x-pki-message":
            return f"error:HTTP{status}", None
        rep = scep.parse_cert_rep(body, ca_certs, key, req.transaction_id, req.sender_nonce)
    except Exception as e:  # a transport or codec failure is this round's failure
        return f"error:{type(e).__name__}", None
    if rep["status"] == "SUCCESS" and rep["certs"]:
        return "SUCCESS", rep["certs"][0]
    if rep["status"] == "FAILURE":
        return f"FAILURE:{rep['fail_info']}", None
    return rep["status"], None


def one_round(url_a, url_b, challenge, n):
    _, ca_certs = scep.get_ca_cert(url_a)
    ra, ca = scep.pick_ra(ca_certs)
    key = scep.new_rsa_key()
    name = f"race{n}-{os.getpid()}.example.test"
    csr = scep.make_csr(key, name, [name], challenge)
    signer = scep.self_signed(key, csr.subject)
    req = scep.pkcs_req(csr, ra, signer, key)
    barrier = threading.Barrier(2)
    answers = [("error:none", None), ("error:none", None)]

    def send(i, url):
        barrier.wait()
        answers[i] = exchange(url, req, ca_certs, key)

    urls = (url_a, url_b)
    threads = [threading.Thread(target=send, args=(i, u)) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = [status for status, _ in answers]
    final = list(answers)
    for i, (status, _) in enumerate(answers):
        for _ in range(20 if status == "PENDING" else 0):
            poll = scep.cert_poll(ca, csr.subject, req.transaction_id, ra, signer, key)
            final[i] = exchange(urls[i], poll, ca_certs, key)
            if final[i][0] != "PENDING":
                break
            time.sleep(0.5)

    def shown(i):
        status, cert = final[i]
        text = f"{status}:{cert.serial_number:x}" if cert else status
        return f"PENDING->{text}" if first[i] == "PENDING" else text

    print(req.transaction_id, shown(0), shown(1))
    certs = [cert for _, cert in final]
    return (
        "SUCCESS" in first
        and all(status in ("SUCCESS", "PENDING") for status in first)
        and all(cert is not None for cert in certs)
        and certs[0] == certs[1]
    )


def main():
    url_a, url_b, challenge, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ok = [one_round(url_a, url_b, challenge, n) for n in range(rounds)]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
