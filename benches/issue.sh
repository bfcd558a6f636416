#!/usr/bin/env bash
# Issue from a CSR over an API, privca against OpenBao in one run: the same load generator
# (benches/load, bin post-load: kept-alive HTTPS connections, one request in flight each) POSTs the
# same P-256 CSRs to privca's admin API (`POST /api/v1/certificates`, profile tls-server, an
# operator token) and to OpenBao's `POST /v1/pki/sign/bench` (root token), at c=8, alternating
# BENCH_REPEAT times. Both store every certificate (privca's SQLite ledger, OpenBao's raft).
# Also measures, for both: cold start (process start on existing storage to the first answered
# CA request: privca GET /ca/ec.pem; OpenBao start + unseal + GET pki/ca/pem), idle RSS after it,
# and RSS after the load runs (VmRSS, and its anonymous part RssAnon).
# Prints req/s, p50/p99, server CPU per certificate and the privca/OpenBao ratios
# (goals: req/s >= 5x OpenBao; idle RSS <= 1/4 of OpenBao's; cold start < 1 s).
#
# privca listens on the dev config's ports + BENCH_PORT_SHIFT (default 10000), OpenBao on 8200/8210.
#
#   bash benches/issue.sh                 full run (release build, 3 x 15 s per server)
#   BENCH_SMOKE=1 PRIVCA_BIN=... POST_LOAD_BIN=... bash benches/issue.sh    smoke run (test command)
#   BENCH_PERF=/tmp/prof bash benches/issue.sh   also records a perf profile of each privca run
set -euo pipefail
export BENCH_PORT_SHIFT="${BENCH_PORT_SHIFT:-10000}"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/openbao.sh"
SECONDS_PER_RUN="${BENCH_SECONDS:-15}"
CONCURRENCY="${BENCH_CONCURRENCY:-8}"
REPEAT="${BENCH_REPEAT:-3}"
CSRS="${BENCH_CSRS:-100}"
if [ -n "${BENCH_SMOKE:-}" ]; then
  SECONDS_PER_RUN="${BENCH_SECONDS:-1}"
  REPEAT="${BENCH_REPEAT:-1}"
  CSRS="${BENCH_CSRS:-4}"
fi
bench_bins POST_LOAD_BIN post-load
for tool in openssl curl python3 sqlite3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

# The same CSRs for both servers, one JSON body per CSR in each server's request format.
mkdir -p "$WORK/csr" "$WORK/body-privca" "$WORK/body-openbao"
for i in $(seq 1 "$CSRS"); do
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout /dev/null \
    -subj "/CN=i$i.issue.bench.test" -addext "subjectAltName=DNS:i$i.issue.bench.test" -out "$WORK/csr/$i.pem" 2>/dev/null
done
python3 - "$WORK" <<'PY'
import json, os, sys
w = sys.argv[1]
for f in os.listdir(f"{w}/csr"):
    csr = open(f"{w}/csr/{f}").read()
    json.dump({"csr": csr, "profile": "tls-server"}, open(f"{w}/body-privca/{f}.json", "w"))
    json.dump({"csr": csr}, open(f"{w}/body-openbao/{f}.json", "w"))
PY

# privca: first start creates the token, keys and CAs; the measured start reuses them.
DATA="$WORK/privca"
bench_config sqlite "$DATA"
bench_serve "$DATA"
stop_server
t0=$(date +%s.%N)
RUST_LOG="${BENCH_RUST_LOG:-warn}" "$PRIVCA_BIN" --config "$DATA/privca.toml" --data-dir "$DATA" serve >>"$DATA/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 2000); do
  curl -sf -o /dev/null http://127.0.0.1:$HTTP_PORT/ca/ec.pem && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "privca exited (see $DATA/serve.log)" >&2; exit 1; }
  sleep 0.005
done
privca_cold=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
TOKEN=$("$PRIVCA_BIN" --config "$DATA/privca.toml" --data-dir "$DATA" admin token new --role operator --expires 1d \
  --note bench 2>/dev/null)

openbao_start "$WORK/openbao"
openbao_pki
openbao_restart "$WORK/openbao"
openbao_cold=$BAO_COLD

sleep "${BENCH_IDLE_SECONDS:-3}"
privca_idle=$(rss_mib "$SERVER_PID")
openbao_idle=$(rss_mib "$BAO_PID")
privca_idle_anon=$(rss_mib "$SERVER_PID" RssAnon)
openbao_idle_anon=$(rss_mib "$BAO_PID" RssAnon)

# Sanity: both issue from the same CSR.
curl -sf --cacert "$DATA/root.pem" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data @"$WORK/body-privca/1.pem.json" "https://127.0.0.1:$ADMIN_PORT/api/v1/certificates" | grep -q '"issued"'
curl -sf --cacert "$BAO_CACERT" -H "X-Vault-Token: $BAO_TOKEN" --data @"$WORK/body-openbao/1.pem.json" \
  "$BAO_ADDR/v1/pki/sign/bench" | grep -q '"certificate"'

