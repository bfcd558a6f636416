#!/usr/bin/env bash
# Dependency outages against a real `privca serve`, on SQLite or (INTEROP_PG_URL) PostgreSQL:
#   PostgreSQL: the cluster stopped (`pg_ctlcluster 15 main stop`) while an EST client enrolls,
#     then started again; then every ledger connection terminated (`pg_terminate_backend`).
#   SQLite: the ledger on a 16 MiB tmpfs, filled to the last byte, then freed.
#   HSM (both): the SoftHSM2 token directory moved away, then back.
# While the ledger is down: /healthz answers 503 naming it; EST 503 + Retry-After (curl); ACME
# serverInternal 503 + Retry-After (an independent client, acme_account.py); SCEP a signed
# CertRep FAILURE (scep_client.py); OCSP tryLater (openssl ocsp); the CRL is the last good one,
# byte for byte; each answer within seconds. While the HSM is down: /healthz names it; SCEP
# answers HTTP 503 (no CertRep can be signed); the CRL is still served. (HTTPS handshakes fail
# then: privca's TLS key is in the HSM.) Once the dependency is back, the same process (never
# restarted) serves again within seconds; afterwards every certificate a client received is in
# the ledger, no reservation is left open, and SQLite's integrity check passes.
# Stopping the shared PostgreSQL cluster is done holding `flock /tmp/privca-pg.lock` (set
# PRIVCA_PG_LOCK_HELD=1 when the caller already holds it), for a few seconds, and a trap always
# starts it again. Needs root (mount, pg_ctlcluster).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
HERE="$ROOT/interop/outage"
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
fresh_data_dir
if [ "$CONFIG" = "$ROOT/conf/privca.dev.toml" ]; then
  sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$CONFIG" >"$DATA/privca.toml"
  CONFIG="$DATA/privca.toml"
fi
# Requests end after 5 s, so a reservation an outage interrupted is aborted 10 s later.
sed -i 's/^request_timeout = .*/request_timeout = "5s"/' "$CONFIG"
MOUNTED=""
PG_STOPPED=""
LOAD_PID=""
if [ -z "$DB_URL" ]; then
  mkdir -p "$DATA/ledger"
  mount -t tmpfs -o size=16m tmpfs "$DATA/ledger" && MOUNTED="$DATA/ledger"
  sed -i 's#^url = "sqlite://privca.db"#url = "sqlite://ledger/privca.db"#' "$CONFIG"
  sql() { sqlite3 "$DATA/ledger/privca.db" "$1"; }
