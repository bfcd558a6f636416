#!/usr/bin/env bash
# EST benchmark: /simpleenroll/s at c=1, 8 and 32 (one kept-alive TLS connection per client,
# authenticated by a TLS client certificate; pre-generated P-256 CSRs (post-load, benches/load); P-256 issuing CA in
# SoftHSM2), then HTTP Basic at c=8, next to the raw HSM P-256 signing rate (cryptoki C_Sign
# on 2 threads, benches/signer.rs) and the CPU floor of one enrollment (the cryptography it
# requires done raw on one thread: CSR proof-of-possession verification, HSM signature of the
# certificate, its verification, HSM signature of the first OCSP response; `est-floor` in
# benches/signer.rs), both measured in the same run. Goals: >= 25 % of raw sign/s at c=8; server
# CPU per enrollment <= 2x the floor.
# SQLite, and PostgreSQL when BENCH_PG_URL / PRIVCA_TEST_PG_URL is set.
#
#   bash benches/est.sh                    full run (release build, 10 s per run)
#   BENCH_SMOKE=1 PRIVCA_BIN=... POST_LOAD_BIN=... bash benches/est.sh    smoke run (test command)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 8 32}"
RAW_CMD=(cargo bench --bench signer)
if [ -n "${BENCH_SMOKE:-}" ]; then
  SECONDS_PER_RUN="${BENCH_SECONDS:-1}"
  CONCURRENCY="${BENCH_CONCURRENCY:-2}"
  RAW_CMD=(cargo test -q --bench signer)
fi
bench_bins POST_LOAD_BIN post-load

echo "raw HSM rate (SoftHSM2, ECDSA P-256, cryptoki C_Sign, 2 threads)..."
RAW=$(cd "$ROOT" && PRIVCA_BENCH_RAW_ONLY=ecdsa-p256 PRIVCA_BENCH_SECONDS="$SECONDS_PER_RUN" "${RAW_CMD[@]}" 2>/dev/null |
  awk '$1 == "raw" && $3 == 2 { print $4 }')
[ -n "$RAW" ] || { echo "could not measure the raw HSM rate" >&2; exit 1; }
echo "raw P-256 sign/s: $RAW"
echo "CPU floor of one enrollment (the required cryptography done raw, one thread)..."
FLOOR=$(cd "$ROOT" && PRIVCA_BENCH_RAW_ONLY=est-floor PRIVCA_BENCH_SECONDS="$SECONDS_PER_RUN" "${RAW_CMD[@]}" 2>/dev/null |
  awk '$1 == "raw" && $2 == "est-floor" { print $4 }')
[ -n "$FLOOR" ] || { echo "could not measure the enrollment floor" >&2; exit 1; }
FLOOR_MS=$(awk -v r="$FLOOR" 'BEGIN { printf "%.4f", 1000 / r }')
echo "floor: $FLOOR enrollments/s on one thread = $FLOOR_MS ms of CPU each"

mkdir -p "$WORK/csrs"
for i in $(seq 1 32); do
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout /dev/null -subj "/CN=dev$i.bench.test" \
    -addext "subjectAltName=DNS:dev$i.bench.test" -outform DER 2>/dev/null | base64 >"$WORK/csrs/$i.b64"
done

run_backend() { # run_backend sqlite|postgres
  local data="$WORK/privca-$1" est=https://127.0.0.1:8443/.well-known/est/bench
  bench_config "$1" "$data"
  # A label on which the load's client certificate may enroll any name of the profile.
  cat >>"$data/privca.toml" <<'TOML'

[est.labels.bench]
profile = "device"
auth = ["basic", "cert"]
cert_names = "any"
TOML
  local cli=("$PRIVCA_BIN" --config "$data/privca.toml" --data-dir "$data")
  bench_serve "$data"
  local pw
  pw=$("${cli[@]}" est user add bench --label bench | tail -n 1)
  # The client certificate every load connection authenticates with.
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$data/client.key" \
    -subj /CN=client.bench.test -addext "subjectAltName=DNS:client.bench.test" -outform DER 2>/dev/null | base64 >"$data/client.b64"
  curl -sf --cacert "$data/root.pem" -u "bench:$pw" -H 'Content-Type: application/pkcs10' --data-binary @"$data/client.b64" \
    "$est/simpleenroll" | base64 -d | openssl pkcs7 -inform DER -print_certs -out "$data/client.pem"
  local common=(--url "$est/simpleenroll" --root "$data/root.pem" --bodies "$WORK/csrs" --seconds "$SECONDS_PER_RUN"
    --server-pid "$SERVER_PID")
  for c in $CONCURRENCY; do
    "$POST_LOAD_BIN" "${common[@]}" --concurrency "$c" --cert "$data/client.pem" --key "$data/client.key" \
      --label "$1 client-cert c=$c" | tee -a "$WORK/results.jsonl"
  done
  local basic_c
  basic_c=$(echo "$CONCURRENCY" | awk '{ for (i = 1; i <= NF; i++) if ($i == 8) { print 8; exit } print $NF }')
  "$POST_LOAD_BIN" "${common[@]}" --concurrency "$basic_c" --basic "bench:$pw" --label "$1 basic c=$basic_c" |
    tee -a "$WORK/results.jsonl"
  stop_server
}

run_backend sqlite
[ -n "$PG_URL" ] && run_backend postgres

result est raw-hsm per_s "$RAW" sign/s
result est raw-floor cpu_ms_per_op "$FLOOR_MS" ms
load_results est enroll/s "$WORK/results.jsonl" privca/
python3 - "$WORK/results.jsonl" "$RAW" "$FLOOR_MS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
raw, floor = float(sys.argv[2]), float(sys.argv[3])
fmt = lambda v, f="{:.1f}": "-" if v is None else f.format(v)
print()
print(f"raw HSM P-256 sign/s (2 threads): {raw:.0f}; CPU floor of one enrollment: {floor:.3f} ms")
print(f"{'run':<28} {'ok':>7} {'failed':>6} {'enroll/s':>9} {'of raw':>7} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/op':>10} {'/ floor':>8}")
for r in rows:
    cpu = r['server_cpu_ms_per_op']
    print(f"{r['label']:<28} {r['ok']:>7} {r['failed']:>6} {fmt(r['per_s']):>9} {r['per_s'] / raw:>7.1%} "
          f"{fmt(r['p50_ms']):>8} {fmt(r['p99_ms']):>8} {fmt(cpu, '{:.2f}'):>10} "
          f"{fmt(None if cpu is None else cpu / floor, '{:.2f}x'):>8}")
c8 = [r for r in rows if r["label"].startswith("sqlite client-cert c=8")]
if c8:
    print(f"\nSQLite, client certificate, c=8: {c8[0]['per_s'] / raw:.1%} of raw sign/s (goal >= 25%)")
bad = [r["label"] for r in rows if r["ok"] == 0 or r["failed"]]
if bad:
    print("runs with failed or no enrollments:", bad)
    sys.exit(1)
PY
