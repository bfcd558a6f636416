#!/usr/bin/env bash
# Scale-out benchmark: the ACME load generator's full flows (http-01, pebble-challtestsrv DNS)
# against 1, 2 and 3 privca instances on one PostgreSQL ledger and one SoftHSM2 token behind
# HAProxy (TCP, round robin), each count on a fresh database. Prints orders/s, p50/p99 and the
# instances' summed CPU per order, and each count's ratios to one instance. On a 2-core machine
# extra instances share the same cores: the figure shows the cluster's overhead, not a speed-up.
#   bash benches/cluster.sh                                   full run (release build)
#   BENCH_SMOKE=1 PRIVCA_BIN=... ACME_LOAD_BIN=... bash benches/cluster.sh   smoke run
# Needs PostgreSQL: BENCH_PG_URL or PRIVCA_TEST_PG_URL (a role with CREATEDB).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PG="${BENCH_PG_URL:-${PRIVCA_TEST_PG_URL:-}}"
if [ -z "$PG" ]; then
  echo "cluster benchmark: no PostgreSQL (BENCH_PG_URL or PRIVCA_TEST_PG_URL): skipped"
  exit 0
fi
PG_URL=$PG
bench_bins ACME_LOAD_BIN acme-load
for tool in haproxy pebble-challtestsrv psql python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
SECONDS_PER_RUN="${BENCH_SECONDS:-20}"
CONCURRENCY="${BENCH_CONCURRENCY:-16}"
COUNTS="${BENCH_INSTANCES:-1 2 3}"
if [ -n "${BENCH_SMOKE:-}" ]; then SECONDS_PER_RUN=1; CONCURRENCY=4; COUNTS="1 2"; fi
DNS_PORT=$((18053 + PORT_SHIFT))
DNS_MGMT_PORT=$((18055 + PORT_SHIFT))
HTTP01_PORT=$((15002 + PORT_SHIFT))
pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" \
  -tlsalpn01 "" -management "127.0.0.1:$DNS_MGMT_PORT" >"$WORK/challtestsrv.log" 2>&1 &
PIDS+=($!)

# cpu_ticks PID...: utime + stime of the processes, in clock ticks.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

run_count() { # run_count N: one load run against N instances
  local n=$1 data="$WORK/cluster-$1" i inst=() lb=$WORK/haproxy-$1.cfg
  bench_config postgres "$data"
  sed -i -e "s/^resolver = \"127.0.0.1:8053\"/resolver = \"127.0.0.1:$DNS_PORT\"/" \
    -e "s/^http01_port = 5002/http01_port = $HTTP01_PORT/" -e "s/^tlsalpn01_port = 5001/tlsalpn01_port = $((HTTP01_PORT - 1))/" \
    -e "s/^max_connections = .*/max_connections = 8/" "$data/privca.toml"
  "$PRIVCA_BIN" --config "$data/privca.toml" --data-dir "$data" init >/dev/null
  printf 'global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n' >"$lb"
  printf 'frontend https\n  bind 127.0.0.1:%s\n  default_backend https\nbackend https\n  balance roundrobin\n' "$HTTPS_PORT" >>"$lb"
  for i in $(seq 1 "$n"); do
    sed -e "s/^https_listen = .*/https_listen = \"127.0.0.1:$((HTTPS_PORT + 10000 + i))\"/" \
      -e "s/^http_listen = .*/http_listen = \"127.0.0.1:$((HTTP_PORT + 10000 + i))\"/" \
      -e "s/^admin_listen = .*/admin_listen = \"127.0.0.1:$((ADMIN_PORT + 10000 + i))\"/" "$data/privca.toml" >"$data/i$i.toml"
    RUST_LOG="${BENCH_RUST_LOG:-warn}" "$PRIVCA_BIN" --config "$data/i$i.toml" --data-dir "$data" serve >"$data/i$i.log" 2>&1 &
    inst+=($!)
    PIDS+=($!)
    SERVER_PID=${inst[-1]} wait_for "https://127.0.0.1:$((HTTPS_PORT + 10000 + i))/healthz" -k
    printf '  server p%s 127.0.0.1:%s\n' "$i" "$((HTTPS_PORT + 10000 + i))" >>"$lb"
  done
  haproxy -f "$lb" -db >"$WORK/haproxy-$n.log" 2>&1 &
  local lb_pid=$!
  PIDS+=($lb_pid)
  wait_for "https://127.0.0.1:$HTTPS_PORT/healthz" -k
  local before out after
  before=$(cpu_ticks "${inst[@]}")
  out=$("$ACME_LOAD_BIN" --directory "https://127.0.0.1:$HTTPS_PORT/acme/directory" --root "$data/root.pem" \
    --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" --order-timeout 30 --http01-listen "127.0.0.1:$HTTP01_PORT" \
    --label "privca x$n")
  after=$(cpu_ticks "${inst[@]}")
  echo "$out" | python3 -c "import json,sys; r=json.load(sys.stdin); r['instances']=$n; r['cpu_ticks']=$((after - before)); print(json.dumps(r))" \
    | tee -a "$WORK/results.jsonl"
  kill "$lb_pid" "${inst[@]}" 2>/dev/null || true
  for p in "$lb_pid" "${inst[@]}"; do wait "$p" 2>/dev/null || true; done
}

echo "ACME full flows through HAProxy, c=$CONCURRENCY, ${SECONDS_PER_RUN}s per run, instances: $COUNTS"
for n in $COUNTS; do run_count "$n"; done

load_results cluster orders/s "$WORK/results.jsonl"
python3 - "$WORK/results.jsonl" "${BENCH_SMOKE:-}" "$(getconf CLK_TCK)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
smoke, tck = bool(sys.argv[2]), int(sys.argv[3])
print()
print(f"{'instances':>9} {'ok':>6} {'failed':>6} {'orders/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/order':>13}")
for r in rows:
    r["cpu"] = r["cpu_ticks"] * 1000 / tck / r["ok"] if r["ok"] else None
    cpu = "-" if r["cpu"] is None else f"{r['cpu']:.2f}"
    print(f"{r['instances']:>9} {r['ok']:>6} {r['failed']:>6} {r['per_s']:>9.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {cpu:>13}")
    if r["cpu"] is not None:
        print(f"RESULT cluster privca/x{r['instances']} cpu_ms_per_op {r['cpu']:.3f} ms")
one = next((r for r in rows if r["instances"] == 1), None)
if smoke:
    print("smoke run (debug build, tiny sizes): the figures only show that the benchmark works")
for r in rows:
    if one and r is not one and one["per_s"] and one["cpu"] and r["cpu"]:
        print(f"{r['instances']} instances / 1: orders/s {r['per_s'] / one['per_s']:.2f}x, CPU per order {r['cpu'] / one['cpu']:.2f}x")
bad = [r for r in rows if r["ok"] == 0 or r["failed"]]
sys.exit(1 if bad else 0)
PY
