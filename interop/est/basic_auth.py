"""EST HTTP Basic authentication under attack.

usage:
  basic_auth.py burst URL CAFILE USER PASSWORD CSR_B64 PID BUDGET
      From 127.0.0.2, 1,000 wrong passwords for USER, 100 at once. Every answer is 401, 429
      (over the address's or the user's failure budget) or 503 (too many argon2 checks
      waiting), never 200; at most BUDGET (the address's failure budget) are checked (401);
      privca's resident memory grows by less than 128 MiB (connections, the argon2 threads'
      working memory) and by less than 16 MiB over a second burst (nothing grows with the
      number of requests); and USER, from 127.0.0.1 with the right password, still enrolls
      CSR_B64 during and after the bursts.
  basic_auth.py timing URL CAFILE USER PASSWORD N
      N requests with an unknown user and N with USER and a wrong password, interleaved: their
      median times differ by less than max(20 %, 5 ms), since an unknown user costs the same
      argon2 check as a known one.
Prints one line per check; exits 1 if any failed.
"""
import base64
import concurrent.futures
import http.client
import os
import ssl
import statistics
import sys
import threading
import time
import urllib.parse

failed = 0


def check(what, ok, detail=""):
    global failed
    print(f"  {'ok  ' if ok else 'FAIL'} {what}{'' if ok or not detail else f': {detail}'}")
    failed += 0 if ok else 1


def connection(url, cafile, source):
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=cafile)
    return http.client.HTTPSConnection(u.hostname, u.port, context=ctx, source_address=(source, 0), timeout=60)


def enroll(conn, url, user, password, body):
    path = urllib.parse.urlsplit(url).path + "/simpleenroll"
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    conn.request("POST", path, body=body, headers={"Authorization": f"Basic {auth}",
                                                   "Content-Type": "application/pkcs10"})
    response = conn.getresponse()
    response.read()
    return response.status


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def burst(url, cafile, user, password, csr_file, pid, budget):
    body = open(csr_file, "rb").read()
    local = threading.local()

    def attempt(i):
        if not hasattr(local, "conn"):
            local.conn = connection(url, cafile, "127.0.0.2")
        try:
            return enroll(local.conn, url, user, f"wrong-password-{i}", body)
        except (http.client.HTTPException, OSError):
            local.conn = connection(url, cafile, "127.0.0.2")
            return enroll(local.conn, url, user, f"wrong-password-{i}", body)

    def one_burst(device):
        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            futures = [pool.submit(attempt, i) for i in range(1000)]
            peak = rss_kib(pid)
            while not all(f.done() for f in futures):
                peak = max(peak, rss_kib(pid))
                if len(device) < 3:
                    device.append(enroll(connection(url, cafile, "127.0.0.1"), url, user, password, body))
                time.sleep(0.05)
            return [f.result() for f in futures], max(peak, rss_kib(pid))

    before = rss_kib(pid)
    device = []
    statuses, peak = one_burst(device)
    second, peak2 = one_burst(device)
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"  burst answers: {counts}; RSS {before // 1024} -> peak {peak // 1024} MiB, over a second burst "
          f"{peak2 // 1024} MiB; device during: {device}")
    check("1,000 wrong passwords: only 401, 429 and 503", set(statuses) <= {401, 429, 503}, str(counts))
    check("  a second burst: all 429", set(second) == {429}, str(set(second)))
    check(f"  at most {budget} checked (401), the rest throttled (429) or turned away (503)",
          counts.get(401, 0) <= budget and counts.get(429, 0) >= 800, str(counts))
    check("  memory stays bounded (< 128 MiB growth, < 16 MiB more over a second burst)",
          peak - before < 128 * 1024 and peak2 - peak < 16 * 1024, f"{(peak - before) // 1024} / {(peak2 - peak) // 1024} MiB")
    check("the real device enrolled during the burst", device != [] and all(s == 200 for s in device), str(device))
    after = enroll(connection(url, cafile, "127.0.0.1"), url, user, password, body)
    check("the real device enrolls after the burst", after == 200, str(after))


def timing(url, cafile, user, n):
    body = b"MIIB"  # never parsed: authentication comes first
    conn = connection(url, cafile, "127.0.0.1")
    times = {"unknown": [], "known": []}
    for i in range(n):
        for kind in ("unknown", "known"):
            name = f"nobody-{os.urandom(6).hex()}" if kind == "unknown" else user
            start = time.perf_counter()
            status = enroll(conn, url, name, f"wrong-{i}", body)
            times[kind].append(time.perf_counter() - start)
            if status != 401:
                check(f"{kind} user, wrong password: 401", False, str(status))
                return
    unknown, known = statistics.median(times["unknown"]), statistics.median(times["known"])
    print(f"  median: unknown user {unknown * 1000:.1f} ms, known user {known * 1000:.1f} ms ({n} each)")
    check("an unknown user costs what a known one does (medians within max(20 %, 5 ms))",
          abs(unknown - known) < max(0.2 * min(unknown, known), 0.005))
    check("  both pay the argon2 check (median over 5 ms)", min(unknown, known) > 0.005)


mode = sys.argv[1]
if mode == "burst":
    burst(*sys.argv[2:7], int(sys.argv[7]), int(sys.argv[8]))
elif mode == "timing":
    timing(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[6]))
else:
    sys.exit(__doc__)
sys.exit(1 if failed else 0)
