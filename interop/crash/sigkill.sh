#!/usr/bin/env bash
# Crash consistency: `privca serve` killed with SIGKILL (CRASH_KILLS, default 20) while the ACME
# load generator, an EST client and a SCEP client (scep_load.py: PKCSReq under a static
# challenge, each transaction sent again with its transactionID until it gets a CertRep) enroll
# and the CLI revokes, restarted each time; on SQLite or (INTEROP_PG_URL) PostgreSQL. A quarter
# of the kills come at random moments; the others each wait for a background job to start (its
# debug log line: CRL generation, an audit seal pass, an OCSP pre-signing sweep) and kill right
# after it (kill_on.py). A kill counts for a job when the log shows the job started and not
# finished; the run fails unless each job was hit at least once. After a kill during sealing the
# audit chain verifies (before the restart); after one during pre-signing every certificate
# gets a right OCSP answer; cRLNumbers never go backwards across restarts. Then, after one clean
# start and the SCEP client finishing its open transactions: every certificate a client received
# is in the ledger with its audit row; every SCEP transaction has exactly the certificate its
# client holds (none has two), and the transactions sent again after a restart got the same one;
# committed reservations and certificates match one to one; no reservation or CRL is left
# `reserved` (interrupted ones are aborted); every revocation is on the next complete CRL; every
# certificate gets a right OCSP answer; the audit chain verifies.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$ROOT/interop/acme/lib-acme.sh"
HERE="$ROOT/interop/crash"
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
ACME_LOAD_BIN="${ACME_LOAD_BIN:-$CARGO_TARGET_DIR/debug/acme-load}"
[ -x "$ACME_LOAD_BIN" ] || (cd "$ROOT" && cargo build -q -p privca-load --bin acme-load)
KILLS="${CRASH_KILLS:-20}"
fresh_data_dir
if [ "$CONFIG" = "$ROOT/conf/privca.dev.toml" ]; then
  sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$CONFIG" >"$DATA/privca.toml"
  CONFIG="$DATA/privca.toml"
fi
# Requests end after 5 s, so a reservation interrupted by a kill counts as such after 10 s.
# Background work all the time: a seal pass every second, a complete CRL 2 s after a revocation
# (and a delta within 1 s), every OCSP response re-signed 10 s after it was signed (100 a second).
sed -i -e 's/^request_timeout = .*/request_timeout = "5s"/' -e 's/^seal_interval = .*/seal_interval = "1s"/' \
  -e 's/^full_after_revocation = .*/full_after_revocation = "2s"/' -e 's/^refresh_before = .*/refresh_before = "3590s"/' \
  -e 's/^presign_per_second = .*/presign_per_second = 100/' "$CONFIG"
export PRIVCA_SCEP_LAB_CHALLENGE=crash-static-challenge
privca_cli init >/dev/null
PW=$(privca_cli est user add crash1 --label default | tail -n 1)
W="$DATA/received"
mkdir -p "$W" "$DATA/scep"
start_challtestsrv

# The jobs' start and end lines (debug level for their modules); a kill landed during a job
# when the log's last start line of that job has no end line after it.
declare -A START=([crl]="CRL generation started" [seal]="audit seal pass started" [ocsp]="OCSP pre-signing started")
declare -A END=([crl]="CRL published|CRL publication failed" [seal]="audit seal pass done|audit sealing failed"
  [ocsp]="OCSP responses pre-signed")
