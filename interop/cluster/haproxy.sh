#!/usr/bin/env bash
# Three privca instances on one PostgreSQL and one SoftHSM2 token, behind HAProxy (TCP mode,
# round robin per connection) on the dev ports: the ACME load generator's full flows spread over
# the three; one holder per background job; a CLI revocation reaches the CRL; the instance
# holding CRL publication killed with SIGKILL hands the job to another within
# `database.job_lease`, and the next revocation is on the next CRL; every cRLNumber is one CRL,
# no serial twice, and the audit chain verifies.
# Needs PostgreSQL (INTEROP_PG_URL, else PRIVCA_TEST_PG_URL); skipped without one outside CI.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$ROOT/interop/acme/lib-acme.sh"
INTEROP_PG_URL="${INTEROP_PG_URL:-${PRIVCA_TEST_PG_URL:-}}"
if [ -z "$INTEROP_PG_URL" ]; then
  [ "${CI:-}" = true ] && { echo "CI=true but no PostgreSQL URL" >&2; exit 1; }
  echo "cluster: no PostgreSQL (INTEROP_PG_URL): skipped"
  exit 0
fi
export INTEROP_PG_URL
ACME_LOAD_BIN="${ACME_LOAD_BIN:-$CARGO_TARGET_DIR/debug/acme-load}"
[ -x "$ACME_LOAD_BIN" ] || (cd "$ROOT" && cargo build -q -p privca-load --bin acme-load)
LEASE=6
fresh_data_dir
sed -i -e "s/^max_connections = .*/max_connections = 6\njob_lease = \"${LEASE}s\"/" "$CONFIG"
privca_cli init >/dev/null

PIDS=(0 0 0 0)
# start_instance N: instance N (1–3) on ports 1844N (HTTPS), 1808N (HTTP), 1944N (admin), with
# the shared data directory (token, TLS files) and ledger; the URLs name the load balancer.
start_instance() {
  local n=$1 cfg="$DATA/instance$1.toml"
  sed -e "s/^https_listen = .*/https_listen = \"127.0.0.1:1844$n\"/" \
    -e "s/^http_listen = .*/http_listen = \"127.0.0.1:1808$n\"/" \
    -e "s/^admin_listen = .*/admin_listen = \"127.0.0.1:1944$n\"/" "$CONFIG" >"$cfg"
  "$PRIVCA_BIN" --config "$cfg" --data-dir "$DATA" serve >"$DATA/instance$n.log" 2>&1 &
  PIDS[$n]=$!
  for _ in $(seq 1 120); do
    curl -skf "https://127.0.0.1:1844$n/healthz" >/dev/null 2>&1 && return 0
    kill -0 "${PIDS[$n]}" 2>/dev/null || break
    sleep 0.5
  done
  echo "instance $n did not come up:" >&2
  tail -n 30 "$DATA/instance$n.log" >&2
  return 1
}
HAPROXY_PID=""
cluster_cleanup() {
  [ -n "${CLUSTER_LOGS:-}" ] && mkdir -p "$CLUSTER_LOGS" && cp "$DATA"/*.log "$CLUSTER_LOGS/" 2>/dev/null
  [ -n "$HAPROXY_PID" ] && kill "$HAPROXY_PID" 2>/dev/null
  for n in 1 2 3; do
    [ "${PIDS[$n]}" != 0 ] && kill -TERM "${PIDS[$n]}" 2>/dev/null
  done
  for n in 1 2 3; do
    [ "${PIDS[$n]}" != 0 ] && wait "${PIDS[$n]}" 2>/dev/null
  done
  acme_cleanup
}
trap cluster_cleanup EXIT

cat >"$DATA/haproxy.cfg" <<EOF
global
  maxconn 1000
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  default-server inter 500ms fall 2 rise 2
frontend https
  bind 127.0.0.1:8443
  default_backend https
backend https
  balance roundrobin
  server p1 127.0.0.1:18441 check
  server p2 127.0.0.1:18442 check
  server p3 127.0.0.1:18443 check
frontend http
  bind 127.0.0.1:8080
  default_backend http
backend http
  balance roundrobin
  server p1 127.0.0.1:18081 check
  server p2 127.0.0.1:18082 check
  server p3 127.0.0.1:18083 check
EOF
for n in 1 2 3; do start_instance "$n"; done
haproxy -f "$DATA/haproxy.cfg" -db >"$DATA/haproxy.log" 2>&1 &
HAPROXY_PID=$!
start_challtestsrv
for _ in $(seq 1 50); do curl -skf https://127.0.0.1:8443/healthz >/dev/null 2>&1 && break; sleep 0.2; done

# holder_of JOB: the live holder of JOB's lease (host/pid/random); pid_of_holder JOB: its pid.
holder_of() { sql "SELECT holder FROM job_leases WHERE job = '$1' AND expires_at > $(date +%s)"; }
pid_of_holder() { local h; h=$(holder_of "$1"); echo "${h#*/}" | cut -d/ -f1; }

