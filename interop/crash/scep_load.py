"""SCEP load for the crash test (interop/crash/sigkill.sh), with the independent client codec
(interop/scep/scep_client.py): PKCSReq enrollments under a name with a static challenge while
privca is killed and restarted, each transaction retransmitted with its transactionID (and a
fresh senderNonce) until it gets a CertRep.

  scep_load.py run URL CHALLENGE DIR     enroll until SIGTERM
  scep_load.py drain URL CHALLENGE DIR   after the last start: finish every open transaction

`run` keeps one RSA key; transaction n has transactionID CRASH<pid>T<n> and its CSR in
DIR/tx/<txid>.csr. A SUCCESS writes DIR/tx/<txid>.pem; PENDING (the first copy's reservation is
still open: in flight, or interrupted by a kill until privca aborts it) or no answer (privca
down) leave the transaction open, and it is sent again later. After privca comes back from a
kill, the open transactions and the last two completed ones are sent again: a completed one must
get the same certificate back. `drain` sends every open transaction until SUCCESS (30 s each at
most) and a sample of completed ones again. Every outcome is appended to DIR/events as
"<txid> <event> [<detail>]": success SERIAL, resent-same SERIAL, resent-differs OLD NEW,
pending, down, failure FAILINFO, error TEXT. Both modes print a summary line of counts.
"""
import collections
import http.client
import os
import random
import signal
import sys
import time
import urllib.error

from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scep"))
import scep_client as scep  # noqa: E402

DOWN = (urllib.error.URLError, http.client.HTTPException, OSError)


class Load:
    def __init__(self, url, challenge, d):
        self.url, self.challenge, self.dir = url, challenge, d
        self.tx = os.path.join(d, "tx")
        os.makedirs(self.tx, exist_ok=True)
        key_path = os.path.join(d, "key.pem")
        if os.path.exists(key_path):
            with open(key_path, "rb") as f:
                self.key = serialization.load_pem_private_key(f.read(), None)
        else:
            self.key = scep.new_rsa_key()
            with open(key_path, "wb") as f:
                f.write(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self.ca_certs = None
        self.counts = collections.Counter()
        self.events = open(os.path.join(d, "events"), "a", buffering=1)

    def log(self, txid, event, detail=""):
        self.counts[event] += 1
        self.events.write(f"{txid} {event} {detail}".rstrip() + "\n")

    def serial_of(self, txid):
        path = os.path.join(self.tx, txid + ".pem")
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            return f"{x509.load_pem_x509_certificate(f.read()).serial_number:x}"

    def exchange(self, txid):
        """Sends transaction `txid` once: "success", "pending", "down", "failure" or "error"."""
        with open(os.path.join(self.tx, txid + ".csr"), "rb") as f:
            csr = x509.load_der_x509_csr(f.read())
        try:
            if self.ca_certs is None:
                _, self.ca_certs = scep.get_ca_cert(self.url)
            ra, _ = scep.pick_ra(self.ca_certs)
            signer = scep.self_signed(self.key, csr.subject)
            req = scep.pkcs_req(csr, ra, signer, self.key, txid=txid)
            status, media, body = scep.send(self.url, req.der, "post")
        except scep.ScepError as e:  # GetCACert refused while starting up
            self.ca_certs = None
            self.log(txid, "down", str(e).replace(" ", "_"))
            return "down"
        except DOWN:
            self.ca_certs = None
            self.log(txid, "down")
            return "down"
        if status != 200 or media != "application/x-pki-message":
            self.log(txid, "down", f"HTTP_{status}")
            return "down"
        try:
            rep = scep.parse_cert_rep(body, self.ca_certs, self.key, req.transaction_id, req.sender_nonce)
        except scep.ScepError as e:
            self.log(txid, "error", str(e).replace(" ", "_"))
            return "error"
        if rep["status"] == "PENDING":
            self.log(txid, "pending")
            return "pending"
        if rep["status"] == "FAILURE":
            self.log(txid, "failure", str(rep["fail_info"]))
            return "failure"
        serial = f"{rep['certs'][0].serial_number:x}"
        before = self.serial_of(txid)
        if before is None:
            with open(os.path.join(self.tx, txid + ".pem.tmp"), "wb") as f:
                f.write(rep["certs"][0].public_bytes(serialization.Encoding.PEM))
            os.replace(os.path.join(self.tx, txid + ".pem.tmp"), os.path.join(self.tx, txid + ".pem"))
            self.log(txid, "success", serial)
        elif before == serial:
            self.log(txid, "resent-same", serial)
        else:
            self.log(txid, "resent-differs", f"{before} {serial}")
        return "success"

    def new_transaction(self, n):
        txid = f"CRASH{os.getpid()}T{n:05d}"
        name = f"s{n}.p{os.getpid()}.scep.crash.test"
        csr = scep.make_csr(self.key, name, [name], self.challenge)
        with open(os.path.join(self.tx, txid + ".csr"), "wb") as f:
            f.write(csr.public_bytes(serialization.Encoding.DER))
        return txid

    def summary(self, what):
        keys = ("success", "resent-same", "resent-differs", "pending", "down", "failure", "error")
        print(what + " " + " ".join(f"{k}={self.counts[k]}" for k in keys), flush=True)


def run(load):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    open_tx = collections.OrderedDict()  # txid -> time of the last attempt
    completed = []
    was_down = False
    n = 0
    while not stop:
        now = time.monotonic()
        due = [t for t, at in open_tx.items() if now - at >= 1.0]
        if due:
            txid = due[0]
        elif was_down and open_tx:  # privca is down: wait for it with the oldest open one
            txid = next(iter(open_tx))
        else:
            n += 1
            txid = load.new_transaction(n)
        outcome = load.exchange(txid)
        if outcome == "down":
            was_down = True
            open_tx[txid] = time.monotonic()
            time.sleep(0.2)
            continue
        if was_down:
            # privca is back after a kill: the last completed transactions once more.
            was_down = False
            for old in completed[-2:]:
                load.exchange(old)
        if outcome == "success":
            open_tx.pop(txid, None)
            completed.append(txid)
        elif outcome == "pending":
            open_tx[txid] = time.monotonic()
        else:
            open_tx.pop(txid, None)
        time.sleep(0.05)
    load.summary("scep load:")


def drain(load):
    """Every open transaction until SUCCESS, then up to 20 completed ones again."""
    txids = sorted(f[:-4] for f in os.listdir(load.tx) if f.endswith(".csr"))
    opened = [t for t in txids if load.serial_of(t) is None]
    left = []
    for txid in opened:
        deadline = time.monotonic() + 30
        while load.exchange(txid) in ("pending", "down") and time.monotonic() < deadline:
            time.sleep(1)
        if load.serial_of(txid) is None:
            left.append(txid)
    done = [t for t in txids if t not in opened]
    for txid in random.sample(done, min(20, len(done))):
        load.exchange(txid)
    load.summary(f"scep drain: open={len(opened)} unfinished={len(left)}")


if __name__ == "__main__":
    mode, url, challenge, d = sys.argv[1:5]
    {"run": run, "drain": drain}[mode](Load(url, challenge, d))