declare -A HITS=([crl]=0 [seal]=0 [ocsp]=0)
declare -A JOB=([crl]="CRL generation" [seal]="audit sealing" [ocsp]="OCSP pre-signing")
serve() {
  [ -s "$DATA/serve.log" ] && cat "$DATA/serve.log" >>"$DATA/serve-all.log"
  RUST_LOG="info,privca::ca::crl=debug,privca::audit=debug,privca::jobs::ocsp_presign=debug" start_privca
}
in_progress() {
  local s e
  s=$(grep -n -F "${START[$1]}" "$DATA/serve.log" | tail -n 1 | cut -d: -f1)
  e=$(grep -n -E "${END[$1]}" "$DATA/serve.log" | tail -n 1 | cut -d: -f1)
  [ -n "$s" ] && [ "$s" -gt "${e:-0}" ]
}

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
# revoker: revokes a valid certificate of issuer ec every two seconds through the CLI; it
# pauses while $DATA/revoker.pause exists (and says so with $DATA/revoker.paused), so that the
# ledger's statuses hold still while OCSP answers are compared with them.
revoker() {
  while :; do
    if [ -e "$DATA/revoker.pause" ]; then
      touch "$DATA/revoker.paused"
      sleep 0.1
      continue
    fi
    rm -f "$DATA/revoker.paused"
    sleep 2
    [ -e "$DATA/revoker.pause" ] && continue
    s=$(sql "SELECT serial FROM certificates WHERE status = 'valid' AND issuer_id = 'ec' AND sans LIKE '%crash.test%' ORDER BY serial LIMIT 1" 2>/dev/null)
    [ -n "$s" ] && privca_cli revoke --serial "$s" --reason keyCompromise >/dev/null 2>&1
  done
}
crl_top() { sql "SELECT COALESCE(MAX(crl_number), 0) FROM crls WHERE issuer_id = 'ec' AND state = 'published'"; }
# ocsp_all: every certificate in the ledger gets a signed OCSP answer with its ledger status
# (the revoker paused meanwhile).
ocsp_all() {
  local rc
  touch "$DATA/revoker.pause"
  for _ in $(seq 1 100); do [ -e "$DATA/revoker.paused" ] && break; sleep 0.1; done
  sql "SELECT serial || ' ' || issuer_id || ' ' || status FROM certificates" |
    "$PY" "$HERE/ocsp_check.py" http://127.0.0.1:8080/ocsp "$DATA" >"$DATA/ocsp-check.out" 2>&1
  rc=$?
  rm -f "$DATA/revoker.pause"
  return $rc
}
# serials [--named] FILE...: the certificates' serials, lowercase hex without leading zeros;
# --named: each followed by the SCEP requester its file name says (scep:lab/<transactionID>).
serials() {
  "$PY" -c 'import os, sys
from cryptography import x509
named = sys.argv[1] == "--named"
for p in sys.argv[1 + named:]:
    with open(p, "rb") as f:
        s = format(x509.load_pem_x509_certificate(f.read()).serial_number, "x")
    print(f"{s} scep:lab/{os.path.basename(p)[:-4]}" if named else s)' "$@"
}

serve || exit 1
est_client &
LOAD_PIDS+=($!)
revoker &
LOAD_PIDS+=($!)
"$ACME_LOAD_BIN" --directory https://127.0.0.1:8443/acme/directory --root "$DATA/root.pem" --concurrency 4 \
  --seconds 100000 --order-timeout 10 --domain-suffix acme.crash.test --label crash >"$DATA/acme-load.out" 2>&1 &
LOAD_PIDS+=($!)
"$PY" "$HERE/scep_load.py" run http://127.0.0.1:8080/scep/lab "$PRIVCA_SCEP_LAB_CHALLENGE" "$DATA/scep" \
  >"$DATA/scep-load.out" 2>&1 &
LOAD_PIDS+=($!)

backwards=0
last_crl=$(crl_top)
killed=0
seal_broken=0
ocsp_wrong=0
# kill_once TARGET: one SIGKILL, at a random moment or right after TARGET's start line (at a
# random moment after all when the job does not start within 15 s), then the checks that
# need privca down, the restart and the checks after it.
kill_once() {
  local target=$1 hit="" k reserved
  if [ "$target" = random ]; then
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.3, 2.5), 2))')"
  else
    "$PY" "$HERE/kill_on.py" "$DATA/serve.log" "$SERVE_PID" 15 "${START[$target]}" >/dev/null
  fi
  kill -KILL "$SERVE_PID" 2>/dev/null
  wait "$SERVE_PID" 2>/dev/null
  SERVE_PID=""
  killed=$((killed + 1))
  for k in crl seal ocsp; do
    if in_progress "$k"; then
      HITS[$k]=$((HITS[$k] + 1))
      hit+=" $k"
    fi
  done
  reserved=$(sql "SELECT COUNT(*) FROM crls WHERE state = 'reserved'")
  printf '  kill %2d (%s): during%s; CRLs reserved: %s\n' "$killed" "$target" "${hit:- no job}" "$reserved"
  if [[ "$hit" == *seal* ]] && ! privca_cli audit verify >"$DATA/verify-$killed.out" 2>&1; then
    seal_broken=$((seal_broken + 1))
    sed 's/^/      /' "$DATA/verify-$killed.out" | head -n 5
  fi
  serve || { SERVE_PID=""; return 1; }
  top=$(crl_top)
  [ "$top" -lt "$last_crl" ] && backwards=$((backwards + 1))
  last_crl=$top
  if [[ "$hit" == *ocsp* ]] && ! ocsp_all; then
    ocsp_wrong=$((ocsp_wrong + 1))
    sed 's/^/      /' "$DATA/ocsp-check.out" | head -n 5
  fi
  return 0
}

