#!/usr/bin/env bash
# CRL benchmark: build and sign a complete CRL with N revoked entries (default 1,000,000) with
# privca (entries streamed from the SQLite ledger, signature in SoftHSM2), cfssl gencrl and
# `openssl ca -gencrl` on the same serials, printing time, peak RSS and size and the ratio to
# cfssl (goal <= 0.15); then a delta CRL after 1,000 new revocations (goal < 100 ms); then, with
# `privca serve` running, how long after a revocation's commit the new complete CRL is served at
# the certificates' CDP URL (crl.full_after_revocation, debounced): after one `privca revoke` and
# after a burst of 1,000 revocations (1,000 separate commits), with the CRL's size and how many
# complete CRLs the burst made. Binds the dev config's ports: run it under the interop lock.
#
#   bash benches/crl.sh                               full run (release build, 1,000,000 entries)
#   BENCH_SMOKE=1 BENCH_ENTRIES=2000 PRIVCA_BIN=... bash benches/crl.sh   smoke run (test command;
#                                                     full_after_revocation 1s instead of the dev 5s)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/benches/result.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/privca-target}"
N="${BENCH_ENTRIES:-1000000}"
if [ -z "${PRIVCA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin privca >/dev/null)
  PRIVCA_BIN="$CARGO_TARGET_DIR/release/privca"
fi
for tool in cfssl sqlite3 openssl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install golang-cfssl sqlite3 time)" >&2; exit 1; }
done
DATA=$(mktemp -d /tmp/privca-bench-crl.XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT
cli() { "$PRIVCA_BIN" --config "$ROOT/conf/privca.dev.toml" --data-dir "$DATA" "$@"; }
cli init >/dev/null
BASE=1152921504606846976 # 0x1000000000000000: 8-byte serials with a non-zero first octet

# N revoked certificates straight into the ledger, as revoking them through privca leaves them
# (status, reason, time, revocation sequence and the DER CRL entry computed at revocation).
revoke_rows() { # revoke_rows FIRST LAST
  python3 - "$DATA/privca.db" "$1" "$2" "$BASE" <<'PY'
import datetime, sqlite3, sys
db, first, last, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
reasons = [("keyCompromise", 1), ("superseded", 4), ("cessationOfOperation", 5)]
def rows():
    for i in range(first, last + 1):
        name, code = reasons[i % 3]
        at = 1764000000 + i % 86400
        utc = datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%y%m%d%H%M%SZ").encode()
        body = b"\x02\x08" + (base + i).to_bytes(8, "big") + b"\x17\x0d" + utc \
            + b"\x30\x0c\x30\x0a\x06\x03\x55\x1d\x15\x04\x03\x0a\x01" + bytes([code])
        entry = b"\x30" + bytes([len(body)]) + body
        yield (f"{base + i:016x}", f"{i:064x}", name, at, i, entry)
c = sqlite3.connect(db)
c.executemany(
    "INSERT INTO certificates (serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, profile, "
    "requester, owner, tier, status, revocation_reason, revoked_at, revocation_seq, der, created_at, crl_entry) "
    "VALUES (?, 'ec', 'CN=bench', '[]', ?, 0, 4102444800, 'tls-server', 'bench', 'bench', 'internal', 'revoked', "
    "?, ?, ?, x'00', 0, ?)", rows())
c.execute("UPDATE counters SET value = ? WHERE name = 'revocation'", (last,))
c.commit()
PY
}
revoke_rows 1 "$N"

# measure OUTFILE command... -> prints "seconds peak_kib peak_anon_kib": wall time and peak RSS
# (VmHWM, which counts the file pages a process maps, such as privca's memory-mapped SQLite
# ledger) from /usr/bin/time, and the peak of RssAnon (the process's own memory) sampled every
# 10 ms.
measure() {
  local out=$1 pid child anon peak=0; shift
  /usr/bin/time -f '%e %M' -o "$DATA/time.txt" "$@" >"$out" 2>"$DATA/err.txt" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    child=${child:-$(pgrep -P "$pid" | head -n 1)}
    if [ -n "$child" ]; then
      anon=$(status_kib "$child" RssAnon)
      [ -n "$anon" ] && [ "$anon" -gt "$peak" ] && peak=$anon
    fi
    sleep 0.01
  done
  wait "$pid" || { cat "$DATA/err.txt" >&2; exit 1; }
  echo "$(cat "$DATA/time.txt") $peak"
}

read -r privca_s privca_kib privca_anon_kib < <(measure "$DATA/privca.out" "$PRIVCA_BIN" --config "$ROOT/conf/privca.dev.toml" --data-dir "$DATA" crl publish --issuer ec)
privca_ms=$(awk '/complete CRL/ {print $(NF-1)}' "$DATA/privca.out")
sqlite3 "$DATA/privca.db" "SELECT hex(der) FROM crls WHERE issuer_id = 'ec' AND kind = 'full' ORDER BY crl_number DESC LIMIT 1" | xxd -r -p >"$DATA/privca.crl"
entries=$(openssl crl -inform DER -in "$DATA/privca.crl" -noout -text | grep -c "Serial Number" || true)
[ "$entries" = "$N" ] || { echo "privca CRL has $entries entries, expected $N" >&2; exit 1; }
openssl crl -inform DER -in "$DATA/privca.crl" -CAfile "$DATA/ec-chain.pem" -noout -verify 2>&1 | grep -q "verify OK" || { echo "privca CRL does not verify" >&2; exit 1; }

# Peers: a software P-256 CA (they cannot use the HSM), the same serials and reasons.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DATA/ca.key" -out "$DATA/ca.pem" \
  -subj "/CN=bench CA" -days 30 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
python3 - "$DATA" "$N" "$BASE" <<'PY'
import sys
d, n, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
reasons = ["keyCompromise", "superseded", "cessationOfOperation"]
with open(f"{d}/serials.txt", "w") as s, open(f"{d}/index.txt", "w") as idx:
    for i in range(1, n + 1):
        s.write(f"{base + i}\n")
        idx.write(f"R\t491231235959Z\t251125000000Z,{reasons[i % 3]}\t{base + i:016X}\tunknown\t/CN=bench\n")
PY
read -r cfssl_s cfssl_kib cfssl_anon_kib < <(measure "$DATA/cfssl.b64" cfssl gencrl "$DATA/serials.txt" "$DATA/ca.pem" "$DATA/ca.key")
base64 -d "$DATA/cfssl.b64" >"$DATA/cfssl.crl"
cat >"$DATA/ca.cnf" <<CNF
[ ca ]
default_ca = bench
[ bench ]
database = $DATA/index.txt
crlnumber = $DATA/crlnumber
certificate = $DATA/ca.pem
private_key = $DATA/ca.key
default_md = sha256
default_crl_days = 7
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
CNF
echo 01 >"$DATA/crlnumber"
read -r openssl_s openssl_kib openssl_anon_kib < <(measure "$DATA/openssl.out" openssl ca -config "$DATA/ca.cnf" -gencrl -out "$DATA/openssl.pem")
openssl crl -in "$DATA/openssl.pem" -outform DER -out "$DATA/openssl.crl"

# Delta after 1,000 new revocations.
revoke_rows "$((N + 1))" "$((N + 1000))"
cli crl publish --issuer ec --delta >"$DATA/delta.out"
delta_ms=$(awk '/delta CRL/ {print $(NF-1)}' "$DATA/delta.out")
delta_entries=$(awk '/delta CRL/ {print $6}' "$DATA/delta.out")

# The complete CRL after revocations, as a relying party sees it: `privca serve` (dev config;
# full_after_revocation 1s in smoke runs), the time from a revocation's commit until the CDP URL
# serves a complete CRL listing it (polled every 50 ms with If-None-Match, so unchanged CRLs cost
# a 304). The OCSP pre-signer is paced to 1 signature/s: the rows inserted above have no OCSP
# responses yet, and signing them all is start-up work a running server has long finished.
DELAY=$(sed -n 's/^full_after_revocation = "\(.*\)"/\1/p' "$ROOT/conf/privca.dev.toml")
[ -z "${BENCH_SMOKE:-}" ] || DELAY=1s
sed -e "s#^full_after_revocation = .*#full_after_revocation = \"$DELAY\"#" \
  -e "s#^presign_per_second = .*#presign_per_second = 1#" \
  -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$ROOT/conf/privca.dev.toml" >"$DATA/serve.toml"
CHECK=$(sed -n 's/^check_interval = "\(.*\)"/\1/p' "$DATA/serve.toml" | head -1)
FIRST=$((N + 1001)) # 1,001 valid certificates: one revoked alone, then a burst of 1,000
python3 - "$DATA/privca.db" "$FIRST" "$((FIRST + 1000))" "$BASE" <<'PY'
import sqlite3, sys
db, first, last, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(db)
c.executemany("INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, created_at, updated_at) "
              "VALUES (?, 'ec', 'tls-server', 'bench', ?, 'committed', 0, 0)",
              ((f"{base + i:016x}", f"{i:064x}") for i in range(first, last + 1)))
c.executemany(
    "INSERT INTO certificates (serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, profile, "
    "requester, owner, tier, status, der, created_at) VALUES (?, 'ec', 'CN=bench', '[]', ?, 0, 4102444800, "
    "'tls-server', 'bench', 'bench', 'internal', 'valid', x'00', 0)",
    ((f"{base + i:016x}", f"{i:064x}") for i in range(first, last + 1)))
c.commit()
PY
cli crl publish --issuer ec >/dev/null # the delta's 1,000 revocations go into a complete CRL first
RUST_LOG=warn "$PRIVCA_BIN" --config "$DATA/serve.toml" --data-dir "$DATA" serve >"$DATA/serve.log" 2>&1 &
SERVER_PID=$!
CDP=http://127.0.0.1:8080/crl/ec.crl
for _ in $(seq 1 240); do
  curl -sf -o /dev/null "$CDP" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$DATA/serve.log" >&2; exit 1; }
  sleep 0.25
done
now_ms() { echo $(($(date +%s%N) / 1000000)); }
listed() { # listed SERIAL_HEX: the served CRL holds the entry's serial (a byte search, fast on 40 MB)
  python3 -c 'import sys; sys.exit(bytes.fromhex("0208" + sys.argv[1]) not in open(sys.argv[2], "rb").read())' "$1" "$DATA/cdp.crl"
}
# wait_full SERIAL_HEX: polls the CDP until a new complete CRL lists SERIAL_HEX; the CRL is left in
# $DATA/cdp.crl and the time it was first served in $SERVED_MS.
wait_full() {
  local etag code deadline=$(($(now_ms) + 120000))
  while :; do
    etag=$(grep -i '^etag:' "$DATA/cdp.headers" 2>/dev/null | cut -d' ' -f2 | tr -d '\r' || true)
    code=$(curl -s -o "$DATA/cdp.new" -D "$DATA/cdp.new.headers" -w '%{http_code}' ${etag:+-H "If-None-Match: $etag"} "$CDP")
    SERVED_MS=$(now_ms)
    if [ "$code" = 200 ]; then
      mv "$DATA/cdp.new" "$DATA/cdp.crl"; mv "$DATA/cdp.new.headers" "$DATA/cdp.headers"
      listed "$1" && return 0
    fi
    [ "$SERVED_MS" -lt "$deadline" ] || { echo "no complete CRL listing $1 at $CDP" >&2; exit 1; }
    sleep 0.05
  done
}
full_crls() { sqlite3 "$DATA/privca.db" "SELECT COUNT(*) FROM crls WHERE issuer_id = 'ec' AND kind = 'full' AND state = 'published'"; }
curl -sf -o "$DATA/cdp.crl" -D "$DATA/cdp.headers" "$CDP"
one=$(printf '%016x' "$((BASE + FIRST))")
cli revoke --serial "$one" --reason keyCompromise >/dev/null
committed=$(now_ms) # `privca revoke` has returned: its transaction is committed
wait_full "$one"
one_ms=$((SERVED_MS - committed))
one_size=$(stat -c %s "$DATA/cdp.crl")
one_entries=$(sqlite3 "$DATA/privca.db" "SELECT entries FROM crls WHERE issuer_id = 'ec' AND kind = 'full' AND state = 'published' ORDER BY crl_number DESC LIMIT 1")
fulls_before=$(full_crls)
# The burst: 1,000 revocations, each its own transaction as CertificateAuthority::revoke makes
# it (revocation sequence from the counter, status, reason, time, DER CRL entry).
python3 - "$DATA/privca.db" "$((FIRST + 1))" "$((FIRST + 1000))" "$BASE" >"$DATA/burst.txt" <<'PY'
import sqlite3, sys, time
db, first, last, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(db, timeout=30, isolation_level=None)
times = []
for i in range(first, last + 1):
    at = int(time.time())
    utc = time.strftime("%y%m%d%H%M%SZ", time.gmtime(at)).encode()
    body = b"\x02\x08" + (base + i).to_bytes(8, "big") + b"\x17\x0d" + utc \
        + b"\x30\x0c\x30\x0a\x06\x03\x55\x1d\x15\x04\x03\x0a\x01\x04"
    c.execute("BEGIN IMMEDIATE")
    seq = c.execute("UPDATE counters SET value = value + 1 WHERE name = 'revocation' RETURNING value").fetchone()[0]
    c.execute("UPDATE certificates SET status = 'revoked', revocation_reason = 'superseded', revoked_at = ?, "
              "revocation_seq = ?, crl_entry = ? WHERE serial = ? AND status = 'valid'",
              (at, seq, b"\x30" + bytes([len(body)]) + body, f"{base + i:016x}"))
    c.execute("COMMIT")
    times.append(time.time_ns() // 1_000_000)
print(times[0], times[-1])
PY
read -r burst_first burst_last <"$DATA/burst.txt"
wait_full "$(printf '%016x' "$((BASE + FIRST + 1000))")"
burst_ms=$((SERVED_MS - burst_first))
burst_after_last_ms=$((SERVED_MS - burst_last))
burst_size=$(stat -c %s "$DATA/cdp.crl")
sleep 1 # a tick more: nothing is left pending
burst_fulls=$(($(full_crls) - fulls_before))
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

size() { stat -c %s "$1"; }
[ -z "${BENCH_SMOKE:-}" ] || echo "smoke run (debug build, tiny sizes): the figures below only show that the benchmark works"
printf 'CRL benchmark: %s revoked entries (P-256 issuer)\n' "$N"
printf '%-22s %10s %12s %16s %14s\n' "tool" "time (s)" "peak RSS" "peak RssAnon" "size (bytes)"
printf '%-22s %10s %9s MiB %12s MiB %14s\n' "privca (SoftHSM2)" "$privca_s" "$((privca_kib / 1024))" "$((privca_anon_kib / 1024))" "$(size "$DATA/privca.crl")"
printf '%-22s %10s %9s MiB %12s MiB %14s\n' "cfssl gencrl" "$cfssl_s" "$((cfssl_kib / 1024))" "$((cfssl_anon_kib / 1024))" "$(size "$DATA/cfssl.crl")"
printf '%-22s %10s %9s MiB %12s MiB %14s\n' "openssl ca -gencrl" "$openssl_s" "$((openssl_kib / 1024))" "$((openssl_anon_kib / 1024))" "$(size "$DATA/openssl.crl")"
printf 'privca ledger file: %s bytes (memory-mapped: its pages count in peak RSS, not in RssAnon)\n' "$(size "$DATA/privca.db")"
printf 'privca build+sign inside the process: %s ms\n' "$privca_ms"
awk -v p="$privca_s" -v c="$cfssl_s" 'BEGIN { if (c > 0) printf "privca / cfssl time: %.2f (goal <= 0.15)\n", p / c }'
printf 'delta CRL after 1,000 revocations: %s entries in %s ms (goal < 100 ms)\n' "$delta_entries" "$delta_ms"
printf 'complete CRL served at the CDP after a revocation (full_after_revocation %s, check_interval %s):\n' "$DELAY" "$CHECK"
printf '  one revocation (privca revoke):  %6d ms after the commit; %s entries, %s bytes\n' "$one_ms" "$one_entries" "$one_size"
printf '  burst of 1,000 (%d ms of commits): %6d ms after the first commit (%d ms after the last); %s bytes; %s complete CRL(s)\n' \
  "$((burst_last - burst_first))" "$burst_ms" "$burst_after_last_ms" "$burst_size" "$burst_fulls"
for t in privca cfssl openssl; do
  s=${t}_s kib=${t}_kib anon=${t}_anon_kib
  result crl "$t/full" time_s "${!s}" s
  result crl "$t/full" peak_rss_mib "$(awk -v k="${!kib}" 'BEGIN { printf "%.1f", k / 1024 }')" MiB
  result crl "$t/full" peak_rss_anon_mib "$(awk -v k="${!anon}" 'BEGIN { printf "%.1f", k / 1024 }')" MiB
  result crl "$t/full" size_bytes "$(size "$DATA/$t.crl")" bytes
done
result crl privca/full build_sign_ms "$privca_ms" ms
result crl privca/delta build_sign_ms "$delta_ms" ms
result crl privca/cdp/one served_after_ms "$one_ms" ms
result crl privca/cdp/burst served_after_ms "$burst_ms" ms
[ "$burst_fulls" -le 2 ] || { echo "the burst made $burst_fulls complete CRLs (expected at most 2)" >&2; exit 1; }
