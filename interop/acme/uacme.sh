#!/usr/bin/env bash
# uacme (Debian 1.7) against privca's ACME server: register and contact update, http-01 (one
# name, RSA; three names, ECDSA), dns-01 wildcard + apex, tls-alpn-01 through ualpn, forced
# renewal, revocation with a reason by the account key and by the certificate key, key
# rollover (the old key is refused afterwards), deactivation, then refusal.
# uacme reads no CA variable: the root is installed system-wide for the run and removed after.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-acme.sh"
echo "uacme $(dpkg-query -W -f='${Version}' uacme 2>/dev/null)"
fresh_data_dir
start_challtestsrv
start_privca || exit 1
serve_webroot "$DATA/www" || exit 1
TRUST=/usr/local/share/ca-certificates/privca-interop-$$.crt
cp "$DATA/root.pem" "$TRUST" && update-ca-certificates >/dev/null 2>&1
UALPN_PID=""
uacme_cleanup() {
  [ -n "$UALPN_PID" ] && kill "$UALPN_PID" 2>/dev/null
  rm -f "$TRUST"; update-ca-certificates --fresh >/dev/null 2>&1
  acme_cleanup
}
trap uacme_cleanup EXIT

cat >"$DATA/hook.sh" <<HOOK
#!/bin/sh
# uacme hook: METHOD TYPE IDENT TOKEN AUTH; accept only \$CHALL_TYPE.
METHOD=\$1 TYPE=\$2 IDENT=\$3 TOKEN=\$4 AUTH=\$5
[ "\$TYPE" = "\$CHALL_TYPE" ] || exit 1
case "\$METHOD:\$TYPE" in
  begin:http-01) printf '%s' "\$AUTH" >"$DATA/www/.well-known/acme-challenge/\$TOKEN" ;;
  begin:dns-01) curl -sf -d "{\"host\":\"_acme-challenge.\$IDENT.\",\"value\":\"\$AUTH\"}" http://127.0.0.1:8055/set-txt ;;
  begin:tls-alpn-01) printf 'auth %s %s\n' "\$IDENT" "\$AUTH" | ualpn -s "$DATA/ualpn.sock" ;;
  *:dns-01) curl -sf -d "{\"host\":\"_acme-challenge.\$IDENT.\"}" http://127.0.0.1:8055/clear-txt ;;
  *:tls-alpn-01) printf 'unauth %s\n' "\$IDENT" | ualpn -s "$DATA/ualpn.sock" ;;
  *:http-01) rm -f "$DATA/www/.well-known/acme-challenge/\$TOKEN" ;;
esac
exit 0
HOOK
chmod +x "$DATA/hook.sh"
U=(uacme -a "$DIR_URL" -c "$DATA/uacme" -y -h "$DATA/hook.sh")
cert() { echo "$DATA/uacme/$1/cert.pem"; }
key() { echo "$DATA/uacme/private/$1/key.pem"; }
leaf_and_chain() { # uacme writes leaf + chain in cert.pem
  awk -v leaf="$DATA/leaf.pem" -v rest="$DATA/rest.pem" '/BEGIN CERT/ {n++} {print > (n == 1 ? leaf : rest)}' "$1"
}
verify() { local f=$1; shift; leaf_and_chain "$f" && verify_chain "$DATA/leaf.pem" "$DATA/rest.pem" "$@"; }

check "register" "${U[@]}" new uacme@privca.test
check "  account in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_accounts WHERE contact LIKE '%uacme@privca.test%'")" = 1
check "update account contact" "${U[@]}" update uacme2@privca.test
check "  contact changed in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_accounts WHERE contact LIKE '%uacme2@privca.test%'")" = 1
check "http-01, one name, RSA key" env CHALL_TYPE=http-01 "${U[@]}" -t RSA -b 2048 issue one.privca.test
check "  chain verifies, SAN exact" verify "$(cert one.privca.test)" one.privca.test
check "  RSA key matches" key_matches "$(cert one.privca.test)" "$(key one.privca.test)"
check "http-01, three names, ECDSA key" env CHALL_TYPE=http-01 "${U[@]}" -t EC -b 256 issue a.privca.test b.privca.test c.privca.test
check "  chain verifies, SANs exact" verify "$(cert a.privca.test)" a.privca.test b.privca.test c.privca.test
check "  ECDSA key matches" key_matches "$(cert a.privca.test)" "$(key a.privca.test)"
check "dns-01, wildcard + apex" env CHALL_TYPE=dns-01 "${U[@]}" issue wild.privca.test '*.wild.privca.test'
check "  chain verifies, SANs exact" verify "$(cert wild.privca.test)" wild.privca.test '*.wild.privca.test'
ualpn -b 127.0.0.1@5001 -c 127.0.0.1@5999 -s "$DATA/ualpn.sock" -p "$DATA/ualpn.pid" >"$DATA/ualpn.log" 2>&1 &
UALPN_PID=$!
sleep 1
check "tls-alpn-01 (ualpn)" env CHALL_TYPE=tls-alpn-01 "${U[@]}" issue alpn.privca.test
check "  chain verifies" verify "$(cert alpn.privca.test)" alpn.privca.test
before=$(serial_of "$(cert one.privca.test)")
check "forced renewal" env CHALL_TYPE=http-01 "${U[@]}" -f -t RSA -b 2048 issue one.privca.test
after=$(serial_of "$(cert one.privca.test)")
check "  new serial" test -n "$after" -a "$before" != "$after"
check "  renewed chain verifies" verify "$(cert one.privca.test)" one.privca.test
check "revoke by account key, reason affiliationChanged" "${U[@]}" -r 3 revoke "$(cert one.privca.test)"
check "  ledger says revoked (affiliationChanged)" test "$(ledger_status "$after")" = "revoked affiliationChanged"
three=$(serial_of "$(cert a.privca.test)")
check "revoke signed by the certificate key" "${U[@]}" -r 4 revoke "$(cert a.privca.test)" "$(key a.privca.test)"
check "  ledger says revoked (superseded)" test "$(ledger_status "$three")" = "revoked superseded"
mkdir -p "$DATA/old/private" && cp "$DATA/uacme/private/key.pem" "$DATA/old/private/key.pem"
check "key rollover" "${U[@]}" newkey
check "  the new key works" "${U[@]}" update uacme3@privca.test
check "  the old key is refused" bash -c "! uacme -a $DIR_URL -c $DATA/old -n -y update uacme4@privca.test"
check "deactivate the account" "${U[@]}" deactivate
check "  ledger says deactivated" test "$(sql "SELECT status FROM acme_accounts WHERE contact LIKE '%uacme3@privca.test%'")" = deactivated
check "deactivated account refused" bash -c "! CHALL_TYPE=http-01 ${U[*]} -f issue one.privca.test"
finish
