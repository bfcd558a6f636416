#!/usr/bin/env bash
# No secret in the logs or the ledger. privca runs the dev config with RUST_LOG=debug; the run
# creates an EAB key and registers a certbot account with it (and tries a wrong HMAC key), adds
# an EST user from a password file and enrolls with curl over HTTP Basic (and tries a wrong
# password), enrolls over SCEP with a one-time challenge and with the lab name's static
# challenge (and tries a wrong one). Then serve.log, the CLI's logs, the ledger dump (sqlite3
# .dump or pg_dump) and the SQLite files themselves are searched for every secret the run used:
# the PINs (user and SO), the EAB HMAC key (base64url, base64 and hex), the EST password and
# the SCEP challenges. None may appear. Last, privca refuses to start with a PIN file of mode
# 0644 and names the file and the mode, and `est user add` refuses a password file of mode 0644.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
fresh_data_dir
W="$DATA/work"
mkdir -p "$W"
export RUST_LOG=debug,cryptoki::mechanism=off
export PRIVCA_SCEP_LAB_CHALLENGE="lab-$(openssl rand -hex 16)"
CLI_LOG="$DATA/cli.log"
# The CLI prints the secrets it creates on stdout, once, by design; its logs go to $CLI_LOG.
cli() { privca_cli "$@" 2>>"$CLI_LOG"; }
start_privca || exit 1

echo "# secret files"
mode() { stat -c %a "$1"; }
check "secrets/ is 0700, the PIN files privca wrote are 0600" \
  test "$(mode "$DATA/secrets") $(mode "$DATA/secrets/user.pin") $(mode "$DATA/secrets/so.pin")" = "700 600 600"
USER_PIN=$(cat "$DATA/secrets/user.pin")
SO_PIN=$(cat "$DATA/secrets/so.pin")

