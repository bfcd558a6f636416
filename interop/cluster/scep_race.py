"""Two copies of one SCEP transaction at two instances at the same moment: each round builds
one PKCSReq (a new key, CSR and transactionID) and sends the very same message to URL_A and URL_B
from two threads released together by a barrier, then opens both CertReps. A round passes when
both answers are signed CertReps, at least one is SUCCESS, every SUCCESS carries the same
certificate and the other answers are PENDING (the copy that found the first one in flight).
With `refused-ok`, the other copy may also be FAILURE badRequest: with a one-time challenge, the
copy that finds the challenge used up by its twin (before the twin reserved the transaction)
cannot tell it from a stranger's use. The ledger side (one certificate per transaction) is the
calling script's to check.
Uses the independent client codec interop/scep/scep_client.py.

usage: scep_race.py URL_A URL_B CHALLENGE ROUNDS [refused-ok]
Prints one line per round: `TXID answer-A answer-B` (answers: SUCCESS:<serial hex>, PENDING,
FAILURE:<failInfo>, or error); exits 1 if any round failed."""
import os, sys, threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scep"))
import scep_client as scep  # noqa: E402


def one_round(url_a, url_b, challenge, n, refused_ok):
    _, ca_certs = scep.get_ca_cert(url_a)
    ra, _ = scep.pick_ra(ca_certs)
    key = scep.new_rsa_key()
    name = f"race{n}-{os.getpid()}.example.test"
    csr = scep.make_csr(key, name, [name], challenge)
    req = scep.pkcs_req(csr, ra, scep.self_signed(key, csr.subject), key)
    barrier = threading.Barrier(2)
    answers = [None, None]

    def send(i, url):
        barrier.wait()
        try:
            status, media, body = scep.send(url, req.der, "post")
            if status != 200 or media != "application/x-pki-message":
                answers[i] = f"error:HTTP{status}"
                return
            rep = scep.parse_cert_rep(body, ca_certs, key, req.transaction_id, req.sender_nonce)
            if rep["status"] == "SUCCESS" and rep["certs"]:
                answers[i] = f"SUCCESS:{rep['certs'][0].serial_number:x}"
            elif rep["status"] == "FAILURE":
                answers[i] = f"FAILURE:{rep['fail_info']}"
            else:
                answers[i] = rep["status"]
        except Exception as e:  # a transport or codec failure is this round's failure
            answers[i] = f"error:{type(e).__name__}"

    threads = [threading.Thread(target=send, args=(i, u)) for i, u in enumerate((url_a, url_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(req.transaction_id, *answers)
    successes = {a for a in answers if a.startswith("SUCCESS:")}
    allowed = ("PENDING", "FAILURE:badRequest") if refused_ok else ("PENDING",)
    return len(successes) == 1 and all(a.startswith("SUCCESS:") or a in allowed for a in answers)


def main():
    url_a, url_b, challenge, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    refused_ok = sys.argv[5:] == ["refused-ok"]
    ok = [one_round(url_a, url_b, challenge, n, refused_ok) for n in range(rounds)]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
