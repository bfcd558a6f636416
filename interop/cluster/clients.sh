#!/usr/bin/env bash
# Real clients against three privca instances behind HAProxy (TCP, round robin per connection)
# on one PostgreSQL and one SoftHSM2 token (lib-cluster.sh):
# - uacme registers and orders; every instance answers the account (and keeps a copy); uacme
#   rolls the key over through the balancer, and each instance, asked directly (account.py),
#   accepts the new key and refuses the old one on its very next request; uacme keeps ordering;
#   a contact change and the deactivation are seen the same way by every instance.
# - certbot and lego each obtain a certificate through the balancer.
# - EST (curl): simpleenroll with HTTP Basic spread over the instances, simplereenroll with the
#   client certificate; the revocation of one is on the next CRL of every instance.
# - SCEP: micromdm scepclient (Debian `scep`) enrolls through the balancer; on an approval
#   profile, PKCSReq PENDING on instance 1, CertPoll PENDING on instance 2, `privca approvals
#   approve`, CertPoll SUCCESS on instance 3 and through the balancer; two copies of one
#   transaction sent to instances 1 and 2 at the same moment (scep_race.py), with a static or a
#   one-time challenge, end with the same certificate (the copy answered PENDING polls), and the
#   ledger has one; another transaction presenting the used one-time challenge is refused.
# - OCSP (validity 90 s, re-signed at 75 s left): while the instance holding the OCSP sweep's
#   lease is killed with SIGKILL and another takes the job over, every certificate's answer
#   through the balancer stays signed, with its ledger status and a nextUpdate in the future,
#   for 40 s after the kill (ocsp_fresh.py); every answer is a pre-signed one (none signed on
#   demand, per /metrics) and every response was re-signed after the kill: the new holder's
#   sweep, not the on-demand fallback, kept them fresh.
# Then: no serial twice, one CRL per cRLNumber, no reservation left open, the audit chain verifies.
# Needs PostgreSQL (INTEROP_PG_URL, else PRIVCA_TEST_PG_URL); skipped without one outside CI.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$ROOT/interop/acme/lib-acme.sh"
source "$(dirname "$0")/lib-cluster.sh"
HERE="$ROOT/interop/cluster"
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
export PRIVCA_SCEP_LAB_CHALLENGE=cluster-static-challenge-7
cluster_data_dir -e 's/^validity = "1h"/validity = "90s"/' -e 's/^refresh_before = "20m"/refresh_before = "75s"/'
# uacme reads no CA variable: the root is trusted system-wide for the run and removed after.
TRUST=/usr/local/share/ca-certificates/privca-cluster-$$.crt
clients_cleanup() {
  rm -f "$TRUST"
  update-ca-certificates --fresh >/dev/null 2>&1
  cluster_cleanup
}
trap clients_cleanup EXIT
cp "$DATA/root.pem" "$TRUST" && update-ca-certificates >/dev/null 2>&1
start_cluster || exit 1
start_challtestsrv || exit 1
PORTS=(18441 18442 18443)

# each_instance OUT WANT: account.py's OUT has a line `PORT WANT…` (WANT: an ERE) for every instance.
each_instance() {
  local p
  for p in "${PORTS[@]}"; do grep -qE "^$p $2" <<<"$1" || return 1; done
}
# ask KEY MODE: account.py on each instance for the account at $KID, signed with KEY; MODE
# orders reads the account without changing it (each instance keeps its copy), MODE account
# sends an empty update and shows the account.
ask() {
  local out
  out=$("$PY" "$HERE/account.py" "$DATA/root.pem" "$1" "$KID" "$ORDERS" "$2" "${PORTS[@]}" 2>&1)
  sed 's/^/      /' <<<"$out" >&2
  echo "$out"
}