echo "# ACME with EAB (certbot)"
eab=$(cli acme eab add --owner team-secrets)
KID=$(awk '/^kid:/ {print $2}' <<<"$eab")
HMAC=$(awk '/^hmac_key:/ {print $2}' <<<"$eab")
check "EAB key created" test -n "$KID" -a -n "$HMAC"
b64url_to() { # b64url_to hex|b64 VALUE
  python3 -c 'import base64, sys; k = base64.urlsafe_b64decode(sys.argv[2] + "=" * (-len(sys.argv[2]) % 4)); print(k.hex() if sys.argv[1] == "hex" else base64.b64encode(k).decode())' "$1" "$2"
}
HMAC_HEX=$(b64url_to hex "$HMAC")
HMAC_B64=$(b64url_to b64 "$HMAC")
export REQUESTS_CA_BUNDLE="$DATA/root.pem"
CB=(certbot --server https://127.0.0.1:8443/acme/directory -n --agree-tos)
cb_dirs() { echo "--config-dir $W/$1 --work-dir $W/$1 --logs-dir $W/$1/logs"; }
WRONG="${HMAC:0:40}$(openssl rand -hex 2)"
# shellcheck disable=SC2046
check "register with a wrong EAB HMAC key: refused" bash -c "! ${CB[*]} $(cb_dirs cb0) register -m zero@privca.test --eab-kid $KID --eab-hmac-key=$WRONG"
# shellcheck disable=SC2046
check "register with --eab-kid/--eab-hmac-key" "${CB[@]}" $(cb_dirs cb1) register -m one@privca.test --eab-kid "$KID" --eab-hmac-key="$HMAC"
check "  the account is bound to the EAB key" test "$(sql "SELECT COUNT(*) FROM acme_accounts WHERE eab_kid = '$KID'")" = 1
check "  the ledger holds the HMAC key sealed only" \
  test "$(sql "SELECT hmac_key || '|' || substr(sealed_key, 1, 3) FROM acme_eab_keys WHERE kid = '$KID'")" = "|v1."
if [ -n "$DB_URL" ]; then
  check "  the shared nonce key is stored sealed" \
    test "$(sql "SELECT name || '|' || substr(value, 1, 3) FROM acme_settings")" = "nonce_key_sealed|v1."
fi

echo "# EST over HTTP Basic (curl)"
EST_PW="est-$(openssl rand -hex 16)"
(umask 077 && printf '%s\n' "$EST_PW" >"$W/est.pw")
chmod 644 "$W/est.pw"
out=$(privca_cli est user add dev1 --label default --password-file "$W/est.pw" 2>&1)
check "est user add refuses a password file of mode 0644, naming it" \
  grep -q "$W/est.pw is readable by group or others (mode 0644)" <<<"$out"
chmod 600 "$W/est.pw"
check "est user add --password-file (mode 0600)" cli est user add dev1 --label default --password-file "$W/est.pw"
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=dev1.example.test \
  -addext subjectAltName=DNS:dev1.example.test -keyout "$W/dev1.key" -outform DER -out "$W/dev1.der" 2>/dev/null
base64 "$W/dev1.der" >"$W/dev1.b64"
est() { # est USER:PASSWORD OUT: HTTP status of /simpleenroll
  curl -sS --cacert "$DATA/root.pem" -o "$2" -w '%{http_code}' -H 'Content-Type: application/pkcs10' \
    --data-binary @"$W/dev1.b64" -u "$1" https://127.0.0.1:8443/.well-known/est/simpleenroll
}
check "simpleenroll with a wrong password: 401" test "$(est "dev1:$EST_PW-wrong" "$W/wrong.p7")" = 401
check "simpleenroll with the password: 200" test "$(est "dev1:$EST_PW" "$W/dev1.p7")" = 200

echo "# SCEP (scep_client.py)"
SCEP_CH=$(cli scep challenge new --profile device | tail -n 1)
check "one-time challenge created" test -n "$SCEP_CH"
scep() { # scep NAME-PATH DIR CHALLENGE
  "$PY" "$ROOT/interop/scep/scep_client.py" enroll "http://127.0.0.1:8080/scep$1" --cn "$2.example.test" \
    --san "$2.example.test" --challenge "$3" --dir "$W/$2" >"$W/$2.out" 2>&1
}
# (Wrong values here contain the real ones: a log of the wrong value would show the real one.)
if scep "" bad "not-$SCEP_CH"; then fail "PKCSReq with a wrong challenge: accepted"; else ok "PKCSReq with a wrong challenge: refused"; fi
check "PKCSReq with the one-time challenge: SUCCESS" scep "" p1 "$SCEP_CH"
check "PKCSReq with the lab name's static challenge: SUCCESS" scep /lab p2 "$PRIVCA_SCEP_LAB_CHALLENGE"

stop_privca
echo "# search"
DUMP="$DATA/ledger.dump"
if [ -n "$DB_URL" ]; then pg_dump "$DB_URL" >"$DUMP"; else sqlite3 "$DATA/privca.db" .dump >"$DUMP"; fi
check "the dump is the run's ledger (it names the EAB key id)" grep -qF "$KID" "$DUMP"
check "serve.log holds debug lines" grep -q DEBUG "$DATA/serve.log"
files=("$DATA/serve.log" "$CLI_LOG" "$DUMP")
[ -z "$DB_URL" ] && for f in "$DATA"/privca.db*; do files+=("$f"); done
for name in USER_PIN SO_PIN HMAC HMAC_HEX HMAC_B64 EST_PW SCEP_CH PRIVCA_SCEP_LAB_CHALLENGE; do
  value=${!name}
  if [ ${#value} -lt 12 ]; then
    fail "$name is empty or too short to search for"
    continue
  fi
  found=()
  for f in "${files[@]}"; do
    grep -aqiF -e "$value" "$f" && found+=("${f#"$DATA"/}")
  done
  if [ ${#found[@]} = 0 ]; then ok "$name appears in none of ${#files[@]} files"; else fail "$name appears in ${found[*]}"; fi
done

echo "# secret files open to others"
chmod 644 "$DATA/secrets/user.pin"
timeout 60 "$PRIVCA_BIN" --config "$CONFIG" --data-dir "$DATA" serve >"$W/refused.log" 2>&1
rc=$?
check "privca serve refuses a 0644 user PIN file (exit $rc)" test "$rc" != 0 -a "$rc" != 124
check "  the error names the key, the file and the mode" \
  grep -qF "hsm.user_pin: $DATA/secrets/user.pin is readable by group or others (mode 0644); chmod 600 it" "$W/refused.log"
check "  and shows no PIN" bash -c "! grep -qF -e '$USER_PIN' '$W/refused.log'"
chmod 600 "$DATA/secrets/user.pin"
echo "secrets: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
