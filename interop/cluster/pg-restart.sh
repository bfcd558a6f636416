#!/usr/bin/env bash
# The cluster of lib-cluster.sh (three instances behind HAProxy on one PostgreSQL) while its
# PostgreSQL server is stopped for a few seconds and started again under ACME load, which is
# what the instances see of a fail-over to a standby at the same address: every connection
# broken, statements failing until the server is back. Checks: while it is down, /healthz of
# every instance answers 503 (the balancer's health check takes it out) and no instance exits;
# once it is back, every instance answers 200 again (time measured), a second ACME load has no
# failed order, every background job has a live lease again, and a revocation reaches the CRL.
# Orders failed during the outage are counted, not failed on.
# It stops the PostgreSQL server that PRIVCA_TEST_PG_URL names, so it runs only with CI=true or
# CLUSTER_PG_RESTART=1, holding /tmp/privca-pg.lock (the PostgreSQL tests' lock) while the
# server is down; an exit trap always starts it again. Run it as root (pg_ctlcluster).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$ROOT/interop/acme/lib-acme.sh"
source "$(dirname "$0")/lib-cluster.sh"
if [ "${CI:-}" != true ] && [ "${CLUSTER_PG_RESTART:-}" != 1 ]; then
  echo "pg-restart: restarts the shared PostgreSQL server; set CLUSTER_PG_RESTART=1 to run it: skipped"
  exit 0
fi
port=$(sed -E 's#^.*@[^:/]+:([0-9]+)/.*$#\1#' <<<"$INTEROP_PG_URL")
[[ "$port" =~ ^[0-9]+$ ]] || port=5432
read -r PG_VERSION PG_CLUSTER < <(pg_lsclusters -h | awk -v p="$port" '$3 == p {print $1, $2; exit}')
if [ -z "${PG_VERSION:-}" ]; then
  echo "no local PostgreSQL cluster on port $port (pg_lsclusters)" >&2
  exit 1
fi
ACME_LOAD_BIN="${ACME_LOAD_BIN:-$CARGO_TARGET_DIR/debug/acme-load}"
[ -x "$ACME_LOAD_BIN" ] || (cd "$ROOT" && cargo build -q -p privca-load --bin acme-load)
cluster_data_dir
pg_start() { (exec 3>&- 9>&-; pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start) >/dev/null 2>&1 || true; }
restart_cleanup() {
  pg_start
  cluster_cleanup
}
trap restart_cleanup EXIT
start_cluster || exit 1
start_challtestsrv || exit 1
load() { # load SECONDS LABEL: the ACME load generator through the balancer; its JSON line
  "$ACME_LOAD_BIN" --directory https://127.0.0.1:8443/acme/directory --root "$DATA/root.pem" --concurrency 4 \
    --seconds "$1" --order-timeout 30 --label "$2" 2>>"$DATA/load.err" || true
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])" 2>/dev/null <<<"$2" || echo -1; }
health() { curl -sk -o /dev/null -w '%{http_code}' --max-time 5 "https://127.0.0.1:1844$1/healthz"; }

echo "# PostgreSQL $PG_VERSION/$PG_CLUSTER stopped for 5 s and started again under ACME load"
load 30 during >"$DATA/during.json" &
loader=$!
sleep 8
exec 9>/tmp/privca-pg.lock
flock -w 900 9 || { echo "could not take /tmp/privca-pg.lock" >&2; exit 1; }
(exec 3>&- 9>&-; pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast) >/dev/null 2>&1
stopped_at=$(date +%s.%N)
sleep 3
down=""
for n in 1 2 3; do down+="$(health "$n") "; done
alive=0
for n in 1 2 3; do kill -0 "${PIDS[$n]}" 2>/dev/null && alive=$((alive + 1)); done
sleep 2
pg_start
started_at=$(date +%s.%N)
flock -u 9
exec 9>&-
check "while PostgreSQL is down, every instance's /healthz answers 503 ($down)" test "$down" = "503 503 503 "
check "  no instance exits ($alive of 3 running)" test "$alive" = 3
back=""
for _ in $(seq 1 120); do
  if [ "$(health 1)$(health 2)$(health 3)" = 200200200 ]; then back=$(date +%s.%N); break; fi
  sleep 0.25
done
recovered=$([ -n "$back" ] && python3 -c "print(f'{$back - $started_at:.1f}')")
check "once it is back, every instance answers 200 (${recovered:-never} s after the start; down $(python3 -c "print(f'{$started_at - $stopped_at:.0f}')") s)" \
  test -n "$back"
wait "$loader"
during=$(cat "$DATA/during.json")
echo "  during: $during"
check "  the load generator ran through it ($(field ok "$during") orders completed, $(field failed "$during") failed during the outage)" \
  test "$(field ok "$during")" -gt 0
after=$(load 8 after)
echo "  after: $after"
check "a second ACME load after the restart: no failed order ($(field ok "$after") completed)" \
  test "$(field failed "$after")" = 0 -a "$(field ok "$after")" -gt 0
leased() { test "$(sql "SELECT COUNT(*) FROM job_leases WHERE expires_at > $(date +%s)")" -ge 8; }
wait_leased() { for _ in $(seq 1 $((LEASE * 4))); do leased && return 0; sleep 0.5; done; return 1; }
check "every background job has a live lease again" wait_leased
serial=$(sql "SELECT serial FROM certificates WHERE status = 'valid' AND issuer_id = 'ec' ORDER BY created_at DESC LIMIT 1")
privca_cli revoke --serial "$serial" --reason superseded >/dev/null
on_crl() {
  curl -sf http://127.0.0.1:8080/crl/ec.crl | openssl crl -inform DER -noout -text 2>/dev/null | tr -d ' :' |
    grep -qiE "^serialnumber0*${serial##0}$"
}
wait_crl() { for _ in $(seq 1 30); do on_crl && return 0; sleep 1; done; return 1; }
check "a revocation after the restart is on the next CRL" wait_crl
check "no serial twice" test "$(sql "SELECT COUNT(*) FROM (SELECT serial FROM certificates GROUP BY serial HAVING COUNT(*) > 1) d")" = 0
open_reservations() { sql "SELECT COUNT(*) FROM reservations WHERE state = 'reserved'"; }
wait_closed() { for _ in $(seq 1 90); do [ "$(open_reservations)" = 0 ] && return 0; sleep 1; done; return 1; }
check "every reservation committed or aborted (one the outage interrupted is aborted by the cleanup job)" wait_closed
privca_cli audit seal >/dev/null 2>&1 || true
check "audit chain verifies" privca_cli audit verify
report_instance_errors
echo "pg-restart: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
