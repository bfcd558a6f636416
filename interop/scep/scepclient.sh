#!/usr/bin/env bash
# SCEP with micromdm's scepclient (Debian package scep), which encrypts its request to every
# certificate GetCACert returns, with single DES, and so needs an all-RSA answer: the dev
# config's name `rsa` (profile device-rsa on the RSA issuing CA, ca_certs = "issuer",
# allow_single_des). PKCSReq with a one-time challenge; the certificate it writes is checked
# with openssl verify and against the ledger.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
command -v scepclient >/dev/null || { fail "scepclient is installed (Debian package scep, .ci/test installs it)"; finish; exit 1; }
fresh_data_dir
start_privca || exit 1
BASE=http://127.0.0.1:8080/scep
W="$DATA/scepclient"
mkdir -p "$W"

echo "# GetCACert of name rsa: RSA only"
curl -s -o "$W/ca.der" "$BASE/rsa?operation=GetCACert"
openssl pkcs7 -inform DER -in "$W/ca.der" -print_certs -out "$W/all.pem" 2>/dev/null
check "RA encryption, RA signing and the RSA issuing CA, no root" \
  bash -c "openssl pkcs7 -inform DER -in '$W/ca.der' -print_certs -noout | grep '^subject' | tr '\n' '|' | grep -qx 'subject=[^|]*SCEP RA encryption (rsa)[^|]*|subject=[^|]*SCEP RA signing (rsa)[^|]*|subject=[^|]*issuing CA RSA[^|]*|'"
awk -v d="$W" '/BEGIN/{n++} {print > (d "/c" n ".pem")}' "$W/all.pem"
check "  every key is RSA" \
  bash -c "for f in '$W'/c[0-9]*.pem; do openssl x509 -in \"\$f\" -noout -text | grep -q 'Public Key Algorithm: rsaEncryption' || exit 1; done"
curl -s -o "$W/ca-default.der" "$BASE?operation=GetCACert"
check "name default still returns the root" \
  bash -c "openssl pkcs7 -inform DER -in '$W/ca-default.der' -print_certs -noout | grep -q 'root CA'"

echo "# scepclient enrolls through name rsa"
CH=$(privca_cli scep challenge new --profile device-rsa | tail -n 1)
(cd "$W" && timeout 120 scepclient -server-url "$BASE/rsa" -challenge "$CH" -cn scepclient.example.test \
  -private-key "$W/key.pem" -certificate "$W/cert.pem") >"$W/out.txt" 2>&1
check "scepclient: exit 0" test $? = 0
sed 's/^/      /' "$W/out.txt" | tail -n 3
check "  the certificate it wrote verifies to the root through the RSA issuing CA" \
  bash -c "openssl verify -CAfile '$DATA/root.pem' -untrusted '$DATA/rsa.pem' '$W/cert.pem' | grep -q ': OK$'"
check "  its CN, a host name, is copied into a DNS SAN (from_cn)" \
  bash -c "openssl x509 -in '$W/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:scepclient.example.test'"
check "  its key is scepclient's" \
  test "$(openssl x509 -in "$W/cert.pem" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$W/key.pem" -pubout 2>/dev/null)"
serial=$(openssl x509 -in "$W/cert.pem" -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f')
check "  the ledger has it: profile device-rsa, issuer rsa, requester scep:rsa/…" \
  test "$(sql "SELECT profile || ' ' || issuer_id || ' ' || substr(requester, 1, 9) FROM certificates WHERE ltrim(serial, '0') = ltrim('$serial', '0')")" = "device-rsa rsa scep:rsa/"
# scepclient keeps csr.pem and self.pem in its working directory and sends them again (the
# same transaction gets the same certificate); a new request needs a directory of its own.
mkdir -p "$W/again"
(cd "$W/again" && timeout 60 scepclient -server-url "$BASE/rsa" -challenge "$CH" -cn again.example.test \
  -private-key "$W/again/key.pem" -certificate "$W/again/cert.pem") >"$W/again.txt" 2>&1
check "a new request with the same one-time challenge: FAILURE badRequest" grep -q 'badRequest' "$W/again.txt"
finish
