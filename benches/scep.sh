#!/usr/bin/env bash
# SCEP benchmark: PKCSReq enrollments/s at c=1 and c=8 (kept-alive HTTP/1.1 POSTs of
# pre-generated pkiMessages with unique transactionIDs, built by the independent client codec
# in interop/scep; post-load from benches/load) next to the raw HSM rate for the same work —
# RA decrypt (RSA-2048 C_Decrypt) + RA CertRep signature (RSA-2048) + CA signature (P-256),
# i.e. 1 / (1/decrypt + 1/rsa-sign + 1/p256-sign), cryptoki on 2 threads, measured in the same
# run (benches/signer.rs) before and after the enrollment runs (this machine's speed drifts by
# more than 10 % within minutes; the ratio uses the mean of the two and both are printed).
# Goal: >= 50 % of that rate. Every CertRep counted must have issued a
# certificate: the script checks the ledger afterwards. SQLite, and PostgreSQL when
# BENCH_PG_URL / PRIVCA_TEST_PG_URL is set.
#
#   bash benches/scep.sh                   full run (release build, 10 s per run)
#   BENCH_SMOKE=1 PRIVCA_BIN=... POST_LOAD_BIN=... bash benches/scep.sh   smoke run (test command)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 8}"
REQUESTS="${BENCH_REQUESTS:-9000}"
RAW_CMD=(cargo bench --bench signer)
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
if [ -n "${BENCH_SMOKE:-}" ]; then
  SECONDS_PER_RUN="${BENCH_SECONDS:-1}"
  CONCURRENCY="${BENCH_CONCURRENCY:-2}"
  REQUESTS="${BENCH_REQUESTS:-40}"
  RAW_CMD=(cargo test -q --bench signer)
fi
bench_bins POST_LOAD_BIN post-load

measure_raw() { # measure_raw FILE
  echo "raw HSM rates (SoftHSM2, cryptoki, 2 threads)..."
  (cd "$ROOT" && PRIVCA_BENCH_RAW_ONLY=rsa-2048-decrypt,rsa-2048,ecdsa-p256 PRIVCA_BENCH_SECONDS="$SECONDS_PER_RUN" \
    "${RAW_CMD[@]}" 2>/dev/null) | awk '$1 == "raw" && $3 == 2 { print $2, $4 }' >"$1"
  [ "$(wc -l <"$1")" = 3 ] || { echo "could not measure the raw HSM rates" >&2; exit 1; }
  cat "$1"
}
measure_raw "$WORK/raw-before.txt"

export PRIVCA_SCEP_LAB_CHALLENGE=bench-lab-challenge
run_backend() { # run_backend sqlite|postgres
  local data="$WORK/privca-$1" url=http://127.0.0.1:8080/scep/lab
  bench_config "$1" "$data"
  bench_serve "$data"
  for c in $CONCURRENCY; do
    "$PY" "$ROOT/benches/scep_requests.py" "$url" "$PRIVCA_SCEP_LAB_CHALLENGE" "$REQUESTS" "$data/req-$c"
    local before after
    before=$("${LEDGER_SQL[@]}" "SELECT COUNT(*) FROM certificates WHERE requester LIKE 'scep:lab/%'")
    "$POST_LOAD_BIN" --url "$url?operation=PKIOperation" --content-type application/x-pki-message \
      --bodies "$data/req-$c" --once --concurrency "$c" --seconds "$SECONDS_PER_RUN" --server-pid "$SERVER_PID" \
      --label "$1 c=$c" >"$data/run-$c.json"
    after=$("${LEDGER_SQL[@]}" "SELECT COUNT(*) FROM certificates WHERE requester LIKE 'scep:lab/%'")
    "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); r["issued"] = int(sys.argv[2]); print(json.dumps(r))' \
      "$data/run-$c.json" "$((after - before))" | tee -a "$WORK/results.jsonl"
  done
  stop_server
}

run_backend sqlite
[ -n "$PG_URL" ] && run_backend postgres
measure_raw "$WORK/raw-after.txt"

"$PY" - "$WORK/results.jsonl" "$REQUESTS" "$WORK/raw-before.txt" "$WORK/raw-after.txt" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
requests = int(sys.argv[2])
fmt = lambda v, f="{:.1f}": "-" if v is None else f.format(v)
print()
rates = []
for when, path in zip(("before", "after"), sys.argv[3:5]):
    raw = {k: float(v) for k, v in (l.split() for l in open(path))}
    rates.append(1 / (1 / raw["rsa-2048-decrypt"] + 1 / raw["rsa-2048"] + 1 / raw["ecdsa-p256"]))
    print(f"raw {when} (2 threads): RSA-2048 decrypt {raw['rsa-2048-decrypt']:.0f}/s, RSA-2048 sign {raw['rsa-2048']:.0f}/s, "
          f"P-256 sign {raw['ecdsa-p256']:.0f}/s -> one enrollment's HSM work {rates[-1]:.0f}/s")
combined = sum(rates) / len(rates)
print(f"raw, mean of the two: {combined:.0f}/s")
print(f"{'run':<14} {'ok':>6} {'issued':>6} {'failed':>6} {'enroll/s':>9} {'of raw':>7} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/op':>10}")
for r in rows:
    print(f"{r['label']:<14} {r['ok']:>6} {r['issued']:>6} {r['failed']:>6} {fmt(r['per_s']):>9} {r['per_s'] / combined:>7.1%} "
          f"{fmt(r['p50_ms']):>8} {fmt(r['p99_ms']):>8} {fmt(r['server_cpu_ms_per_op'], '{:.2f}'):>10}")
for r in rows:
    if r["ok"] >= requests:
        print(f"note: {r['label']} used every pre-generated request; raise BENCH_REQUESTS for a full-length run")
bad = [r["label"] for r in rows if r["ok"] == 0 or r["failed"] or r["issued"] != r["ok"]]
if bad:
    print("runs with failures or CertReps that issued nothing:", bad)
    sys.exit(1)
PY
