#!/usr/bin/env python3
"""Slowloris against every privca listener while valid requests are measured.

Opens COUNT slow connections against each listener and trickles one byte per second on each:
  * 8080 (plain HTTP): request headers;
  * 8443 and 9443 (TLS): most trickle the TLS ClientHello (a slow handshake), SLOW_TLS_HEADERS
    of them finish the handshake and then trickle request headers.
While they are open, a separate process (so the attacker's event loop does not skew the
numbers) measures SAMPLES valid requests of each kind, each on a fresh connection: OCSP GET on
8080, ACME GET /acme/directory and HEAD newNonce, EST GET /.well-known/est/cacerts on 8443. The
same measurement runs first on the quiet server. Checks:
  * every valid request is answered (200) under load, with p99 under twice the quiet p99 or
    FLOOR_MS (20 ms), whichever is larger: the floor keeps a 2 ms quiet p99 from making the
    bound a scheduling-noise test;
  * the slow connections really were open during the loaded measurement (the server's
    privca_connections_open gauge and the script's own count);
  * privca's open descriptors (/proc/PID/fd) stay under its soft RLIMIT_NOFILE;
  * the server closes every slow connection (EOF or reset seen here) within its timeout
    (header_read_timeout or tls_handshake_timeout) plus SLACK seconds, not before.

Usage: slowloris.py --pid PID --root ROOT.pem --ocsp-req REQ.der --timeout SECONDS
Prints `  ok   ...` / `  FAIL ...` lines like interop/lib.sh; exit status 1 on a failure.
"""

import argparse
import asyncio
import base64
import http.client
import json
import math
import resource
import ssl
import subprocess
import sys
import time

COUNT = 2000
SLOW_TLS_HEADERS = 100
SAMPLES = 200
FLOOR_MS = 20.0
SLACK = 3.0
HOST = "127.0.0.1"
LISTENERS = [("http", 8080, False), ("https", 8443, True), ("admin", 9443, True)]
HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Slow: " + b"a" * 200


def tls_context(root):
    ctx = ssl.create_default_context(cafile=root)
    return ctx


# ---------------------------------------------------------------- measurement (child process)


def measure(root, ocsp_b64):
    ctx = tls_context(root)

    def one(kind):
        if kind == "ocsp":
            conn = http.client.HTTPConnection(HOST, 8080, timeout=10)
            conn.request("GET", "/ocsp/" + ocsp_b64)
        else:
            conn = http.client.HTTPSConnection(HOST, 8443, timeout=10, context=ctx)
            if kind == "acme-directory":
                conn.request("GET", "/acme/directory")
            elif kind == "acme-nonce":
                conn.request("HEAD", "/acme/new-nonce")
            else:
                conn.request("GET", "/.well-known/est/cacerts")
        resp = conn.getresponse()
        resp.read()
        conn.close()
        ok = resp.status == 200 and (kind != "acme-nonce" or resp.getheader("Replay-Nonce"))
        return ok, resp.status

    kinds = ["ocsp", "acme-directory", "acme-nonce", "est-cacerts"]
    results = {k: {"ms": [], "errors": []} for k in kinds}
    # One request at a time, the kinds taking turns, so every kind spans the whole window and
    # the measuring process adds no contention of its own.
    started = time.monotonic()
    for _ in range(SAMPLES):
        for kind in kinds:
            start = time.perf_counter()
            try:
                ok, status = one(kind)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                ok, status = False, repr(e)
            ms = (time.perf_counter() - start) * 1000
            if ok:
                results[kind]["ms"].append(ms)
            else:
                results[kind]["errors"].append(str(status))
    results["_seconds"] = time.monotonic() - started
    print(json.dumps(results))


# ---------------------------------------------------------------- attacker (parent process)