echo "# uacme through the balancer; account changes seen by every instance on its next request"
serve_webroot "$DATA/www" || exit 1
uacme_http01_hook "$DATA/hook.sh" "$DATA/www"
U=(uacme -a "$DIR_URL" -c "$DATA/uacme" -y -h "$DATA/hook.sh")
leaf_and_chain() { # uacme writes leaf + chain in cert.pem
  awk -v leaf="$DATA/leaf.pem" -v rest="$DATA/rest.pem" '/BEGIN CERT/ {n++} {print > (n == 1 ? leaf : rest)}' "$1"
}
uacme_verify() { leaf_and_chain "$DATA/uacme/$1/cert.pem" && verify_chain "$DATA/leaf.pem" "$DATA/rest.pem" "$1"; }
check "uacme: register" "${U[@]}" new one@cluster.test
check "uacme: a certificate (http-01)" "${U[@]}" issue u0.cluster.test
check "  chain verifies, SAN exact" uacme_verify u0.cluster.test
KEY="$DATA/uacme/private/key.pem"
found=$("$PY" "$HERE/account.py" "$DATA/root.pem" "$KEY" -)
KID=$(sed -n 's/^kid //p' <<<"$found")
ORDERS=$(sed -n 's/^orders //p' <<<"$found")
check "the account's URL and its orders URL (newAccount onlyReturnExisting)" test -n "$KID" -a -n "$ORDERS"
check "every instance reads the account (POST-as-GET of its orders) and keeps a copy with the key" \
  each_instance "$(ask "$KEY" orders)" "200 ok"
cp "$KEY" "$DATA/old-key.pem"
check "uacme: key rollover (through the balancer)" "${U[@]}" newkey
check "  uacme has a new key" bash -c "! cmp -s '$KEY' '$DATA/old-key.pem'"
check "  every instance accepts the new key on its very next request" each_instance "$(ask "$KEY" orders)" "200 ok"
check "  every instance refuses the old key" each_instance "$(ask "$DATA/old-key.pem" orders)" "40[0-9] urn:ietf:params:acme:error:"
from=$(($(haproxy_lines) + 1))
issued=0
for n in 1 2 3; do "${U[@]}" issue "u$n.cluster.test" >>"$DATA/uacme.log" 2>&1 && uacme_verify "u$n.cluster.test" && issued=$((issued + 1)); done
check "uacme keeps ordering with the new key ($issued of 3 certificates, chains verified)" test "$issued" = 3
spread=$(served_by "$from" | tr '\n' ' ')
check "  its connections went to every instance (HAProxy log: $spread)" test "$spread" = "p1 p2 p3 "
check "every instance reads the account again (copies kept)" each_instance "$(ask "$KEY" orders)" "200 ok"
check "uacme: contact change (through the balancer)" "${U[@]}" update two@cluster.test
check "  every instance shows the new contact on its very next request" \
  each_instance "$(ask "$KEY" account)" "200 valid mailto:two@cluster.test$"
check "every instance reads the account again (copies kept)" each_instance "$(ask "$KEY" orders)" "200 ok"
check "uacme: deactivate the account (through the balancer)" "${U[@]}" deactivate
check "  the ledger says deactivated" test "$(sql "SELECT status FROM acme_accounts WHERE contact LIKE '%two@cluster.test%'")" = deactivated
check "  every instance refuses the account on its very next request" \
  each_instance "$(ask "$KEY" orders)" "40[0-9] urn:ietf:params:acme:error:"
refused=0
for n in 1 2 3; do "${U[@]}" -f issue u1.cluster.test >>"$DATA/uacme.log" 2>&1 || refused=$((refused + 1)); done
check "  uacme's next three orders are refused ($refused of 3)" test "$refused" = 3
stop_webroot

echo "# certbot and lego through the balancer"
export REQUESTS_CA_BUNDLE="$DATA/root.pem" LEGO_CA_CERTIFICATES="$DATA/root.pem"
check "certbot: register and a certificate (http-01, standalone)" \
  certbot --server "$DIR_URL" --config-dir "$DATA/cb" --work-dir "$DATA/cb" --logs-dir "$DATA/cb/logs" -n \
  certonly --agree-tos -m cb@cluster.test --standalone --http-01-address 127.0.0.1 --http-01-port 5002 \
  --cert-name cb -d cb.cluster.test
check "  chain verifies, SAN exact" verify_chain "$DATA/cb/live/cb/cert.pem" "$DATA/cb/live/cb/chain.pem" cb.cluster.test
check "lego: register and a certificate (http-01)" \
  lego --server "$DIR_URL" --path "$DATA/lego" --email lego@cluster.test --accept-tos --key-type ec256 \
  --domains lego.cluster.test --http --http.port 127.0.0.1:5002 run
check "  chain verifies, SAN exact" verify_chain "$DATA/lego/certificates/lego.cluster.test.crt" \
  "$DATA/lego/certificates/lego.cluster.test.issuer.crt" lego.cluster.test