echo "# the three instances behind HAProxy"
answered=0
for _ in $(seq 1 6); do curl -skf -o /dev/null https://127.0.0.1:8443/healthz && answered=$((answered + 1)); done
check "the load balancer answers ($answered of 6 health checks, round robin over the three)" test "$answered" = 6
jobs_held=$(sql "SELECT COUNT(DISTINCT job) FROM job_leases WHERE expires_at > $(date +%s)")
check "each background job has one live lease ($jobs_held jobs)" test "$jobs_held" -ge 8
holders=$(sql "SELECT COUNT(*) FROM job_leases WHERE expires_at > $(date +%s)")
check "  one holder per job" test "$holders" = "$jobs_held"

echo "# ACME full flows spread over the three instances"
out=$("$ACME_LOAD_BIN" --directory https://127.0.0.1:8443/acme/directory --root "$DATA/root.pem" --concurrency 6 \
  --seconds "${CLUSTER_SECONDS:-8}" --order-timeout 30 --label cluster 2>"$DATA/load.err" || true)
echo "  $out"
ok_orders=$(echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["ok"] if r["failed"] == 0 else 0)' 2>/dev/null || echo 0)
check "every order completed (${ok_orders} orders, none failed)" test "$ok_orders" -gt 0
check "  no serial twice" test "$(sql "SELECT COUNT(*) FROM (SELECT serial FROM certificates GROUP BY serial HAVING COUNT(*) > 1) d")" = 0

echo "# CRL publication runs on one instance and moves when it dies"
crl_number() { sql "SELECT COALESCE(MAX(crl_number), 0) FROM crls WHERE issuer_id = 'ec' AND kind = 'full' AND state = 'published'"; }
listed_on_crl() { # listed_on_crl SERIAL: on the complete CRL of ec served through the balancer
  local s
  s=$(echo "$1" | sed 's/^0*//')
  curl -sf http://127.0.0.1:8080/crl/ec.crl | openssl crl -inform DER -noout -text 2>/dev/null | tr -d ' :' |
    grep -qiE "^serialnumber0*${s}$"
}
wait_listed() { for _ in $(seq 1 "$2"); do listed_on_crl "$1" && return 0; sleep 1; done; return 1; }
one=$(sql "SELECT serial FROM certificates WHERE status = 'valid' AND issuer_id = 'ec' AND sans LIKE '%load.bench.test%' ORDER BY serial LIMIT 1")
two=$(sql "SELECT serial FROM certificates WHERE status = 'valid' AND issuer_id = 'ec' AND sans LIKE '%load.bench.test%' ORDER BY serial LIMIT 1 OFFSET 1")
fulls() { sql "SELECT COUNT(*) FROM crls WHERE issuer_id = 'ec' AND kind = 'full'"; }
before=$(fulls)
privca_cli revoke --serial "$one" --reason keyCompromise >/dev/null
check "a revocation is on the next complete CRL, whichever instance serves it" wait_listed "$one" 30
sleep 3
made=$(($(fulls) - before))
check "  made by one publisher: $made complete CRL(s) for it (three publishers would make three)" test "$made" -ge 1 -a "$made" -le 2
victim=$(pid_of_holder crl-publish)
victim_n=0
for n in 1 2 3; do [ "${PIDS[$n]}" = "$victim" ] && victim_n=$n; done
check "the CRL publisher is one of the three instances" test "$victim_n" != 0
if [ "$victim_n" != 0 ]; then
  kill -KILL "$victim"
  wait "$victim" 2>/dev/null || true
  PIDS[$victim_n]=0
  killed_at=$(date +%s)
  moved=""
  for _ in $(seq 1 $((LEASE * 4))); do
    h=$(pid_of_holder crl-publish)
    if [ -n "$h" ] && [ "$h" != "$victim" ]; then moved=$(($(date +%s) - killed_at)); break; fi
    sleep 0.5
  done
  check "  killed with SIGKILL: another instance holds the job within the lease (${moved:-never} s, lease ${LEASE} s)" \
    test -n "$moved" -a "${moved:-99}" -le $((LEASE + 3))
  privca_cli revoke --serial "$two" --reason superseded >/dev/null
  check "  the next revocation is on the next CRL" wait_listed "$two" 30
  check "  ACME still answers through the two left" curl -skf https://127.0.0.1:8443/acme/directory
fi
check "every CRL reserved was published or aborted" test "$(sql "SELECT COUNT(*) FROM crls WHERE state = 'reserved'")" = 0
check "every reservation committed or aborted" test "$(sql "SELECT COUNT(*) FROM reservations WHERE state = 'reserved'")" = 0
privca_cli audit seal >/dev/null 2>&1 || true
check "audit chain verifies" privca_cli audit verify
for n in 1 2 3; do
  if grep -qE '"level":"ERROR"| ERROR ' "$DATA/instance$n.log"; then
    echo "privca warnings (instance $n):"
    grep -E '"level":"ERROR"| ERROR ' "$DATA/instance$n.log" | tail -n 5
  fi
done
echo "cluster: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
