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
source "$(dirname "$0")/lib-cluster.sh"
ACME_LOAD_BIN="${ACME_LOAD_BIN:-$CARGO_TARGET_DIR/debug/acme-load}"
[ -x "$ACME_LOAD_BIN" ] || (cd "$ROOT" && cargo build -q -p privca-load --bin acme-load)
cluster_data_dir
trap cluster_cleanup EXIT
start_cluster || exit 1
start_challtestsrv

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
victim_n=$(instance_of_pid "$victim")
check "the CRL publisher is one of the three instances" test "$victim_n" != 0
if [ "$victim_n" != 0 ]; then
  kill_instance "$victim_n" KILL
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
report_instance_errors
echo "cluster: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