echo "# EST through the balancer"
EST=https://127.0.0.1:8443/.well-known/est
W="$DATA/est"
mkdir -p "$W"
PW=$(privca_cli est user add est1 --label default | tail -n 1)
est_csr() {
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$1" \
    -addext "subjectAltName=DNS:$1" -keyout "$W/$1.key" -outform DER -out "$W/$1.der" 2>/dev/null
  base64 "$W/$1.der" >"$W/$1.b64"
}
p7() { tr -d '\r' <"$1" | base64 -d | openssl pkcs7 -inform DER -print_certs -out "$2" 2>/dev/null; }
curl -s --cacert "$DATA/root.pem" "$EST/cacerts" -o "$W/cacerts.b64"
p7 "$W/cacerts.b64" "$W/cacerts.pem"
est_verify() { openssl verify -CAfile "$DATA/root.pem" -untrusted "$W/cacerts.pem" "$1" 2>&1 | grep -q ': OK$'; }
from=$(($(haproxy_lines) + 1))
enrolled=0
for n in 1 2 3; do
  est_csr "est$n.cluster.test"
  code=$(curl -s --cacert "$DATA/root.pem" -u "est1:$PW" -H 'Content-Type: application/pkcs10' \
    --data-binary @"$W/est$n.cluster.test.b64" -o "$W/est$n.p7" -w '%{http_code}' "$EST/simpleenroll")
  [ "$code" = 200 ] && p7 "$W/est$n.p7" "$W/est$n.pem" && est_verify "$W/est$n.pem" && enrolled=$((enrolled + 1))
done
check "simpleenroll with HTTP Basic, three times ($enrolled of 3 certificates, chains verified)" test "$enrolled" = 3
spread=$(served_by "$from" | tr '\n' ' ')
check "  on every instance (HAProxy log: $spread)" test "$spread" = "p1 p2 p3 "
mv "$W/est1.cluster.test.key" "$W/est1-client.key"
est_csr est1.cluster.test
code=$(curl -s --cacert "$DATA/root.pem" --cert "$W/est1.pem" --key "$W/est1-client.key" \
  -H 'Content-Type: application/pkcs10' --data-binary @"$W/est1.cluster.test.b64" -o "$W/re.p7" -w '%{http_code}' \
  "$EST/simplereenroll")
check "simplereenroll with the client certificate: 200, chain verifies" \
  bash -c "[ $code = 200 ] && tr -d '\r' <'$W/re.p7' | base64 -d | openssl pkcs7 -inform DER -print_certs -out '$W/re.pem' && openssl verify -CAfile '$DATA/root.pem' -untrusted '$W/cacerts.pem' '$W/re.pem'"
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
EST_SERIAL=$(serial "$W/est2.pem")
EST_ISSUER=$(sql "SELECT issuer_id FROM certificates WHERE ltrim(serial, '0') = ltrim('$EST_SERIAL', '0')")
privca_cli revoke --serial "$EST_SERIAL" --reason keyCompromise >/dev/null
# on_crl_of PORT SERIAL: SERIAL is on the complete CRL instance PORT serves.
on_crl_of() {
  curl -sf "http://127.0.0.1:$1/crl/$EST_ISSUER.crl" | openssl crl -inform DER -noout -text 2>/dev/null | tr -d ' :' |
    grep -qiE "^serialnumber0*${2##0}$"
}
listed_everywhere() {
  for _ in $(seq 1 30); do
    on_crl_of 18081 "$1" && on_crl_of 18082 "$1" && on_crl_of 18083 "$1" && return 0
    sleep 1
  done
  return 1
}
check "a revoked EST certificate is on the next CRL of every instance" listed_everywhere "$EST_SERIAL"

echo "# SCEP"
BASE=http://127.0.0.1:8080/scep
S="$DATA/scep"
mkdir -p "$S"
CLIENT=("$PY" "$ROOT/interop/scep/scep_client.py")
challenge() { privca_cli scep challenge new "$@" | tail -n 1; }
scep_verify() { openssl verify -CAfile "$DATA/root.pem" -untrusted "$DATA/$2.pem" "$1" 2>&1 | grep -q ': OK$'; }
CH=$(challenge --profile device-rsa)
mkdir -p "$S/sc"
(cd "$S/sc" && timeout 120 scepclient -server-url "$BASE/rsa" -challenge "$CH" -cn sc.cluster.test \
  -private-key "$S/sc/key.pem" -certificate "$S/sc/cert.pem") >"$S/sc.out" 2>&1
