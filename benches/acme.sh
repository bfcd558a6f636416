#!/usr/bin/env bash
# ACME benchmark: the same load generator (benches/load, bin acme-load, on instant-acme) runs full flows
# (newOrder → authz → http-01 answered by the generator → finalize → download) at c=8 and c=32
# against privca (SQLite, and PostgreSQL when BENCH_PG_URL / PRIVCA_TEST_PG_URL is set) and
# against pebble (Debian, PEBBLE_VA_NOSLEEP=1, a fresh pebble per run) and OpenBao (benches/openbao.sh:
# raft storage, TLS, PKI with ACME, a fresh server per run), in one run. All validate for real
# through pebble-challtestsrv's DNS (127.0.0.1:8053), or with BENCH_VALIDATION=none privca and
# pebble skip it (PEBBLE_VA_ALWAYS_VALID=1 and privca's dev-only acme.skip_validation); OpenBao has
# no such switch and always validates http-01, which it dials on port 80 (the generator's
# responder listens on 127.0.0.1:80 for it; binding it needs root, else BENCH_OPENBAO=0).
# Prints orders/s, p50/p99 and server CPU per order, and the privca/pebble and privca/OpenBao
# ratios (goals: CPU/order <= 1/3 of pebble's and <= 1/8 of OpenBao's, orders/s >= 2x pebble's at
# c=8 and c=32, >= 6x OpenBao's at c=8 and >= 10x at c=32).
#
#   bash benches/acme.sh                       full run (release build, 20 s per run)
#   BENCH_SMOKE=1 PRIVCA_BIN=... ACME_LOAD_BIN=... bash benches/acme.sh    smoke run (test command)
#   BENCH_PERF=/tmp/prof bash benches/acme.sh  also records a perf profile of each privca run
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/openbao.sh"
SECONDS_PER_RUN="${BENCH_SECONDS:-20}"
CONCURRENCY="${BENCH_CONCURRENCY:-8 32}"
VALIDATION="${BENCH_VALIDATION:-http01}"
if [ -n "${BENCH_SMOKE:-}" ]; then
  SECONDS_PER_RUN="${BENCH_SECONDS:-1}"
  CONCURRENCY="${BENCH_CONCURRENCY:-2}"
fi
bench_bins ACME_LOAD_BIN acme-load
for tool in pebble pebble-challtestsrv openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install pebble openssl curl)" >&2; exit 1; }
done
case "$VALIDATION" in http01 | none) ;; *) echo "BENCH_VALIDATION must be http01 or none" >&2; exit 1 ;; esac

# Ports: the dev config's and pebble's usual ones, moved up by BENCH_PORT_SHIFT (default 0; e.g.
# 10000 to run next to an interop/ script). OpenBao's VA always dials http-01 on port 80.
DNS_PORT=$((8053 + PORT_SHIFT))
DNS_MGMT_PORT=$((8055 + PORT_SHIFT))
HTTP01_PORT=$((5002 + PORT_SHIFT))
PEBBLE_PORT=$((14000 + PORT_SHIFT))
BAO_DNS="127.0.0.1:$DNS_PORT"

# DNS for the servers' validation: every name resolves to 127.0.0.1.
if ! (exec 3<>/dev/tcp/127.0.0.1/$DNS_MGMT_PORT) 2>/dev/null; then
  pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" \
    -tlsalpn01 "" -management "127.0.0.1:$DNS_MGMT_PORT" >"$WORK/challtestsrv.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$DNS_MGMT_PORT) 2>/dev/null && break; sleep 0.1; done
fi

# pebble's listener certificate: a throwaway CA and a leaf for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$WORK/pebble-ca.key" -out "$WORK/pebble-ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$WORK/pebble.key" -out "$WORK/pebble.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$WORK/pebble.ext"
openssl x509 -req -in "$WORK/pebble.csr" -CA "$WORK/pebble-ca.pem" -CAkey "$WORK/pebble-ca.key" -days 2 \
  -extfile "$WORK/pebble.ext" -out "$WORK/pebble.pem" 2>/dev/null
cat >"$WORK/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$PEBBLE_PORT", "managementListenAddress": "127.0.0.1:$((PEBBLE_PORT + 1000))",
  "certificate": "$WORK/pebble.pem", "privateKey": "$WORK/pebble.key", "httpPort": $HTTP01_PORT, "tlsPort": $((HTTP01_PORT - 1)),
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF

LOAD_ARGS=(--seconds "$SECONDS_PER_RUN" --http01-listen "127.0.0.1:$HTTP01_PORT")
[ "$VALIDATION" = none ] && LOAD_ARGS+=(--validation none)

# pebble 2.4 deadlocks under concurrent load after some hundred orders: every run gets a fresh
# pebble and a 10 s order timeout, and a run with timed-out orders is repeated (up to
# BENCH_PEBBLE_ATTEMPTS times); only a clean run counts, else the last one is reported as unclean.
run_pebble() { # run_pebble C
  local env=(PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0) attempt out
  [ "$VALIDATION" = none ] && env+=(PEBBLE_VA_ALWAYS_VALID=1)
  for attempt in $(seq 1 "${BENCH_PEBBLE_ATTEMPTS:-4}"); do
    env "${env[@]}" pebble -config "$WORK/pebble.json" -dnsserver "127.0.0.1:$DNS_PORT" >"$WORK/pebble-$1.log" 2>&1 &
    SERVER_PID=$!
    wait_for "https://127.0.0.1:$PEBBLE_PORT/dir" --cacert "$WORK/pebble-ca.pem"
    out=$("$ACME_LOAD_BIN" --directory "https://127.0.0.1:$PEBBLE_PORT/dir" --root "$WORK/pebble-ca.pem" --concurrency "$1" \
      --server-pid "$SERVER_PID" --label "pebble c=$1" "${LOAD_ARGS[@]}" --order-timeout 10 2>/dev/null) || true
    stop_server
    echo "$out"
    case "$out" in *'"failed":0,'*) break ;; esac
    echo "  (pebble run $attempt not clean, starting a fresh pebble)"
  done
  echo "$out" >>"$WORK/results.jsonl"
}

