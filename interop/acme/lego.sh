#!/usr/bin/env bash
# lego (Debian 4.9) against privca's ACME server: registration, http-01 (one name, RSA; three
# names, ECDSA), dns-01 wildcard + apex through the exec provider, tls-alpn-01, forced renewal,
# revocation with a reason, and EAB-required registration. lego's CLI has no account-update
# command; registration is checked in the ledger.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-acme.sh"
echo "lego $(lego --version 2>&1 | awk '{print $3}')"
fresh_data_dir
start_challtestsrv
start_privca || exit 1
export LEGO_CA_CERTIFICATES="$DATA/root.pem"
L=(lego --server "$DIR_URL" --path "$DATA/lego" --email lego@privca.test --accept-tos)
HTTP=(--http --http.port 127.0.0.1:5002)
crt() { echo "$DATA/lego/certificates/$1.crt"; }
issuer() { echo "$DATA/lego/certificates/$1.issuer.crt"; }
key() { echo "$DATA/lego/certificates/$1.key"; }

check "register + http-01, one name, RSA key" "${L[@]}" --key-type rsa2048 --domains one.privca.test "${HTTP[@]}" run
check "  account in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_accounts WHERE contact LIKE '%lego@privca.test%'")" = 1
check "  chain verifies, SAN exact" verify_chain "$(crt one.privca.test)" "$(issuer one.privca.test)" one.privca.test
check "  RSA key matches" key_matches "$(crt one.privca.test)" "$(key one.privca.test)"
check "http-01, three names, ECDSA key" "${L[@]}" --key-type ec256 --domains a.privca.test --domains b.privca.test \
  --domains c.privca.test "${HTTP[@]}" run
check "  chain verifies, SANs exact" verify_chain "$(crt a.privca.test)" "$(issuer a.privca.test)" a.privca.test b.privca.test c.privca.test
check "  ECDSA key matches" key_matches "$(crt a.privca.test)" "$(key a.privca.test)"

cat >"$DATA/dns-exec.sh" <<'HOOK'
#!/bin/sh
# lego exec provider: present|cleanup FQDN VALUE
case "$1" in
  present) curl -sf -d "{\"host\":\"$2\",\"value\":\"$3\"}" http://127.0.0.1:8055/set-txt ;;
  cleanup) curl -sf -d "{\"host\":\"$2\"}" http://127.0.0.1:8055/clear-txt ;;
esac
HOOK
chmod +x "$DATA/dns-exec.sh"
check "dns-01, wildcard + apex" env EXEC_PATH="$DATA/dns-exec.sh" EXEC_POLLING_INTERVAL=1 EXEC_PROPAGATION_TIMEOUT=10 \
  "${L[@]}" --domains wild.privca.test --domains '*.wild.privca.test' --dns exec --dns.resolvers 127.0.0.1:8053 \
  --dns.disable-cp run
check "  chain verifies, SANs exact" verify_chain "$(crt wild.privca.test)" "$(issuer wild.privca.test)" wild.privca.test '*.wild.privca.test'

check "tls-alpn-01" "${L[@]}" --domains alpn.privca.test --tls --tls.port 127.0.0.1:5001 run
check "  chain verifies" verify_chain "$(crt alpn.privca.test)" "$(issuer alpn.privca.test)" alpn.privca.test

before=$(serial_of "$(crt one.privca.test)")
check "forced renewal" "${L[@]}" --key-type rsa2048 --domains one.privca.test "${HTTP[@]}" renew --days 3650 --no-random-sleep
after=$(serial_of "$(crt one.privca.test)")
check "  new serial" test -n "$after" -a "$before" != "$after"
check "  renewed chain verifies" verify_chain "$(crt one.privca.test)" "$(issuer one.privca.test)" one.privca.test

check "revoke with reason cessationOfOperation (account key)" "${L[@]}" --domains one.privca.test revoke --reason 5
check "  ledger says revoked (cessationOfOperation)" test "$(ledger_status "$after")" = "revoked cessationOfOperation"

stop_privca
acme_config -e 's/^eab_required = false/eab_required = true/'
start_privca || exit 1
E=(lego --server "$DIR_URL" --path "$DATA/lego-eab" --email eab@privca.test --accept-tos)
check "registration without EAB refused" bash -c "! ${E[*]} --domains eab.privca.test --http --http.port 127.0.0.1:5002 run"
eab=$(privca_cli acme eab add --owner team-green)
kid=$(awk '/^kid:/ {print $2}' <<<"$eab")
hmac=$(awk '/^hmac_key:/ {print $2}' <<<"$eab")
check "register with --eab --kid --hmac, then issue" "${E[@]}" --eab --kid "$kid" --hmac="$hmac" --domains eab.privca.test "${HTTP[@]}" run
check "  chain verifies" verify_chain "$DATA/lego-eab/certificates/eab.privca.test.crt" "$DATA/lego-eab/certificates/eab.privca.test.issuer.crt" eab.privca.test
check "  owner is the EAB key's owner" test "$(ledger_owner "$(serial_of "$DATA/lego-eab/certificates/eab.privca.test.crt")")" = team-green
finish
