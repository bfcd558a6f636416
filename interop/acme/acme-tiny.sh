#!/usr/bin/env bash
# acme-tiny (Debian 5.0) against privca's ACME server: implicit registration, http-01 from a
# webroot (one name with an RSA key; three names with an ECDSA key), and a second run that gets
# a new certificate (forced renewal: acme-tiny always orders anew).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-acme.sh"
echo "acme-tiny (Debian $(dpkg-query -W -f='${Version}' acme-tiny 2>/dev/null))"
fresh_data_dir
start_challtestsrv
start_privca || exit 1
serve_webroot "$DATA/www" || exit 1
export SSL_CERT_FILE="$DATA/root.pem"
openssl genrsa -out "$DATA/account.key" 2048 2>/dev/null
T=(acme-tiny --account-key "$DATA/account.key" --acme-dir "$DATA/www/.well-known/acme-challenge" --directory-url "$DIR_URL" --disable-check)
openssl req -new -nodes -newkey rsa:2048 -subj /CN=one.privca.test -addext subjectAltName=DNS:one.privca.test \
  -keyout "$DATA/one.key" -out "$DATA/one.csr" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=a.privca.test \
  -addext subjectAltName=DNS:a.privca.test,DNS:b.privca.test,DNS:c.privca.test -keyout "$DATA/three.key" -out "$DATA/three.csr" 2>/dev/null
split_chain() { # the leaf and the rest of a PEM chain
  awk -v leaf="$2" -v rest="$3" '/BEGIN CERT/ {n++} {print > (n == 1 ? leaf : rest)}' "$1"
}
check "http-01, one name, RSA key (implicit registration)" bash -c "${T[*]} --csr $DATA/one.csr >$DATA/one.chain"
split_chain "$DATA/one.chain" "$DATA/one.crt" "$DATA/one.rest"
check "  account in the ledger" test "$(sql "SELECT COUNT(*) FROM acme_accounts")" = 1
check "  chain verifies, SAN exact" verify_chain "$DATA/one.crt" "$DATA/one.rest" one.privca.test
check "  RSA key matches" key_matches "$DATA/one.crt" "$DATA/one.key"
check "http-01, three names, ECDSA key" bash -c "${T[*]} --csr $DATA/three.csr >$DATA/three.chain"
split_chain "$DATA/three.chain" "$DATA/three.crt" "$DATA/three.rest"
check "  chain verifies, SANs exact" verify_chain "$DATA/three.crt" "$DATA/three.rest" a.privca.test b.privca.test c.privca.test
check "  ECDSA key matches" key_matches "$DATA/three.crt" "$DATA/three.key"
check "renewal (second run)" bash -c "${T[*]} --csr $DATA/one.csr >$DATA/one2.chain"
split_chain "$DATA/one2.chain" "$DATA/one2.crt" "$DATA/one2.rest"
check "  new serial" test "$(serial_of "$DATA/one.crt")" != "$(serial_of "$DATA/one2.crt")"
check "  renewed chain verifies" verify_chain "$DATA/one2.crt" "$DATA/one2.rest" one.privca.test
finish