fi
pg_start() { (exec 9>&-; pg_ctlcluster 15 main start) >/dev/null 2>&1; pg_isready -h 127.0.0.1 -p 5432 -t 30 >/dev/null; }
outage_cleanup() {
  [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
  if [ -n "$PG_STOPPED" ]; then pg_start; fi
  [ -d "$DATA/token-away" ] && mv "$DATA/token-away" "$TOKEN_DIR"
  stop_privca
  [ -n "$MOUNTED" ] && umount "$MOUNTED"
  cleanup
}
trap outage_cleanup EXIT

privca_cli init >/dev/null 2>&1 || { fail "privca init"; finish; exit 1; }
PW=$(privca_cli est user add outage1 --label default | tail -n 1)
for i in 1 2 3; do privca_cli scep challenge new --profile device | tail -n 1 >"$DATA/scep-challenge-$i"; done
TOKEN_DIR=$(find "$DATA/tokens" -mindepth 1 -maxdepth 1 -type d | head -n 1)
start_privca || { fail "privca serve started"; finish; exit 1; }
PID=$SERVE_PID
W="$DATA/w"
mkdir -p "$W/received"
curl -sf http://127.0.0.1:8080/ca/ec.pem -o "$W/ec.pem"

# health: "<code> <body on one line>" of /healthz on the plain HTTP listener.
health() { printf '%s %s' "$(curl -s -o "$W/h.txt" -w '%{http_code}' --max-time 10 http://127.0.0.1:8080/healthz)" "$(tr '\n' ' ' <"$W/h.txt")"; }
# est NAME: one /simpleenroll; "<code> <Retry-After> <seconds>"; the certificate in $W/NAME.pem.
est() {
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$1.outage.test" \
    -addext "subjectAltName=DNS:$1.outage.test" -keyout /dev/null -outform DER -out "$W/$1.der" 2>/dev/null
  local out
  out=$(base64 "$W/$1.der" | curl -sS --cacert "$DATA/root.pem" --max-time 20 -D "$W/$1.hdr" -o "$W/$1.p7" \
    -w '%{http_code} %{time_total}' -u "outage1:$PW" -H 'Content-Type: application/pkcs10' --data-binary @- \
    https://127.0.0.1:8443/.well-known/est/simpleenroll 2>/dev/null)
  local ra
  ra=$(tr -d '\r' <"$W/$1.hdr" 2>/dev/null | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
  if [ "${out%% *}" = 200 ]; then
    tr -d '\r' <"$W/$1.p7" | base64 -d 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out "$W/$1.pem" 2>/dev/null
  fi
  echo "${out%% *} ${ra:--} ${out##* }"
}
# est_load: enrolls one name after another, keeping every certificate received.
est_load() {
  local n=0
  while :; do
    n=$((n + 1))
    r=$(est "load$n")
    [ "${r%% *}" = 200 ] && mv "$W/load$n.pem" "$W/received/"
    rm -f "$W/load$n".*
    sleep 0.1
  done
}
acme() { "$PY" "$HERE/acme_account.py" "$DATA/root.pem" 2>&1 | tail -n 1; }
# scep N: a PKCSReq with the Nth one-time challenge; prints the client's status line, exit 0/2.
scep() {
  "$PY" "$ROOT/interop/scep/scep_client.py" enroll http://127.0.0.1:8080/scep --cn "scep$1.outage.test" \
    --san "scep$1.outage.test" --challenge "$(cat "$DATA/scep-challenge-$1")" --dir "$W/scep$1" 2>&1 | tail -n 1
}
crl() { curl -s -o "$W/$1.crl" -w '%{http_code}' --max-time 10 http://127.0.0.1:8080/crl/ec.crl; }
ocsp() { openssl ocsp -issuer "$W/ec.pem" -cert "$W/first.pem" -url http://127.0.0.1:8080/ocsp -CAfile "$DATA/root.pem" -timeout 10 2>&1; }
# wait_up SECONDS: /healthz answers 200 within SECONDS; prints how long it took.
wait_up() {
  local i
  for i in $(seq 1 $(($1 * 5))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:8080/healthz)" = 200 ] && { echo "$((i / 5)).$((i % 5 * 2))"; return 0; }
    sleep 0.2
  done
  return 1
}
no_open_reservations() { # waits for interrupted reservations to be aborted (10 s after the request)
  local i
  for i in $(seq 1 40); do
    [ "$(sql "SELECT COUNT(*) FROM reservations WHERE state = 'reserved'")" = 0 ] && return 0
    sleep 1
  done
  return 1
}
all_received_in_ledger() {
  local f fp missing=0
  for f in "$W"/received/*.pem "$W"/*.pem; do
    [ -e "$f" ] || continue
    [ "$(basename "$f")" = ec.pem ] && continue
    fp=$(openssl x509 -in "$f" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
    [ "$(sql "SELECT COUNT(*) FROM certificates WHERE fingerprint_sha256 = '$fp'")" = 1 ] || missing=$((missing + 1))
  done
  echo "$(ls "$W"/received | wc -l) received by the load client, $missing missing from the ledger"
  [ "$missing" = 0 ]
}

echo "# before: everything up"
h=$(health)
check "healthz 200 naming both dependencies ok ($h)" bash -c "[[ '$h' == '200 ok ledger: ok hsm: ok '* ]]"
r=$(est first)
check "EST enroll ($r)" test "${r%% *}" = 200
check "OCSP: the certificate is good" bash -c "openssl ocsp -issuer '$W/ec.pem' -cert '$W/first.pem' -url http://127.0.0.1:8080/ocsp -CAfile '$DATA/root.pem' 2>&1 | grep -q ': good'"
for _ in $(seq 1 50); do c=$(crl good); [ "$c" = 200 ] && break; sleep 0.2; done
check "CRL fetched ($c)" test "$c" = 200
r=$(acme)
check "ACME newAccount ($r)" test "${r%% *}" = 201

if [ -n "$DB_URL" ]; then
  echo "# PostgreSQL stopped while an EST client enrolls"
  est_load &
  LOAD_PID=$!
  sleep 2
  if [ "${PRIVCA_PG_LOCK_HELD:-}" != 1 ]; then exec 9>/tmp/privca-pg.lock; flock -w 900 9; fi
  PG_STOPPED=1
  pg_ctlcluster 15 main stop -m fast
  h=$(health)
  check "healthz 503 naming the ledger ($h)" bash -c "[[ '$h' == '503 unavailable: ledger ledger: down hsm: ok '* ]]"
  r=$(est down1)
  check "EST: 503 + Retry-After, fast ($r)" bash -c "[ '$(cut -d' ' -f1-2 <<<"$r")' = '503 5' ] && awk 'BEGIN{exit !($(cut -d' ' -f3 <<<"$r") < 5)}'"
  r=$(acme)
  check "ACME newAccount: serverInternal 503 + Retry-After, fast ($r)" bash -c "[ '$(cut -d' ' -f1-3 <<<"$r")' = '503 serverInternal 5' ] && awk 'BEGIN{exit !($(cut -d' ' -f4 <<<"$r") < 5)}'"
  r=$(scep 1)
  check "SCEP PKCSReq: a signed CertRep FAILURE ($r)" grep -q '^status=FAILURE' <<<"$r"
  check "CRL: the last good one, byte for byte" bash -c "[ \"\$(curl -s -o '$W/down.crl' -w '%{http_code}' http://127.0.0.1:8080/crl/ec.crl)\" = 200 ] && cmp -s '$W/good.crl' '$W/down.crl'"
  o=$(ocsp | tr '\n' ' ')
  check "OCSP: tryLater or a stored good response ($o)" bash -c "grep -Eq 'Responder Error: trylater|: good' <<<'$o'"
  sleep 1
  pg_start
  PG_STOPPED=""
  [ "${PRIVCA_PG_LOCK_HELD:-}" != 1 ] && exec 9>&-
  t=$(wait_up 30)
  check "healthz 200 again ${t}s after PostgreSQL came back, same process" bash -c "[ -n '$t' ] && kill -0 $PID"
  sleep 2
  r=$(est after1)
  check "EST enroll after the outage ($r)" test "${r%% *}" = 200
  kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null; LOAD_PID=""

  echo "# every ledger connection terminated by the server"
  killed=$(sql "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()) k")
  codes=""
  for i in 1 2 3 4; do r=$(est term$i); codes+="${r%% *} "; done
  check "after $killed terminated connections: at most one EST failure, then 200s ($codes)" bash -c "[[ '$codes' =~ ^(200|503)\ 200\ 200\ 200\ $ ]]"
  h=$(health)
  check "healthz 200 ($h)" bash -c "[[ '$h' == 200* ]]"
else
  echo "# SQLite: the ledger's file system full"
  dd if=/dev/zero of="$DATA/ledger/fill" bs=64k >/dev/null 2>&1
  h=$(health)
  check "healthz 503 naming the ledger's full disk ($h)" bash -c "[[ '$h' == '503 unavailable: ledger ledger: disk full hsm: ok '* ]]"
  r=$(est full1)
  check "EST: 503 + Retry-After, fast ($r)" bash -c "[ '$(cut -d' ' -f1-2 <<<"$r")' = '503 5' ] && awk 'BEGIN{exit !($(cut -d' ' -f3 <<<"$r") < 5)}'"
  r=$(acme)
  check "ACME newAccount: serverInternal 503 + Retry-After ($r)" bash -c "[ '$(cut -d' ' -f1-3 <<<"$r")' = '503 serverInternal 5' ]"
  r=$(scep 1)
  check "SCEP PKCSReq: a signed CertRep FAILURE ($r)" grep -q '^status=FAILURE' <<<"$r"
  c=$(crl full)
  check "CRL still served ($c)" test "$c" = 200
  rm -f "$DATA/ledger/fill"
  t=$(wait_up 15)
  check "healthz 200 again ${t}s after space was freed, same process" bash -c "[ -n '$t' ] && kill -0 $PID"
  r=$(est after1)
  check "EST enroll after the outage ($r)" test "${r%% *}" = 200
  check "SQLite integrity_check ok" test "$(sqlite3 "$DATA/ledger/privca.db" 'PRAGMA integrity_check')" = ok
fi

echo "# HSM: the SoftHSM2 token directory moved away"
mv "$TOKEN_DIR" "$DATA/token-away"
sleep 1.2
h=$(health)
check "healthz 503 naming the HSM ($h)" bash -c "[[ '$h' == '503 unavailable: hsm ledger: ok hsm: down '* ]]"
r=$(scep 2)
check "SCEP PKCSReq: HTTP 503 (no CertRep can be signed) ($r)" grep -q 'HTTP 503' <<<"$r"
c=$(crl hsm)
check "CRL still served ($c)" test "$c" = 200
mv "$DATA/token-away" "$TOKEN_DIR"
t=$(wait_up 20)
check "healthz 200 again ${t}s after the token came back, same process" bash -c "[ -n '$t' ] && kill -0 $PID"
r=$(est after2)
check "EST enroll after the HSM outage ($r)" test "${r%% *}" = 200
r=$(scep 3)
check "SCEP enroll after the HSM outage ($r)" grep -q '^status=SUCCESS' <<<"$r"

echo "# afterwards"
check "no reservation left open" no_open_reservations
check "every certificate a client received is in the ledger ($(all_received_in_ledger))" all_received_in_ledger
check "privca was never restarted (pid $PID still serving)" kill -0 "$PID"
finish
