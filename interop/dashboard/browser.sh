#!/usr/bin/env bash
# The dashboard in a real browser: `privca serve` with a fresh ledger, an admin made with
# `privca admin user add alice --role admin --password-file` (its otpauth URL parsed for the
# TOTP secret), two certificates from `privca issue` and one request waiting on the approval
# gate; then browser.py drives headless Chromium through Selenium: a wrong and a reused TOTP
# code refused, login, the overview, the certificates filtered to one, opened, revoked and seen
# revoked, the request approved, discovery, owners, audit log, users and tokens, the
# server-generated key form; a screenshot of every page (checked non-blank) under
# $INTEROP_OUT/dashboard/; form posts without or with a wrong CSRF field answered 403. The
# ledger is checked afterwards.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
OUT="$INTEROP_OUT/dashboard${INTEROP_PG_URL:+-postgresql}"
rm -rf "$OUT"
mkdir -p "$OUT"
start_privca || exit 1

(umask 077 && printf '%s\n' 'browser test password, long enough' >"$DATA/alice.pw")
privca_cli admin user add alice --role admin --password-file "$DATA/alice.pw" >"$DATA/alice.txt" 2>&1
check "admin user add alice --role admin --password-file" grep -q "created" "$DATA/alice.txt"
otpauth=$(grep -o 'otpauth://[^[:space:]]*' "$DATA/alice.txt")
check "  prints the otpauth URL" test -n "$otpauth"
check "  and not the password" bash -c "! grep -q 'browser test password' '$DATA/alice.txt'"

for n in web1 web2; do
  make_csr "$n.dash.test" custom ec "$DATA"
  privca_cli issue --csr "$DATA/$n.dash.test.csr" --profile tls-server --out "$DATA/$n.pem" >/dev/null 2>&1
  check "privca issue $n.dash.test" test -s "$DATA/$n.pem"
done
make_csr gated.dash.test custom ec "$DATA"
privca_cli issue --csr "$DATA/gated.dash.test.csr" --profile tls-server-gated >/dev/null 2>&1
check "a request waits on the approval gate" test "$(sql "SELECT COUNT(*) FROM approvals WHERE status = 'pending'")" = 1
fp2=$(openssl x509 -in "$DATA/web2.pem" -outform DER | sha256sum | cut -d' ' -f1)

/usr/bin/python3 "$ROOT/interop/dashboard/browser.py" --base https://127.0.0.1:9443 --user alice \
  --password-file "$DATA/alice.pw" --otpauth "$otpauth" --find web1.dash.test --other "$fp2" \
  --cafile "$DATA/root.pem" --out "$OUT" 2>"$DATA/browser.err" | tee "$DATA/browser.log"
PASSED=$((PASSED + $(grep -c '^  ok ' "$DATA/browser.log")))
FAILED=$((FAILED + $(grep -c '^  FAIL ' "$DATA/browser.log")))
check "browser.py ran to the end (screenshots checked)" grep -q 'screenshot .* is not blank' "$DATA/browser.log"
[ -s "$DATA/browser.err" ] && grep -v -E 'Failed to connect to the bus|unexpected operator' "$DATA/browser.err" | tail -n 5
check "screenshots written" test "$(ls "$OUT"/*.png 2>/dev/null | wc -l)" -ge 15

echo "# the ledger"
check "web1 revoked (keyCompromise) by admin:alice" \
  test "$(sql "SELECT status || ' ' || revocation_reason FROM certificates WHERE subject LIKE '%web1.dash.test%'")" = "revoked keyCompromise"
check "  audited as admin:alice" test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'revoked' AND actor = 'admin:alice'")" = 1
check "web2 untouched by the posts without CSRF" test "$(sql "SELECT status FROM certificates WHERE fingerprint_sha256 = '$fp2'")" = valid
check "  each refused post audited (admin-refused, CSRF)" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'admin-refused' AND detail LIKE '%CSRF%'")" = 3
check "failed logins audited (wrong and reused code), never the password" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'admin-login-failed' AND detail NOT LIKE '%browser test password%'")" = 2
check "two logins audited" test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'admin-login'")" = 2
check "the gated request approved by admin:alice and issued" \
  test "$(sql "SELECT status || ' ' || decided_by FROM approvals")" = "issued admin:alice"
check "audit chain verifies" privca_cli audit verify
stop_privca
finish