echo "# $KILLS kills under load (random, then right after a CRL, a seal pass, an OCSP sweep starts, in turn)"
targets=(random crl seal ocsp)
for i in $(seq 1 "$KILLS"); do
  kill_once "${targets[$(((i - 1) % 4))]}" || { fail "privca restarts after kill $i"; break; }
done
# A job no kill landed in gets up to three more tries.
for k in crl seal ocsp; do
  for _ in 1 2 3; do
    [ -n "$SERVE_PID" ] && [ "${HITS[$k]}" = 0 ] || break
    kill_once "$k" || { fail "privca restarts after an extra kill"; break; }
  done
done
stop_load
stop_privca
echo "# $killed kills: ${HITS[crl]} during CRL generation, ${HITS[seal]} during audit sealing, ${HITS[ocsp]} during OCSP pre-signing"
cat "$DATA/scep-load.out"
received=$(ls "$W"/*.pem 2>/dev/null | wc -l)
scep_tx=$(ls "$DATA/scep/tx/"*.csr 2>/dev/null | wc -l)
echo "  EST certificates received: $received; SCEP transactions: $scep_tx; ACME orders issued: $(sql "SELECT COUNT(*) FROM certificates WHERE sans LIKE '%acme.crash.test%'")"
check "killed at least $KILLS times, restarted each time ($killed)" test "$killed" -ge "$KILLS"
for k in crl seal ocsp; do
  check "  kills during ${JOB[$k]}: ${HITS[$k]}" test "${HITS[$k]}" -gt 0
done
check "  the audit chain verified after every kill during sealing ($seal_broken did not)" test "$seal_broken" = 0
check "  every certificate had a right OCSP answer after every kill during pre-signing ($ocsp_wrong times not)" \
  test "$ocsp_wrong" = 0
check "  cRLNumbers never went backwards across restarts" test "$backwards" = 0
check "  clients received certificates meanwhile ($received over EST, $scep_tx SCEP transactions)" \
  test "$received" -gt 0 -a "$scep_tx" -gt 0

echo "# after one clean start"
serve || exit 1
sleep 11 # interrupted reservations are those older than twice the request timeout
for _ in $(seq 1 20); do
  [ "$(sql "SELECT (SELECT COUNT(*) FROM reservations WHERE state = 'reserved') + (SELECT COUNT(*) FROM crls WHERE state = 'reserved')")" = 0 ] && break
  sleep 1
done
# The SCEP client sends its open transactions again until they are answered.
"$PY" "$HERE/scep_load.py" drain http://127.0.0.1:8080/scep/lab "$PRIVCA_SCEP_LAB_CHALLENGE" "$DATA/scep" \
  >"$DATA/scep-drain.out" 2>&1
cat "$DATA/scep-drain.out"
scep_pems=("$DATA/scep/tx/"*.pem)
[ -e "${scep_pems[0]}" ] || scep_pems=()
serials "$W"/*.pem "${scep_pems[@]}" | sort -u >"$DATA/received.serials"
sql "SELECT ltrim(serial, '0') FROM certificates" | sort -u >"$DATA/ledger.serials"
sql "SELECT DISTINCT ltrim(serial, '0') FROM audit_events WHERE event = 'committed' AND serial IS NOT NULL" | sort -u >"$DATA/audited.serials"
missing=$(comm -23 "$DATA/received.serials" "$DATA/ledger.serials" | wc -l)
unaudited=$(comm -23 "$DATA/received.serials" "$DATA/audited.serials" | wc -l)
check "every certificate a client received ($(wc -l <"$DATA/received.serials")) is in the ledger ($missing missing)" test "$missing" = 0
check "  each with its audit row ($unaudited without)" test "$unaudited" = 0

unanswered=$(grep -o 'unfinished=[0-9]*' "$DATA/scep-drain.out" | cut -d= -f2)
check "every SCEP transaction ($scep_tx) got its certificate in the end (${unanswered:-?} unfinished)" \
  test "${#scep_pems[@]}" = "$scep_tx" -a "${unanswered:-1}" = 0
serials --named "${scep_pems[@]}" | sort >"$DATA/scep.client"
sql "SELECT ltrim(c.serial, '0') || ' ' || r.requester FROM certificates c JOIN reservations r ON r.serial = c.serial WHERE r.requester LIKE 'scep:lab/CRASH%'" |
  sort >"$DATA/scep.ledger"
check "  the ledger's SCEP certificates are exactly the ones the client holds, by transaction" \
  cmp -s "$DATA/scep.client" "$DATA/scep.ledger"
twice=$(sql "SELECT r.requester FROM reservations r JOIN certificates c ON c.serial = r.serial WHERE r.requester LIKE 'scep:%' GROUP BY r.requester HAVING COUNT(*) > 1")
check "  no SCEP transaction has two certificates${twice:+ (has: $twice)}" test -z "$twice"
# Sent again after a kill: unanswered (privca down) or PENDING (the first copy's reservation
# was open until privca aborted it as interrupted), then SUCCESS.
resent_after_kill=$(awk '$2 == "down" || $2 == "pending" { open[$1] = 1 } $2 == "success" && open[$1] { n++ } END { print n + 0 }' "$DATA/scep/events")
after_pending=$(awk '$2 == "pending" { open[$1] = 1 } $2 == "success" && open[$1] { n++ } END { print n + 0 }' "$DATA/scep/events")
same=$(grep -c ' resent-same ' "$DATA/scep/events")
differs=$(grep -c ' resent-differs ' "$DATA/scep/events")
check "  transactions sent again after a kill got their certificate ($resent_after_kill, $after_pending after PENDING); completed ones sent again got the same one ($same, $differs did not)" \
  test "$resent_after_kill" -gt 0 -a "$same" -gt 0 -a "$differs" = 0
failures=$(grep -cE ' (failure|error)( |$)' "$DATA/scep/events")
check "  no SCEP FAILURE or malformed CertRep ($failures)" test "$failures" = 0

# CA certificates are kept in ca_certificates.
orphans=$(sql "SELECT serial || ' ' || profile || ' ' || requester FROM reservations r WHERE state = 'committed' AND profile NOT IN ('ca-root', 'ca-intermediate') AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = r.serial)")
check "every committed reservation has its certificate${orphans:+ (not: $orphans)}" test -z "$orphans"
check "every certificate has its committed reservation" \
  test "$(sql "SELECT COUNT(*) FROM certificates c JOIN reservations r ON r.serial = c.serial WHERE r.state <> 'committed'")" = 0
check "no reservation left reserved (interrupted ones aborted: $(sql "SELECT COUNT(*) FROM reservations WHERE failure = 'interrupted before commit'"))" \
  test "$(sql "SELECT COUNT(*) FROM reservations WHERE state = 'reserved'")" = 0
check "no CRL left reserved (interrupted ones aborted: $(sql "SELECT COUNT(*) FROM crls WHERE state = 'aborted'"))" \
  test "$(sql "SELECT COUNT(*) FROM crls WHERE state = 'reserved'")" = 0
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
ocsp_all
check "every certificate gets a signed OCSP answer with its ledger status ($(head -n 1 "$DATA/ocsp-check.out"))" \
  grep -q ' 0 wrong$' "$DATA/ocsp-check.out"
stop_privca
privca_cli audit seal >/dev/null 2>&1
check "audit chain verifies" privca_cli audit verify
finish
