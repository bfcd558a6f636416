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
import json, os, ssl, sys, urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "acme"))
import jws  # noqa: E402
from jws import Key  # noqa: E402

DIR = "https://127.0.0.1:8443/acme/directory"
CTX = ssl.create_default_context(cafile=sys.argv[1])


def http(method, url, body=None):
    return jws.http(CTX, method, url, body, agent="privca-interop-cluster")


def on_port(url, port):
    """url with its authority replaced by 127.0.0.1:port (one instance, not the balancer)."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, f"127.0.0.1:{port}", u.path, u.query, u.fragment))


def post(key, url, payload, port=None, kid=None):
    """A JWS POST signed for `url`, sent to instance `port` (or to the balancer); payload None
    is a POST-as-GET (empty payload)."""
    directory = json.loads(http("GET", DIR)[2])
    new_nonce = directory["newNonce"] if port is None else on_port(directory["newNonce"], port)
    body = jws.body(key, url, payload, http("HEAD", new_nonce)[1]["Replay-Nonce"], kid)
    status, headers, raw = http("POST", url if port is None else on_port(url, port), body)
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
