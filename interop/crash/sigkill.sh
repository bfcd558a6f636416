#!/usr/bin/env bash
# Crash consistency: `privca serve` killed with SIGKILL at random moments (CRASH_KILLS, default
# 20) while the ACME load generator and an EST client enroll and the CLI revokes, restarted each
# time; on SQLite or (INTEROP_PG_URL) PostgreSQL. Then, after one clean start: every certificate
# a client received is in the ledger with its audit row; every committed reservation has its
# certificate and every certificate its committed reservation; no reservation is left
# `reserved` (interrupted ones are aborted); cRLNumbers never went backwards; every revocation
# is on the next complete CRL; the audit chain verifies.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$ROOT/interop/acme/lib-acme.sh"
ACME_LOAD_BIN="${ACME_LOAD_BIN:-$CARGO_TARGET_DIR/debug/acme-load}"
[ -x "$ACME_LOAD_BIN" ] || (cd "$ROOT" && cargo build -q -p privca-load --bin acme-load)
KILLS="${CRASH_KILLS:-20}"
fresh_data_dir
if [ "$CONFIG" = "$ROOT/conf/privca.dev.toml" ]; then
  sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$CONFIG" >"$DATA/privca.toml"
  CONFIG="$DATA/privca.toml"
fi
# Requests end after 5 s, so a reservation interrupted by a kill counts as such after 10 s.
sed -i 's/^request_timeout = .*/request_timeout = "5s"/' "$CONFIG"
privca_cli init >/dev/null
PW=$(privca_cli est user add crash1 --label default | tail -n 1)
W="$DATA/received"
mkdir -p "$W"
start_challtestsrv

LOAD_PIDS=()
stop_load() {
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  LOAD_PIDS=()
}
crash_cleanup() {
  stop_load
  acme_cleanup
}
trap crash_cleanup EXIT

