#!/usr/bin/env bash
# certbot (Debian 2.1) against privca's ACME server: register and update, http-01 (one name,
# RSA; three names, ECDSA), dns-01 wildcard + apex through a manual hook, forced renewal,
# revocation with a reason by the account key and by the certificate key, a second revocation
# (alreadyRevoked), deactivation, then EAB-required registration and an approval-gated
# profile that keeps the order processing until an approver approves it over the admin API.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-acme.sh"
echo "certbot $(certbot --version 2>&1 | awk '{print $2}')"
fresh_data_dir
start_challtestsrv
start_privca || exit 1
export REQUESTS_CA_BUNDLE="$DATA/root.pem"
CB=(certbot --server "$DIR_URL" --config-dir "$DATA/cb" --work-dir "$DATA/cb" --logs-dir "$DATA/cb/logs" -n)
HTTP=(--standalone --http-01-address 127.0.0.1 --http-01-port 5002)
live() { echo "$DATA/cb/live/$1"; }

check "register" "${CB[@]}" register --agree-tos -m one@privca.test
check "account stored in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_accounts WHERE contact LIKE '%one@privca.test%'")" = 1
check "update account contact" "${CB[@]}" update_account -m two@privca.test
check "contact changed in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_accounts WHERE contact LIKE '%two@privca.test%'")" = 1

check "http-01, one name, RSA key" "${CB[@]}" certonly "${HTTP[@]}" --key-type rsa --cert-name one -d one.privca.test
check "  chain verifies, SAN exact" verify_chain "$(live one)/cert.pem" "$(live one)/chain.pem" one.privca.test
check "  RSA key matches" key_matches "$(live one)/cert.pem" "$(live one)/privkey.pem"
check "http-01, three names, ECDSA key" "${CB[@]}" certonly "${HTTP[@]}" --key-type ecdsa --cert-name three \
  -d a.privca.test -d b.privca.test -d c.privca.test
check "  chain verifies, SANs exact" verify_chain "$(live three)/cert.pem" "$(live three)/chain.pem" a.privca.test b.privca.test c.privca.test
check "  ECDSA key matches" key_matches "$(live three)/cert.pem" "$(live three)/privkey.pem"

cat >"$DATA/hook-auth.sh" <<'HOOK'
#!/bin/sh
curl -sf -d "{\"host\":\"_acme-challenge.$CERTBOT_DOMAIN.\",\"value\":\"$CERTBOT_VALIDATION\"}" http://127.0.0.1:8055/set-txt
HOOK
cat >"$DATA/hook-clean.sh" <<'HOOK'
#!/bin/sh
curl -sf -d "{\"host\":\"_acme-challenge.$CERTBOT_DOMAIN.\"}" http://127.0.0.1:8055/clear-txt
HOOK
chmod +x "$DATA"/hook-*.sh
check "dns-01, wildcard + apex" "${CB[@]}" certonly --manual --preferred-challenges dns \
  --manual-auth-hook "$DATA/hook-auth.sh" --manual-cleanup-hook "$DATA/hook-clean.sh" --cert-name wild \
  -d 'wild.privca.test' -d '*.wild.privca.test'
check "  chain verifies, SANs exact" verify_chain "$(live wild)/cert.pem" "$(live wild)/chain.pem" wild.privca.test '*.wild.privca.test'

before=$(serial_of "$(live one)/cert.pem")
check "forced renewal" "${CB[@]}" renew --force-renewal --cert-name one --no-random-sleep-on-renew
after=$(serial_of "$(live one)/cert.pem")
check "  new serial" test -n "$after" -a "$before" != "$after"
check "  renewed chain verifies" verify_chain "$(live one)/cert.pem" "$(live one)/chain.pem" one.privca.test

check "revoke by account key, reason keyCompromise" "${CB[@]}" revoke --cert-path "$(live one)/cert.pem" \
  --reason keycompromise --no-delete-after-revoke
