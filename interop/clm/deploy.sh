#!/usr/bin/env bash
# Deployment verification after a renewal: privca serve runs (its AIA OCSP URL answers), a
# certificate privca issued is served by `openssl s_server` on a free loopback port and recorded
# by `privca discover --sni`, then renewed (same owner and names). `privca clm verify-deployment`
# must report the old certificate still served (exit 1, a failed row in deployment_checks, one
# `deployment-failed` outbox row for the owner, still one after a second run the same day);
# then, with the new certificate served without its intermediate, an incomplete chain; then,
# with the chain, success (exit 0: served leaf, chain, name and OCSP good), the endpoint row
# now on the new certificate; finally, the new certificate revoked, OCSP answering `revoked`.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
privca_cli init >/dev/null
T=$DATA/deploy
mkdir -p "$T"
SPID=""
stop_server() { if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=""; fi; }
trap 'stop_server; cleanup' EXIT
start_privca
NAME=deploy.example.test
PORT=$(free_port)

# issue KEYNAME: a tls-server certificate for $NAME; KEYNAME.pem (leaf), KEYNAME-above.pem (CAs).
issue() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$NAME" \
    -addext "subjectAltName=DNS:$NAME" -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null
  privca_cli issue --csr "$T/$1.csr" --profile tls-server --out "$T/$1-chain.pem" >/dev/null 2>&1
  openssl x509 -in "$T/$1-chain.pem" -out "$T/$1.pem"
  awk 'n > 0 || /-----END CERTIFICATE-----/ { if (n++ > 0) print }' "$T/$1-chain.pem" >"$T/$1-above.pem"
}
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
fingerprint_of() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f'; }
# serve KEYNAME [s_server args...]: serves that certificate on 127.0.0.1:$PORT.
serve() {
  local name=$1; shift
  stop_server
  openssl s_server -accept "127.0.0.1:$PORT" -key "$T/$name.key" -cert "$T/$name.pem" -quiet "$@" \
    </dev/null >"$T/s_server-$name.log" 2>&1 &
  SPID=$!
  for _ in $(seq 1 50); do
    if timeout 2 openssl s_client -connect "127.0.0.1:$PORT" -servername "$NAME" </dev/null >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "openssl s_server did not come up on :$PORT"
}
verify() { privca_cli clm verify-deployment "$@" >"$T/verify.out" 2>&1; }

issue old
OLD=$(serial_of "$T/old.pem")
serve old -cert_chain "$T/old-above.pem"
privca_cli discover --targets "127.0.0.1:$PORT" --sni "$NAME" >/dev/null 2>&1
check "the endpoint is recorded on the certificate privca issued" \
  test "$(sql "SELECT fingerprint_sha256 FROM endpoints WHERE port = $PORT AND sni = '$NAME'")" = "$(fingerprint_of "$T/old.pem")"
if verify && grep -q "no endpoint of a renewed certificate" "$T/verify.out"; then
  ok "before a renewal there is nothing to verify (exit 0)"
else
  fail "before a renewal there is nothing to verify: $(cat "$T/verify.out")"
fi

# The owner gets an address; the old certificate enters its notice window (customer-facing,
# 90 days), so that the policy run records its successor.
OWNER=$(privca_cli inventory show "$OLD" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificate"]["owner"])')
privca_cli owner add "$OWNER" --email web@example.test >/dev/null
privca_cli inventory set "$OLD" --tier customer-facing >/dev/null
sleep 1.1 # a later notBefore
issue new
NEW=$(serial_of "$T/new.pem")
privca_cli clm run --now >/dev/null 2>&1
check "the policy run records the successor (superseded_by)" \
  test "$(sql "SELECT superseded_by FROM certificates WHERE serial = '$OLD'")" = "$NEW"

# (a) The old certificate still served.
if verify; then fail "(a) verify-deployment exits 0 while the old certificate is served"; else ok "(a) verify-deployment exits 1"; fi
sed 's/^/    /' "$T/verify.out"
check "(a) it names the old certificate still served" grep -q "old certificate still served (serial $OLD)" "$T/verify.out"
check "(a) a failed check is stored with its time" \
  test "$(sql "SELECT COUNT(*) FROM deployment_checks WHERE serial = '$NEW' AND ok = 0 AND predecessor_serial = '$OLD' AND checked_at > 0 AND failures LIKE '%served-leaf%'")" = 1
check "(a) the owner is told (one deployment-failed email queued)" \
  test "$(sql "SELECT COUNT(*) FROM clm_outbox WHERE event = 'deployment-failed' AND recipient = 'web@example.test' AND state IN ('pending', 'sending', 'sent', 'dead')")" = 1
verify || true
check "(a) a second run the same day queues no second notice" \
  test "$(sql "SELECT COUNT(*) FROM clm_outbox WHERE event = 'deployment-failed'")" = 1
check "(a) the notice names the endpoint and the failure" \
  test "$(sql "SELECT COUNT(*) FROM clm_outbox WHERE event = 'deployment-failed' AND subject LIKE '%127.0.0.1:$PORT%' AND body LIKE '%old certificate still served%'")" = 1

# The new certificate without its intermediate.
serve new
if verify; then fail "an incomplete chain passes"; else ok "an incomplete chain fails"; fi
check "it is reported as an incomplete chain" grep -q "chain: incomplete chain" "$T/verify.out"

# (b) The new certificate with its chain: served leaf, chain, name and (c) OCSP good from the
# AIA URL of privca serve.
serve new -cert_chain "$T/new-above.pem"
if verify; then ok "(b) verify-deployment exits 0 once the new certificate is deployed"; else fail "(b) verify-deployment: $(cat "$T/verify.out")"; fi
sed 's/^/    /' "$T/verify.out"
check "(b) the table says ok for the endpoint" grep -Eq "127\.0\.0\.1:$PORT \(sni $NAME\) +$NEW +ok" "$T/verify.out"
check "(b) the passed check is stored with the served fingerprint" \
  test "$(sql "SELECT COUNT(*) FROM deployment_checks WHERE serial = '$NEW' AND ok = 1 AND served_fingerprint = '$(fingerprint_of "$T/new.pem")'")" = 1
check "(b) the endpoint row now holds the new certificate" \
  test "$(sql "SELECT fingerprint_sha256 FROM endpoints WHERE port = $PORT")" = "$(fingerprint_of "$T/new.pem")"
privca_cli clm verify-deployment --serial "$NEW" --json >"$T/verify.json" || true
check "--serial and --json: one passed check" \
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert len(c) == 1 and c[0]["ok"] and c[0]["failures"] == []' "$T/verify.json"

# (c) The new certificate revoked: OCSP says so (the responder re-signs after a revocation).
privca_cli revoke --serial "$NEW" --reason superseded >/dev/null
revoked=1
for _ in $(seq 1 20); do
  if ! verify && grep -q "OCSP answers revoked" "$T/verify.out"; then revoked=0; break; fi
  sleep 0.5
done
if [ "$revoked" = 0 ]; then ok "(c) a revoked successor fails on OCSP (revoked)"; else fail "(c) revoked: $(cat "$T/verify.out")"; fi
check "the audit chain verifies" privca_cli audit verify
finish
