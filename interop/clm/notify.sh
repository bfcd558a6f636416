#!/usr/bin/env bash
# CLM with real clients and a real SMTP server: a certificate from certbot under an EAB key and
# one from an EST enrollment land in the inventory with their owners (the EAB key's, the Basic
# user), listed as unowned until claimed; `privca owner add` claims them; `privca clm run --now`
# mails the owners through aiosmtpd (Debian python3-aiosmtpd) and posts a signed webhook
# (HMAC-SHA256, checked here with openssl), escalates the network-critical one to the security
# lead, and a second run (a new process) sends nothing again. `inventory set` is audited and the
# audit chain verifies.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../acme/lib-acme.sh"
fresh_data_dir
start_challtestsrv
W="$DATA/clm"
mkdir -p "$W/hooks"  # aiosmtpd creates the maildir "$W/mail" itself
SMTP_PORT=$(free_port)
HOOK_PORT=$(free_port)

/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$W/mail" >"$W/smtp.log" 2>&1 &
SMTP_PID=$!
cat >"$W/hook.py" <<'PY'
# Webhook receiver: each POST's body and privca headers to hooks/N.{body,headers}.
import http.server, itertools, sys
out, n = sys.argv[2], itertools.count()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        i = next(n)
        open(f"{out}/{i}.body", "wb").write(body)
        with open(f"{out}/{i}.headers", "w") as f:
            for k in ("x-privca-delivery", "x-privca-timestamp", "x-privca-signature"):
                f.write(f"{k}: {self.headers.get(k, '')}\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$W/hook.py" "$HOOK_PORT" "$W/hooks" >"$W/hook.log" 2>&1 &
HOOK_PID=$!
trap 'kill $SMTP_PID $HOOK_PID 2>/dev/null; acme_cleanup' EXIT

SECRET=webhook-secret-for-interop
(umask 077 && printf '%s' "$SECRET" >"$DATA/hook.secret")
acme_config -e 's/^eab_required = false/eab_required = true/'
cat >>"$CONFIG" <<EOF

[clm]
security_lead = "security-lead"
from = "privca <ca@privca.test>"
webhook = { secret = { file = "hook.secret" } }

[clm.smtp]
url = "smtp://127.0.0.1:$SMTP_PORT"

# Ten-year thresholds: the certificates issued here are inside them at once.
[clm.tiers.internal]
thresholds = [3650]

[clm.tiers.network-critical]
thresholds = [3650]
escalate_within = 3650
EOF
start_privca || exit 1

echo "# a certificate from certbot (EAB) and one from EST (Basic user)"
eab=$(privca_cli acme eab add --owner web-team)
kid=$(awk '/^kid:/ {print $2}' <<<"$eab")
hmac=$(awk '/^hmac_key:/ {print $2}' <<<"$eab")
export REQUESTS_CA_BUNDLE="$DATA/root.pem"
CB=(certbot --server "$DIR_URL" --config-dir "$DATA/cb" --work-dir "$DATA/cb" --logs-dir "$DATA/cb/logs" -n)
check "certbot registers with EAB" "${CB[@]}" register --agree-tos -m ops@privca.test --eab-kid "$kid" --eab-hmac-key="$hmac"
check "certbot issues www.clm.test" "${CB[@]}" certonly --standalone --http-01-address 127.0.0.1 --http-01-port 5002 \
  --cert-name www -d www.clm.test
acme_serial=$(serial_of "$DATA/cb/live/www/cert.pem")

PW=$(privca_cli est user add alice --label default | tail -n 1)
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=router7.clm.test \
  -addext "subjectAltName=DNS:router7.clm.test" -keyout "$W/router.key" -outform DER -out "$W/router.der" 2>/dev/null
base64 "$W/router.der" >"$W/router.b64"
code=$(curl -sS --cacert "$DATA/root.pem" -u "alice:$PW" -o "$W/router.p7" -w '%{http_code}' \
  -H 'Content-Type: application/pkcs10' --data-binary @"$W/router.b64" https://127.0.0.1:8443/.well-known/est/simpleenroll)
check "EST simpleenroll as alice: 200" test "$code" = 200

echo "# inventory: owners set by the enrollment identity, no manual step"
privca_cli inventory list --json >"$W/inventory.json"
owner_of() { python3 -c "import json,sys; print(' '.join(sorted(c['owner'] for c in json.load(open(sys.argv[1])) if any(s.endswith(sys.argv[2]) for s in c['sans']))))" "$W/inventory.json" "$1"; }
source_of() { python3 -c "import json,sys; print(' '.join(sorted(c['source'] for c in json.load(open(sys.argv[1])) if any(s.endswith(sys.argv[2]) for s in c['sans']))))" "$W/inventory.json" "$1"; }
check "the ACME certificate's owner is the EAB key's (web-team)" test "$(owner_of www.clm.test)" = web-team
check "  source acme" test "$(source_of www.clm.test)" = acme
check "the EST certificate's owner is the Basic user (alice)" test "$(owner_of router7.clm.test)" = alice
check "  source est" test "$(source_of router7.clm.test)" = est
privca_cli owner list >"$W/owners.txt"
check "owner list shows alice as unowned" grep -q '^alice .*unowned' "$W/owners.txt"
check "owner list shows web-team as unowned" grep -q '^web-team .*unowned' "$W/owners.txt"
check "inventory list --owner alice" test "$(privca_cli inventory list --owner alice --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1
check "inventory list --expiring-within 3650 --tier network-critical" \
  test "$(privca_cli inventory list --expiring-within 3650 --tier network-critical --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1
check "inventory list --search ROUTER7" test "$(privca_cli inventory list --search ROUTER7 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1
privca_cli inventory show "$acme_serial" >"$W/show.txt"
check "inventory show names the key" grep -Eq '^key: +(rsa-2048|ec-p256)$' "$W/show.txt"
check "inventory show names the signature algorithm" grep -Eq '^signature: +ecdsa-with-SHA256$' "$W/show.txt"

echo "# owners claimed, then the policy run"
check "owner add web-team (email + signed webhook)" privca_cli owner add web-team --email web@privca.test --webhook "http://127.0.0.1:$HOOK_PORT/hook"
check "owner add alice (email)" privca_cli owner add alice --kind person --email alice@privca.test
check "owner add security-lead" privca_cli owner add security-lead --kind person --email ciso@privca.test
check "owner set-contact" privca_cli owner set-contact alice --phone +15550100
check "inventory set --application --tag" privca_cli inventory set "$acme_serial" --application shop --tag pci --tag web
check "  audited (inventory-changed)" test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'inventory-changed' AND serial = '$acme_serial'")" = 1
check "clm run --now" privca_cli clm run --now
privca_cli clm outbox list >"$W/outbox.txt" 2>&1
sed 's/^/    /' "$W/outbox.txt"
rcpts() { grep -h '^X-RcptTo:' "$W"/mail/new/* 2>/dev/null | sort | tr '\n' ' '; }
check "mails to alice, web-team and the escalation to the security lead" \
  test "$(rcpts)" = "X-RcptTo: alice@privca.test X-RcptTo: ciso@privca.test X-RcptTo: web@privca.test "
check "  the escalation names the router" bash -c "grep -l '^X-RcptTo: ciso@privca.test' '$W'/mail/new/* | xargs grep -q '^Subject: .*ESCALATION: router7.clm.test (network-critical)'"
check "one webhook call" test "$(ls "$W"/hooks/*.body 2>/dev/null | wc -l)" = 1
ts=$(awk '/^x-privca-timestamp:/ {print $2}' "$W/hooks/0.headers")
sig=$(awk '/^x-privca-signature:/ {print $2}' "$W/hooks/0.headers")
want=$( { printf '%s.' "$ts"; cat "$W/hooks/0.body"; } | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
check "  HMAC-SHA256 signature verifies" test "$sig" = "sha256=$want"
check "  JSON names the certificate" python3 -c "import json,sys; d=json.load(open('$W/hooks/0.body')); sys.exit(0 if d['event']=='expiry' and 'www.clm.test' in d['subject'] else 1)"

n=$(ls "$W"/mail/new | wc -l)
check "a second run (a new process) sends nothing again" privca_cli clm run --now
check "  no new mail" test "$(ls "$W"/mail/new | wc -l)" = "$n"
check "  no new webhook call" test "$(ls "$W"/hooks/*.body | wc -l)" = 1
check "outbox holds the four messages, sent" test "$(privca_cli clm outbox list --state sent | grep -c ' sent ')" = 4
check "clm ack" privca_cli clm ack "$acme_serial" --until 30d --reason "renewal scheduled"
refused() { ! privca_cli "$@" >/dev/null 2>&1; }
check "bad --until refused" refused clm mute "$acme_serial" --until yesterday --reason x
check "unknown tier refused" refused inventory set "$acme_serial" --tier gold
check "unknown certificate refused" refused inventory set 00ff --owner x
check "audit chain verifies" privca_cli audit verify
stop_privca
echo "clm notify: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
