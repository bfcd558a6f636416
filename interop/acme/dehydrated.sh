#!/usr/bin/env bash
# dehydrated (Debian 0.7) against privca's ACME server: register and contact update, http-01
# from a webroot (one name, RSA; three names, ECDSA), dns-01 wildcard + apex through a hook,
# forced renewal, revocation (dehydrated sends no reason), deactivation, then refusal.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-acme.sh"
echo "dehydrated $(dehydrated -v 2>&1 | awk '/Dehydrated version/ {print $3}')"
fresh_data_dir
start_challtestsrv
start_privca || exit 1
serve_webroot "$DATA/www" || exit 1
export CURL_CA_BUNDLE="$DATA/root.pem"
cat >"$DATA/dns-hook.sh" <<'HOOK'
#!/bin/sh
case "$1" in
  deploy_challenge) curl -sf -d "{\"host\":\"_acme-challenge.$2.\",\"value\":\"$4\"}" http://127.0.0.1:8055/set-txt ;;
  clean_challenge) curl -sf -d "{\"host\":\"_acme-challenge.$2.\"}" http://127.0.0.1:8055/clear-txt ;;
esac
exit 0
HOOK
chmod +x "$DATA/dns-hook.sh"
config() { # config FILE CHALLENGETYPE KEY_ALGO EMAIL
  cat >"$1" <<CFG
CA="$DIR_URL"
BASEDIR="$DATA/dh"
WELLKNOWN="$DATA/www/.well-known/acme-challenge"
CHALLENGETYPE="$2"
HOOK="$DATA/dns-hook.sh"
KEY_ALGO="$3"
CONTACT_EMAIL="$4"
CFG
}
mkdir -p "$DATA/dh"
config "$DATA/http-rsa.cfg" http-01 rsa dh@privca.test
config "$DATA/http-ec.cfg" http-01 prime256v1 dh@privca.test
config "$DATA/dns.cfg" dns-01 prime256v1 dh@privca.test
config "$DATA/update.cfg" http-01 rsa dh2@privca.test
D=(dehydrated)
cert() { echo "$DATA/dh/certs/$1/cert.pem"; }
chain() { echo "$DATA/dh/certs/$1/chain.pem"; }
key() { echo "$DATA/dh/certs/$1/privkey.pem"; }

check "register" "${D[@]}" -f "$DATA/http-rsa.cfg" --register --accept-terms
check "  account in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_accounts WHERE contact LIKE '%dh@privca.test%'")" = 1
check "update account contact" "${D[@]}" -f "$DATA/update.cfg" --account
check "  contact changed in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_accounts WHERE contact LIKE '%dh2@privca.test%'")" = 1
check "http-01, one name, RSA key" "${D[@]}" -f "$DATA/http-rsa.cfg" -c -d one.privca.test
check "  chain verifies, SAN exact" verify_chain "$(cert one.privca.test)" "$(chain one.privca.test)" one.privca.test
check "  RSA key matches" key_matches "$(cert one.privca.test)" "$(key one.privca.test)"
check "http-01, three names, ECDSA key" "${D[@]}" -f "$DATA/http-ec.cfg" -c -d a.privca.test -d b.privca.test -d c.privca.test
check "  chain verifies, SANs exact" verify_chain "$(cert a.privca.test)" "$(chain a.privca.test)" a.privca.test b.privca.test c.privca.test
check "  ECDSA key matches" key_matches "$(cert a.privca.test)" "$(key a.privca.test)"
check "dns-01, wildcard + apex" "${D[@]}" -f "$DATA/dns.cfg" -c -d wild.privca.test -d '*.wild.privca.test' --alias wild
check "  chain verifies, SANs exact" verify_chain "$(cert wild)" "$(chain wild)" wild.privca.test '*.wild.privca.test'
before=$(serial_of "$(cert one.privca.test)")
check "forced renewal" "${D[@]}" -f "$DATA/http-rsa.cfg" -c -x -d one.privca.test
after=$(serial_of "$(cert one.privca.test)")
check "  new serial" test -n "$after" -a "$before" != "$after"
check "  renewed chain verifies" verify_chain "$(cert one.privca.test)" "$(chain one.privca.test)" one.privca.test
check "revoke (account key, no reason)" "${D[@]}" -f "$DATA/http-rsa.cfg" --revoke "$(cert one.privca.test)"
check "  ledger says revoked (unspecified)" test "$(ledger_status "$after")" = "revoked unspecified"
check "deactivate the account" "${D[@]}" -f "$DATA/http-rsa.cfg" --deactivate
check "  ledger says deactivated" test "$(sql "SELECT status FROM acme_accounts WHERE contact LIKE '%dh2@privca.test%'")" = deactivated
check "deactivated account refused" bash -c "! ${D[*]} -f $DATA/http-rsa.cfg -c -x -d one.privca.test"
finish