check "scepclient (micromdm, Debian scep) through the balancer: a certificate" test $? = 0
check "  it verifies to the root through the RSA issuing CA" scep_verify "$S/sc/cert.pem" rsa
CH=$(challenge --profile device-gated)
"${CLIENT[@]}" enroll http://127.0.0.1:18081/scep/gated --cn g1.cluster.test --san g1.cluster.test \
  --challenge "$CH" --dir "$S/g1" >"$S/g1.out" 2>&1
check "approval profile: PKCSReq on instance 1 is PENDING" test $? = 3
"${CLIENT[@]}" poll http://127.0.0.1:18082/scep/gated --dir "$S/g1" >"$S/g1-poll1.out" 2>&1
check "  CertPoll on instance 2 before approval: PENDING" test $? = 3
id=$(sql "SELECT id FROM approvals WHERE status = 'pending'")
check "  privca approvals approve $id (CLI)" privca_cli approvals approve "$id"
"${CLIENT[@]}" poll http://127.0.0.1:18083/scep/gated --dir "$S/g1" >"$S/g1-poll2.out" 2>&1
check "  CertPoll on instance 3: SUCCESS" test $? = 0
check "  the certificate verifies" scep_verify "$S/g1/cert.pem" ec
cp "$S/g1/cert.pem" "$S/g1-first.pem"
polled=0
for _ in 1 2 3; do
  "${CLIENT[@]}" poll "$BASE/gated" --dir "$S/g1" >>"$S/g1-poll3.out" 2>&1 && cmp -s "$S/g1/cert.pem" "$S/g1-first.pem" &&
    polled=$((polled + 1))
done
check "  CertPoll three times through the balancer: the same certificate ($polled of 3)" test "$polled" = 3
check "  one certificate for the transaction in the ledger" \
  test "$(sql "SELECT COUNT(*) FROM certificates WHERE requester LIKE '%/$(cat "$S/g1/txid")'")" = 1
# race LABEL PATH CHALLENGE ROUNDS: scep_race.py against instances 1 and 2 at /scep/PATH (a copy
# answered PENDING polls its instance); each transaction has one certificate in the ledger.
race() {
  local label=$1 path=$2 out rc txids bad=0 t
  shift 2
  out=$("$PY" "$HERE/scep_race.py" "http://127.0.0.1:18081/scep$path" "http://127.0.0.1:18082/scep$path" "$@" 2>&1)
  rc=$?
  echo "$out" | sed 's/^/      /'
  check "$label" test "$rc" = 0
  txids=$(awk 'NF == 3 {print $1}' <<<"$out")
  for t in $txids; do
    [ "$(sql "SELECT COUNT(*) FROM certificates WHERE requester LIKE '%/$t'")" = 1 ] || bad=$((bad + 1))
  done
  check "  the ledger: one certificate per transaction ($(wc -w <<<"$txids") transactions, $bad otherwise)" \
    test -n "$txids" -a "$bad" = 0
}
race "two copies of one transaction (static challenge) at instances 1 and 2 at once, 5 times: one SUCCESS, the other SUCCESS or PENDING, both end with the same certificate" \
  /lab "$PRIVCA_SCEP_LAB_CHALLENGE" 5
# refused RC OUT: scep_client.py exited RC (2: FAILURE) and printed failInfo badRequest in OUT.
refused() { test "$1" = 2 && grep -q 'failInfo=badRequest' "$2"; }
# With a one-time challenge, the copy that finds the challenge used up by its twin is not
# refused: the ledger records which transaction used it.
for n in 1 2 3 4 5; do
  CH=$(challenge --profile device)
  race "two copies of one transaction (one-time challenge) at instances 1 and 2 at once ($n of 5): one SUCCESS, the other SUCCESS or PENDING, both end with the same certificate" \
    "" "$CH" 1
  "${CLIENT[@]}" enroll http://127.0.0.1:18083/scep --cn "other$n.cluster.test" --san "other$n.cluster.test" \
    --challenge "$CH" --dir "$S/other$n" >"$S/other$n.out" 2>&1
  check "  another transaction with that used challenge, on instance 3: FAILURE badRequest" \
    refused "$?" "$S/other$n.out"