echo "Issue from CSR over the API: $CSRS CSRs, c=$CONCURRENCY, $SECONDS_PER_RUN s per run, $REPEAT run(s) each"
for r in $(seq 1 "$REPEAT"); do
  perf_pids=()
  if [ -n "${BENCH_PERF:-}" ]; then # profile both servers: perf.data per run in $BENCH_PERF
    mkdir -p "$BENCH_PERF"
    perf record -F 499 -g -o "$BENCH_PERF/issue-privca-$r.data" -p "$SERVER_PID" -- sleep "$SECONDS_PER_RUN" \
      >/dev/null 2>&1 &
    perf_pids+=($!)
  fi
  "$POST_LOAD_BIN" --url "https://127.0.0.1:$ADMIN_PORT/api/v1/certificates" --root "$DATA/root.pem" \
    --header "Authorization: Bearer $TOKEN" --content-type application/json --bodies "$WORK/body-privca" \
    --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" --server-pid "$SERVER_PID" --label privca |
    tee -a "$WORK/results.jsonl"
  "$POST_LOAD_BIN" --url "$BAO_ADDR/v1/pki/sign/bench" --root "$BAO_CACERT" --header "X-Vault-Token: $BAO_TOKEN" \
    --content-type application/json --bodies "$WORK/body-openbao" \
    --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" --server-pid "$BAO_PID" --label openbao |
    tee -a "$WORK/results.jsonl"
  for p in "${perf_pids[@]}"; do wait "$p" || true; done
done
privca_loaded=$(rss_mib "$SERVER_PID")
openbao_loaded=$(rss_mib "$BAO_PID")
privca_loaded_anon=$(rss_mib "$SERVER_PID" RssAnon)
openbao_loaded_anon=$(rss_mib "$BAO_PID" RssAnon)

load_results issue certs/s "$WORK/results.jsonl"
for s in privca openbao; do
  cold=${s}_cold idle=${s}_idle loaded=${s}_loaded idle_anon=${s}_idle_anon loaded_anon=${s}_loaded_anon
  result issue "$s" cold_start_s "${!cold}" s
  result issue "$s" idle_rss_mib "${!idle}" MiB
  result issue "$s" loaded_rss_mib "${!loaded}" MiB
  result issue "$s" idle_rss_anon_mib "${!idle_anon}" MiB
  result issue "$s" loaded_rss_anon_mib "${!loaded_anon}" MiB
done
[ -z "${BENCH_SMOKE:-}" ] || echo "smoke run (debug build, tiny sizes): the figures below only show that the benchmark works"
python3 - "$WORK/results.jsonl" "$privca_cold $openbao_cold $privca_idle $openbao_idle $privca_loaded $openbao_loaded" \
  "$privca_idle_anon $openbao_idle_anon $privca_loaded_anon $openbao_loaded_anon" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pc, oc, pi, oi, pl, ol = map(float, sys.argv[2].split())
pia, oia, pla, ola = map(float, sys.argv[3].split())
by = {n: [r for r in rows if r["label"] == n] for n in ("privca", "openbao")}
def med(rs, k):
    v = [r[k] for r in rs if r[k] is not None]
    return (statistics.median(v), min(v), max(v)) if v else (None, None, None)
fmt = lambda t, f="{:.1f}": "-" if t[0] is None else (f.format(t[0]) + (f" ({f.format(t[1])}–{f.format(t[2])})" if t[1] != t[2] else ""))
print()
print(f"{'server':<8} {'runs':>4} {'failed':>6} {'req/s':>22} {'p50 ms':>20} {'p99 ms':>20} {'CPU ms/cert':>20}")
m = {}
for n, rs in by.items():
    m[n] = {k: med(rs, k) for k in ("per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_op")}
    print(f"{n:<8} {len(rs):>4} {sum(r['failed'] for r in rs):>6} {fmt(m[n]['per_s']):>22} {fmt(m[n]['p50_ms']):>20} "
          f"{fmt(m[n]['p99_ms']):>20} {fmt(m[n]['server_cpu_ms_per_op'], '{:.2f}'):>20}")
print("(medians over the runs, min–max in parentheses)")
p, o = m["privca"], m["openbao"]
if p["per_s"][0] and o["per_s"][0]:
    print(f"privca / OpenBao: req/s {p['per_s'][0] / o['per_s'][0]:.2f}x (goal >= 5x)", end="")
    if p["server_cpu_ms_per_op"][0] and o["server_cpu_ms_per_op"][0]:
        print(f", CPU per certificate {p['server_cpu_ms_per_op'][0] / o['server_cpu_ms_per_op'][0]:.2f}x", end="")
    print()
print(f"cold start (process start to first answered CA request): privca {pc:.3f} s, OpenBao {oc:.3f} s "
      f"(start + unseal) (goal privca < 1 s)")
print(f"idle RSS: privca {pi:.1f} MiB, OpenBao {oi:.1f} MiB, ratio {pi / oi:.2f} (goal <= 0.25)")
print(f"RSS after the load runs: privca {pl:.1f} MiB, OpenBao {ol:.1f} MiB, ratio {pl / ol:.2f}")
print(f"  of which anonymous (RssAnon; the rest maps files: binary, SQLite ledger, raft): idle privca {pia:.1f} MiB, "
      f"OpenBao {oia:.1f} MiB; after the load runs privca {pla:.1f} MiB, OpenBao {ola:.1f} MiB")
bad = [r["label"] for r in rows if r["ok"] == 0 or r["failed"]]
if bad:
    print("runs with failed requests or none completed:", bad)
    sys.exit(1)
PY
