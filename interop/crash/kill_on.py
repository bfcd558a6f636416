"""Kills a process with SIGKILL as soon as its log shows that a job started.

usage: kill_on.py LOG PID TIMEOUT_SECONDS TEXT...

Follows LOG from its current end (polling every millisecond) and sends SIGKILL to PID right after
the first new line containing any TEXT; prints that line and exits 0. Exits 1 when TIMEOUT
passes first (or PID is gone), without killing anything. Whether the job was still running when
the signal landed is read from the log afterwards (sigkill.sh: a start line without its end line).
"""
import os
import signal
import sys
import time

log, pid, timeout, texts = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
deadline = time.monotonic() + timeout
with open(log, "rb") as f:
    f.seek(0, os.SEEK_END)
    pending = b""
    while time.monotonic() < deadline:
        chunk = f.read()
        if not chunk:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                sys.exit(1)
            time.sleep(0.001)
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace")
            if any(t in text for t in texts):
                os.kill(pid, signal.SIGKILL)
                print(text)
                sys.exit(0)
sys.exit(1)