done

echo "# OCSP freshness while the OCSP sweep's lease holder is killed"
sql "SELECT serial || '|' || CASE status WHEN 'valid' THEN 'good' ELSE 'revoked' END || '|$DATA/' || issuer_id || '.pem|'
  || translate(encode(der, 'base64'), E'\n', '') FROM certificates ORDER BY serial" >"$DATA/certs.txt"
# signed_on_demand N: OCSP answers instance N signed on demand (no fresh pre-signed response).
signed_on_demand() {
  curl -skf "https://127.0.0.1:1944$1/metrics" | awk '/^privca_ocsp_responses_total\{.*source="signed"/ {s += $NF} END {print s + 0}'
}
"$PY" "$HERE/ocsp_fresh.py" http://127.0.0.1:8080/ocsp "$DATA/certs.txt" 45 >"$DATA/ocsp.out" 2>&1 &
fresh=$!
sleep 5
victim=$(pid_of_holder ocsp-sweep)
victim_n=$(instance_of_pid "$victim")
check "the OCSP sweep runs on one of the three instances (instance $victim_n)" test "$victim_n" != 0
moved=""
survivors=()
if [ "$victim_n" != 0 ]; then
  for n in 1 2 3; do [ "$n" != "$victim_n" ] && survivors+=("$n"); done
  declare -A before_kill
  for n in "${survivors[@]}"; do before_kill[$n]=$(signed_on_demand "$n"); done
  kill_instance "$victim_n" KILL
  killed_at=$(date +%s)
  for _ in $(seq 1 $((LEASE * 4))); do
    h=$(pid_of_holder ocsp-sweep)
    if [ -n "$h" ] && [ "$h" != "$victim" ]; then moved=$(($(date +%s) - killed_at)); break; fi
    sleep 0.5
  done
fi
check "  killed with SIGKILL: another instance holds it within the lease (${moved:-never} s, lease ${LEASE} s)" \
  test -n "$moved" -a "${moved:-99}" -le $((LEASE + 3))
wait "$fresh"
rc=$?
sed 's/^/      /' "$DATA/ocsp.out"
check "  every answer through the balancer until 40 s after the kill: signed, ledger status, nextUpdate in the future" \
  test "$rc" = 0
check "  about every certificate ($(wc -l <"$DATA/certs.txt") certificates)" test "$(wc -l <"$DATA/certs.txt")" -ge 12
# A response is served from the pre-signed cache while more than 60 s of it are left, that is
# for 30 s of its 90: 40 s after the kill, only the new holder's sweep kept the answers
# pre-signed. Without it, the instances would have signed them on demand (still fresh, at a
# signature per request).
on_demand=0
for n in "${survivors[@]}"; do on_demand=$((on_demand + $(signed_on_demand "$n") - ${before_kill[$n]:-0})); done
check "  all of them pre-signed, none signed on demand by the instances left ($on_demand)" test "$on_demand" = 0
resigned=$(sql "SELECT COUNT(*) FROM ocsp_responses WHERE hash_alg = 'sha1' AND this_update >= ${killed_at:-0}")
check "  every certificate's response re-signed since the kill ($resigned of $(wc -l <"$DATA/certs.txt"))" \
  test "$resigned" -ge "$(wc -l <"$DATA/certs.txt")"

echo "# the ledger afterwards"
check "no serial twice" test "$(sql "SELECT COUNT(*) FROM (SELECT serial FROM certificates GROUP BY serial HAVING COUNT(*) > 1) d")" = 0
check "one CRL per cRLNumber" \
  test "$(sql "SELECT COUNT(*) FROM (SELECT 1 FROM crls GROUP BY issuer_id, kind, crl_number HAVING COUNT(*) > 1) d")" = 0
check "every CRL reserved was published or aborted" test "$(sql "SELECT COUNT(*) FROM crls WHERE state = 'reserved'")" = 0
check "every reservation committed or aborted" test "$(sql "SELECT COUNT(*) FROM reservations WHERE state = 'reserved'")" = 0
privca_cli audit seal >/dev/null 2>&1 || true
check "audit chain verifies" privca_cli audit verify
report_instance_errors
echo "cluster clients: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