check "  ledger says revoked (keyCompromise)" test "$(ledger_status "$after")" = "revoked keyCompromise"
# certbot 2.1 on Python 3.11 turns every ACME error raised here into "AttributeError: can't set
# attribute" (josepy's immutable Error); the problem it received is in its log.
check "second revocation fails" bash -c "! ${CB[*]} revoke --cert-path $(live one)/cert.pem --no-delete-after-revoke"
check "  with urn:ietf:params:acme:error:alreadyRevoked" grep -q "error:alreadyRevoked" "$DATA/cb/logs/letsencrypt.log"
three=$(serial_of "$(live three)/cert.pem")
check "revoke signed by the certificate key (superseded)" "${CB[@]}" revoke --cert-path "$(live three)/cert.pem" \
  --key-path "$(live three)/privkey.pem" --reason superseded --no-delete-after-revoke
check "  ledger says revoked (superseded)" test "$(ledger_status "$three")" = "revoked superseded"

check "deactivate the account" "${CB[@]}" unregister
check "  ledger says deactivated" test "$(sql "SELECT status FROM acme_accounts WHERE contact LIKE '%two@privca.test%'")" = deactivated
acct=$(find "$DATA/cb/accounts" -name regr.json 2>/dev/null | head -1)
check "  certbot removed its account" test -z "$acct"

# EAB required, and an account bound to the approval-gated profile.
stop_privca
acme_config -e 's/^eab_required = false/eab_required = true/'
start_privca || exit 1
rm -rf "$DATA/cb"
check "registration without EAB refused" bash -c "! ${CB[*]} register --agree-tos -m three@privca.test"
eab=$(privca_cli acme eab add --owner team-blue)
kid=$(awk '/^kid:/ {print $2}' <<<"$eab")
hmac=$(awk '/^hmac_key:/ {print $2}' <<<"$eab")
check "EAB key created" test -n "$kid" -a -n "$hmac"
check "register with --eab-kid/--eab-hmac-key" "${CB[@]}" register --agree-tos -m three@privca.test --eab-kid "$kid" --eab-hmac-key="$hmac"
check "issue under EAB" "${CB[@]}" certonly "${HTTP[@]}" --cert-name eab -d eab.privca.test
check "  chain verifies" verify_chain "$(live eab)/cert.pem" "$(live eab)/chain.pem" eab.privca.test
check "  owner is the EAB key's owner" test "$(ledger_owner "$(serial_of "$(live eab)/cert.pem")")" = team-blue
check "EAB key cannot be bound twice" bash -c "! ${CB[*]} --config-dir $DATA/cb2 --work-dir $DATA/cb2 --logs-dir $DATA/cb2 register --agree-tos -m four@privca.test --eab-kid $kid --eab-hmac-key=$hmac"

eab=$(privca_cli acme eab add --owner team-gated --profile tls-server-gated)
kid=$(awk '/^kid:/ {print $2}' <<<"$eab")
hmac=$(awk '/^hmac_key:/ {print $2}' <<<"$eab")
GATED=(certbot --server "$DIR_URL" --config-dir "$DATA/cb3" --work-dir "$DATA/cb3" --logs-dir "$DATA/cb3/logs" -n)
check "register an account bound to the gated profile" "${GATED[@]}" register --agree-tos -m five@privca.test --eab-kid "$kid" --eab-hmac-key="$hmac"
"${GATED[@]}" certonly "${HTTP[@]}" --cert-name gated -d gated.privca.test >"$DATA/gated.log" 2>&1 &
gated_pid=$!
approval=""
for _ in $(seq 1 60); do
  approval=$(privca_cli approvals list --json 2>/dev/null | python3 -c 'import json,sys; a=[x["id"] for x in json.load(sys.stdin) if x["status"]=="pending"]; print(a[0] if a else "")')
  [ -n "$approval" ] && break
  sleep 0.5
done
check "finalize queued the request for approval" test -n "$approval"
sleep 2
check "  certbot is still waiting (order processing)" kill -0 "$gated_pid"
check "  order is processing in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_orders WHERE status = 'processing' AND approval_id IS NOT NULL")" = 1
check "an approver approves through the admin API" api_approve "$approval"
wait "$gated_pid"
check "  certbot completed on its own" test $? = 0
check "  chain verifies" verify_chain "$DATA/cb3/live/gated/cert.pem" "$DATA/cb3/live/gated/chain.pem" gated.privca.test
finish