# est_client: enrolls one new name after another; every certificate received is kept.
est_client() {
  local n=0
  while :; do
    n=$((n + 1))
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=e$n.crash.test" \
      -addext "subjectAltName=DNS:e$n.crash.test" -keyout /dev/null -outform DER -out "$W/e$n.der" 2>/dev/null
    code=$(base64 "$W/e$n.der" | curl -sS --cacert "$DATA/root.pem" --max-time 10 -o "$W/e$n.p7" -w '%{http_code}' \
      -u "crash1:$PW" -H 'Content-Type: application/pkcs10' --data-binary @- \
      https://127.0.0.1:8443/.well-known/est/simpleenroll 2>/dev/null)
    if [ "$code" = 200 ]; then
      tr -d '\r' <"$W/e$n.p7" | base64 -d 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out "$W/e$n.pem" 2>/dev/null
    fi
    rm -f "$W/e$n.der" "$W/e$n.p7"
    sleep 0.05
  done
}
# revoker: revokes a valid certificate of issuer ec every two seconds through the CLI.
revoker() {
  while :; do
    sleep 2
    s=$(sql "SELECT serial FROM certificates WHERE status = 'valid' AND issuer_id = 'ec' AND sans LIKE '%crash.test%' ORDER BY serial LIMIT 1" 2>/dev/null)
    [ -n "$s" ] && privca_cli revoke --serial "$s" --reason keyCompromise >/dev/null 2>&1
  done
}
crl_top() { sql "SELECT COALESCE(MAX(crl_number), 0) FROM crls WHERE issuer_id = 'ec' AND state = 'published'"; }

start_privca || exit 1
est_client &
LOAD_PIDS+=($!)
revoker &
LOAD_PIDS+=($!)
"$ACME_LOAD_BIN" --directory https://127.0.0.1:8443/acme/directory --root "$DATA/root.pem" --concurrency 4 \
  --seconds 100000 --order-timeout 10 --domain-suffix acme.crash.test --label crash >"$DATA/acme-load.out" 2>&1 &
LOAD_PIDS+=($!)

backwards=0
last_crl=$(crl_top)
killed=0
for i in $(seq 1 "$KILLS"); do
  sleep "$(python3 -c 'import random; print(round(random.uniform(0.3, 2.5), 2))')"
  kill -KILL "$SERVE_PID" 2>/dev/null && killed=$((killed + 1))
  wait "$SERVE_PID" 2>/dev/null
  SERVE_PID=""
  start_privca || { fail "privca restarts after kill $i"; break; }
  top=$(crl_top)
  [ "$top" -lt "$last_crl" ] && backwards=$((backwards + 1))
  last_crl=$top
done
stop_load
stop_privca
echo "# $killed kills under load"
received=$(ls "$W"/*.pem 2>/dev/null | wc -l)
echo "  EST certificates received: $received; ACME orders issued: $(sql "SELECT COUNT(*) FROM certificates WHERE sans LIKE '%acme.crash.test%'")"
check "killed $KILLS times, restarted each time" test "$killed" = "$KILLS"
check "  clients received certificates meanwhile ($received over EST)" test "$received" -gt 0

echo "# after one clean start"
start_privca || exit 1
sleep 11 # interrupted reservations are those older than twice the request timeout
for _ in $(seq 1 20); do [ "$(sql "SELECT COUNT(*) FROM reservations WHERE state = 'reserved'")" = 0 ] && break; sleep 1; done
missing=0
unaudited=0
for pem in "$W"/*.pem; do
  [ -s "$pem" ] || continue
  s=$(openssl x509 -in "$pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
  [ "$(sql "SELECT COUNT(*) FROM certificates WHERE ltrim(serial, '0') = ltrim('$s', '0')")" = 1 ] || missing=$((missing + 1))
  [ "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'committed' AND ltrim(serial, '0') = ltrim('$s', '0')")" -ge 1 ] ||
    unaudited=$((unaudited + 1))
done
check "every certificate a client received is in the ledger ($missing missing)" test "$missing" = 0
check "  each with its audit row ($unaudited without)" test "$unaudited" = 0
# CA certificates are kept in ca_certificates.
orphans=$(sql "SELECT serial || ' ' || profile || ' ' || requester FROM reservations r WHERE state = 'committed' AND profile NOT IN ('ca-root', 'ca-intermediate') AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = r.serial)")
check "every committed reservation has its certificate${orphans:+ (not: $orphans)}" test -z "$orphans"
check "every certificate has its committed reservation" \
  test "$(sql "SELECT COUNT(*) FROM certificates c JOIN reservations r ON r.serial = c.serial WHERE r.state <> 'committed'")" = 0
check "no reservation left reserved (interrupted ones aborted: $(sql "SELECT COUNT(*) FROM reservations WHERE failure = 'interrupted before commit'"))" \
  test "$(sql "SELECT COUNT(*) FROM reservations WHERE state = 'reserved'")" = 0
check "no CRL left reserved" test "$(sql "SELECT COUNT(*) FROM crls WHERE state = 'reserved'")" = 0
check "cRLNumbers never went backwards across restarts" test "$backwards" = 0
revoked=$(sql "SELECT serial FROM certificates WHERE status = 'revoked' AND issuer_id = 'ec'")
on_crl() {
  local text
  text=$(curl -sf http://127.0.0.1:8080/crl/ec.crl | openssl crl -inform DER -noout -text 2>/dev/null | tr -d ' :' | tr 'a-f' 'A-F')
  for s in $revoked; do
    echo "$text" | grep -qiE "^SERIALNUMBER0*$(echo "$s" | sed 's/^0*//')$" || return 1
  done
}
listed=1
for _ in $(seq 1 30); do on_crl && { listed=0; break; }; sleep 1; done
check "every revocation ($(echo "$revoked" | wc -w)) is on the next complete CRL" test "$listed" = 0
stop_privca
privca_cli audit seal >/dev/null 2>&1
check "audit chain verifies" privca_cli audit verify
echo "crash: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