# OpenBao: a fresh server per run; its VA dials http-01 on port 80 of what the DNS answers.
run_openbao() { # run_openbao C
  local dir="$WORK/openbao-$1" out
  openbao_start "$dir"
  openbao_pki
  out=$("$ACME_LOAD_BIN" --directory "$BAO_ADDR/v1/pki/acme/directory" --root "$BAO_CACERT" --concurrency "$1" \
    --server-pid "$BAO_PID" --label "openbao c=$1" --seconds "$SECONDS_PER_RUN" --http01-listen 127.0.0.1:80 \
    --order-timeout 30) || true
  openbao_stop
  echo "$out"
  [ -n "$out" ] && echo "$out" >>"$WORK/results.jsonl"
}

run_privca() { # run_privca DB C: one load run against a fresh privca (DB = sqlite | postgres)
  local data="$WORK/privca-$1-$2"
  bench_config "$1" "$data"
  [ "$VALIDATION" = none ] && sed -i 's/^\[acme\]$/[acme]\nskip_validation = true/' "$data/privca.toml"
  sed -i -e "s/^resolver = \"127.0.0.1:8053\"/resolver = \"127.0.0.1:$DNS_PORT\"/" \
    -e "s/^http01_port = 5002/http01_port = $HTTP01_PORT/" -e "s/^tlsalpn01_port = 5001/tlsalpn01_port = $((HTTP01_PORT - 1))/" \
    "$data/privca.toml"
  bench_serve "$data"
  local perf_pid=""
  if [ -n "${BENCH_PERF:-}" ]; then # profile the server: perf.data per run in $BENCH_PERF
    mkdir -p "$BENCH_PERF"
    perf record -F 499 --call-graph dwarf,16384 -o "$BENCH_PERF/privca-$1-c$2.data" -p "$SERVER_PID" \
      -- sleep "$SECONDS_PER_RUN" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  "$ACME_LOAD_BIN" --directory "https://127.0.0.1:$HTTPS_PORT/acme/directory" --root "$data/root.pem" --concurrency "$2" \
    --server-pid "$SERVER_PID" --label "privca-$1 c=$2" --order-timeout 30 "${LOAD_ARGS[@]}" | tee -a "$WORK/results.jsonl"
  [ -n "$perf_pid" ] && wait "$perf_pid"
  stop_server
}

BACKENDS=(sqlite)
[ -n "$PG_URL" ] && BACKENDS+=(postgres)
echo "ACME full flows, validation=$VALIDATION, ${SECONDS_PER_RUN}s per run, concurrency: $CONCURRENCY"
for c in $CONCURRENCY; do
  run_pebble "$c"
  [ "${BENCH_OPENBAO:-1}" = 0 ] || run_openbao "$c"
  for b in "${BACKENDS[@]}"; do run_privca "$b" "$c"; done
done

load_results acme orders/s "$WORK/results.jsonl"
python3 - "$WORK/results.jsonl" "${BENCH_SMOKE:-}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
smoke = bool(sys.argv[2])
fmt = lambda v, f="{:.1f}": "-" if v is None else f.format(v)
print()
print(f"{'run':<20} {'ok':>6} {'failed':>6} {'orders/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/order':>13}")
for r in rows:
    print(f"{r['label']:<20} {r['ok']:>6} {r['failed']:>6} {fmt(r['per_s']):>9} {fmt(r['p50_ms']):>8} "
          f"{fmt(r['p99_ms']):>8} {fmt(r['server_cpu_ms_per_op'], '{:.2f}'):>13}")
bad = [r for r in rows if r["ok"] == 0 or (r["label"].startswith("privca") and r["failed"])]
peers = {
    "pebble": ({r["concurrency"]: r for r in rows if r["label"].startswith("pebble")}, lambda c: 2, 0.33),
    "OpenBao": ({r["concurrency"]: r for r in rows if r["label"].startswith("openbao")},
                lambda c: 6 if c <= 8 else 10, 0.125),
}
print()
for r in rows:
    if not r["label"].startswith("privca") or not r["ok"]:
        continue
    for name, (by_c, goal, cpu_goal) in peers.items():
        p = by_c.get(r["concurrency"])
        if not p or not p["ok"]:
            continue
        clean = "" if p["failed"] == 0 else f"  ({name} run not clean: {p['failed']} failed orders)"
        cpu = "-"
        if r["server_cpu_ms_per_op"] and p["server_cpu_ms_per_op"]:
            cpu = f"{r['server_cpu_ms_per_op'] / p['server_cpu_ms_per_op']:.2f}x (goal <= {cpu_goal:.2f}x)"
        print(f"{r['label']:<20} vs {name}: orders/s {r['per_s'] / p['per_s']:.2f}x "
              f"(goal >= {goal(r['concurrency'])}x), CPU/order {cpu}{clean}")
if bad:
    print("runs without completed orders, or privca runs with failed orders:", [r["label"] for r in bad])
    sys.exit(1)
PY