class Slow(asyncio.Protocol):
    """One slow connection; records when it became ready and when the server closed it."""

    def __init__(self, payload, started):
        self.payload = payload
        self.started = started
        self.sent = 0
        self.ready = None
        self.closed = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.ready = time.monotonic()

    def data_received(self, data):
        pass

    def eof_received(self):
        self.mark()
        return False

    def connection_lost(self, exc):
        self.mark()

    def mark(self):
        if self.closed is None:
            self.closed = time.monotonic()

    def trickle(self):
        if self.closed is None and self.transport is not None and self.sent < len(self.payload):
            self.transport.write(self.payload[self.sent : self.sent + 1])
            self.sent += 1


def client_hello(root):
    ctx = tls_context(root)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def p99(values):
    s = sorted(values)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)] if s else float("inf")


def fd_usage(pid):
    used = len(__import__("os").listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return used, int(line.split()[3])
    return used, None


async def run_measure(args):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--measure", "--root", args.root, "--ocsp-req", args.ocsp_req,
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return json.loads(out)


async def scrape_open(root):
    def get():
        conn = http.client.HTTPSConnection(HOST, 9443, timeout=10, context=tls_context(root))
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        found = {}
        for line in text.splitlines():
            if line.startswith("privca_connections_open{"):
                name = line.split('listener="')[1].split('"')[0]
                found[name] = float(line.rsplit(" ", 1)[1])
        return found

    return await asyncio.get_running_loop().run_in_executor(None, get)


async def attack(args):
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("  ok   " if ok else "  FAIL ") + what, flush=True)
        if ok:
            passed += 1
        else:
            failed += 1

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = COUNT * len(LISTENERS) + 500
    if hard != resource.RLIM_INFINITY and hard < need:
        check(False, f"this script needs {need} descriptors; the hard limit is {hard}")
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    quiet = await run_measure(args)
    kinds = [k for k in quiet if not k.startswith("_")]
    for k in kinds:
        check(not quiet[k]["errors"], f"quiet: {SAMPLES} {k} requests answered (errors: {quiet[k]['errors'][:3]})")
    print(f"  quiet measurement took {quiet['_seconds']:.1f} s", flush=True)

    loop = asyncio.get_running_loop()
    hello = client_hello(args.root)
    tls_ctx = tls_context(args.root)
    conns = []  # (listener, kind, Slow)
    gate = asyncio.Semaphore(256)
    open_errors = []

    stop = asyncio.Event()

    # Completed handshakes cost privca an HSM signature each, which its bounded queue (the
    # handshake class) refuses past its capacity by closing the connection: that is load
    # shedding working, not what this script measures. The few slow connections that complete
    # a handshake are therefore opened a few at a time, each retried once after a refusal.
    handshakes = asyncio.Semaphore(4)

    async def open_one(name, port, kind):
        async with gate:
            payload = hello if kind == "tls-handshake" else HEADERS
            for attempt in range(3):
                try:
                    if kind == "tls-headers":
                        async with handshakes:
                            started = time.monotonic()
                            _, proto = await loop.create_connection(
                                lambda: Slow(payload, started), HOST, port, ssl=tls_ctx, server_hostname="localhost"
                            )
                    else:
                        started = time.monotonic()
                        _, proto = await loop.create_connection(lambda: Slow(payload, started), HOST, port)
                    conns.append((name, kind, proto))
                    return
                except OSError as e:
                    if kind != "tls-headers" or attempt == 2:
                        open_errors.append(f"{name}: {e!r}")
                        return
                    await asyncio.sleep(0.2)

    async def trickler():
        # One byte per connection per second, spread over the second in ten slices (the
        # attack is the same; a burst of 6,000 writes would measure this script's own stalls).
        tick = 0
        while not stop.is_set():
            for _, _, c in conns[tick % 10 :: 10]:
                c.trickle()
            tick += 1
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except asyncio.TimeoutError:
                pass

    trick = asyncio.create_task(trickler())
    t0 = time.monotonic()
    jobs = []
    for name, port, tls in LISTENERS:
        for i in range(COUNT):
            kind = "plain" if not tls else ("tls-headers" if i < SLOW_TLS_HEADERS else "tls-handshake")
            jobs.append(open_one(name, port, kind))
    await asyncio.gather(*jobs)
    print(f"  opened {len(conns)} slow connections in {time.monotonic() - t0:.1f} s", flush=True)
    check(not open_errors and len(conns) == COUNT * len(LISTENERS),
          f"{COUNT} slow connections open on each listener (errors: {open_errors[:3]})")

    def open_now():
        return sum(1 for _, _, c in conns if c.closed is None)

    # The client sees a connection open once the kernel accepted it; privca counts it when its
    # accept loop takes it from the backlog, a moment later under this load.
    deadline = time.monotonic() + 5
    while True:
        gauge = await scrape_open(args.root)
        if all(gauge.get(n, 0) >= COUNT for n, _, _ in LISTENERS) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    check(all(gauge.get(n, 0) >= COUNT for n, _, _ in LISTENERS),
          f"privca_connections_open counts them on every listener: {gauge}")
    used, limit = fd_usage(args.pid)
    check(limit is not None and used < limit, f"privca under its descriptor limit under load: {used} of {limit}")

    samples = []

    async def sampler():
        while not stop.is_set():
            samples.append(open_now())
            await asyncio.sleep(0.5)

    sampling = asyncio.create_task(sampler())
    loaded = await run_measure(args)
    sampling.cancel()
    print(f"  loaded measurement took {loaded['_seconds']:.1f} s; slow connections open during it: "
          f"min {min(samples)}, max {max(samples)}", flush=True)
    check(min(samples) == COUNT * len(LISTENERS), "all slow connections were open throughout the measurement")
    gauge = await scrape_open(args.root)
    check(all(gauge.get(n, 0) >= COUNT for n, _, _ in LISTENERS),
          f"privca_connections_open at the end of the measurement: {gauge}")
    used2, _ = fd_usage(args.pid)
    check(used2 < limit, f"privca under its descriptor limit after the measurement: {used2} of {limit}")
    for k in kinds:
        q, l = p99(quiet[k]["ms"]), p99(loaded[k]["ms"])
        bound = max(2 * q, FLOOR_MS)
        check(not loaded[k]["errors"], f"under load: {SAMPLES} {k} requests answered (errors: {loaded[k]['errors'][:3]})")
        check(l < bound, f"{k}: p99 {l:.1f} ms under load, quiet {q:.1f} ms (bound {bound:.1f} ms)")

    # Every slow connection is closed by the server within its timeout (+ slack).
    deadline = t0 + args.timeout + SLACK + 10
    while any(c.closed is None for _, _, c in conns) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    stop.set()
    await trick
    for name, _, _ in LISTENERS:
        for kind in ("plain", "tls-handshake", "tls-headers"):
            group = [c for n, k, c in conns if n == name and k == kind]
            if not group:
                continue
            # Late: from when this end saw the connection ready; early: from before connect()
            # (the server cannot have started its clock sooner).
            done = [c for c in group if c.closed is not None]
            lives = [c.closed - c.ready for c in done]
            late = len(group) - sum(1 for x in lives if x <= args.timeout + SLACK)
            early = sum(1 for c in done if c.closed - c.started < args.timeout - 0.5)
            longest = max(lives) if lives else float("nan")
            check(late == 0 and early == 0,
                  f"{name} {kind}: {len(group)} closed by the server within {args.timeout:.0f} s + {SLACK:.0f} s "
                  f"(longest {longest:.1f} s; late or open {late}, early {early})")
    for _, _, c in conns:
        if c.transport is not None:
            c.transport.abort()
    print(f"slowloris: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--measure", action="store_true")
    p.add_argument("--pid", type=int)
    p.add_argument("--root", required=True)
    p.add_argument("--ocsp-req", required=True)
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    if args.measure:
        with open(args.ocsp_req, "rb") as f:
            measure(args.root, base64.b64encode(f.read()).decode())
        return 0
    return asyncio.run(attack(args))


if __name__ == "__main__":
    sys.exit(main())
