#!/usr/bin/env bash
# EST (RFC 7030 / RFC 8951) with curl + openssl: all six operations with HTTP Basic and TLS
# client-certificate authentication, labels and which client certificates each accepts for what
# (re-enrollment only, own names, an IDevID's serial number), the approval gate, re-enrollment
# (and its refusal with a revoked certificate), the negative cases, and Basic under attack
# (a burst of wrong passwords; unknown and known users timed alike), CN-only requests (the SAN
# copied from a host-name CN, none for a serial number; the refusal of a profile that requires
# one). /fullcmc is driven by cmc.py, an independent client on pyasn1-alt-modules + cryptography.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
fresh_data_dir
start_privca || exit 1
EST=https://127.0.0.1:8443/.well-known/est
W="$DATA/est"
mkdir -p "$W"
CURL=(curl -sS --cacert "$DATA/root.pem" --tlsv1.2)

# user NAME LABEL: creates the user, prints its password (the CLI's last line).
user() { privca_cli est user add "$1" --label "$2" | tail -n 1; }
# csr NAME [SUBJ]: key + base64 PKCS#10 for DNS:NAME in $W/NAME.{key,b64}.
csr() {
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "${2:-/CN=$1}" \
    -addext "subjectAltName=DNS:$1" -keyout "$W/$1.key" -outform DER -out "$W/$1.der" 2>/dev/null
  base64 "$W/$1.der" >"$W/$1.b64"
}
# post OP BODYFILE OUT [curl args...]: POST a CSR (Content-Type $CTYPE, default
# application/pkcs10); HTTP status on stdout, headers in OUT.h.
post() {
  local op=$1 body=$2 out=$3; shift 3
  "${CURL[@]}" -o "$out" -D "$out.h" -w '%{http_code}' -H "Content-Type: ${CTYPE:-application/pkcs10}" \
    --data-binary @"$body" "$@" "$EST/$op"
}
# p7 IN OUT: base64 certs-only PKCS#7 → PEM certificates.
p7() { tr -d '\r' <"$1" | base64 -d | openssl pkcs7 -inform DER -print_certs -out "$2" 2>/dev/null; }
verify() { openssl verify -CAfile "$DATA/root.pem" -untrusted "$W/cacerts.pem" "$1" 2>&1 | grep -q ': OK$'; }
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
header() { grep -i "^$2:" "$1.h" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

PW=$(user dev1 default)
check "est user add prints a password" test -n "$PW"
check "the password is not in the ledger" test "$(sql "SELECT COUNT(*) FROM est_users WHERE password_hash LIKE '%$PW%'")" = 0
check "the ledger holds an argon2id hash" test "$(sql "SELECT substr(password_hash, 1, 10) FROM est_users WHERE name = 'dev1'")" = '$argon2id$'

echo "# /cacerts and /csrattrs (no authentication)"
code=$("${CURL[@]}" -o "$W/cacerts.b64" -D "$W/cacerts.h" -w '%{http_code}' "$EST/cacerts")
check "cacerts: 200" test "$code" = 200
check "cacerts: application/pkcs7-mime" grep -qi '^content-type: application/pkcs7-mime' "$W/cacerts.h"
check "cacerts: Content-Transfer-Encoding base64 and a Content-Length" \
  bash -c "grep -qi '^content-transfer-encoding: base64' '$W/cacerts.h' && grep -qi '^content-length:' '$W/cacerts.h'"
p7 "$W/cacerts.b64" "$W/cacerts.pem"
check "cacerts: issuing CA and root" test "$(grep -c 'BEGIN CERTIFICATE' "$W/cacerts.pem")" = 2
check "cacerts: the root is privca's root" bash -c "grep -q \"$(sed -n 2p "$DATA/root.pem")\" '$W/cacerts.pem'"
code=$("${CURL[@]}" -o "$W/attrs.b64" -D "$W/attrs.h" -w '%{http_code}' "$EST/csrattrs")
check "csrattrs: 200 application/csrattrs" bash -c "[ $code = 200 ] && grep -qi '^content-type: application/csrattrs' '$W/attrs.h'"
base64 -d "$W/attrs.b64" | openssl asn1parse -inform DER >"$W/attrs.txt" 2>&1
check "csrattrs: EC key on P-256 (RFC 9908 attribute)" bash -c "grep -q id-ecPublicKey '$W/attrs.txt' && grep -q prime256v1 '$W/attrs.txt'"
check "csrattrs: ecdsa-with-SHA256 and an extensionRequest for subjectAltName" \
  bash -c "grep -q ecdsa-with-SHA256 '$W/attrs.txt' && grep -q 'Extension Request' '$W/attrs.txt' && grep -q 'X509v3 Subject Alternative Name' '$W/attrs.txt'"

echo "# /simpleenroll with HTTP Basic"
csr dev1.example.test
code=$(post simpleenroll "$W/dev1.example.test.b64" "$W/dev1.p7" -u "dev1:$PW")
check "simpleenroll (Basic): 200" test "$code" = 200
check "simpleenroll: application/pkcs7-mime; smime-type=certs-only" \
  bash -c "grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only' '$W/dev1.p7.h'"
p7 "$W/dev1.p7" "$W/dev1.pem"
check "simpleenroll: only the issued certificate" test "$(grep -c 'BEGIN CERTIFICATE' "$W/dev1.pem")" = 1
check "simpleenroll: verifies against /cacerts and the root" verify "$W/dev1.pem"
check "simpleenroll: key matches" test "$(openssl x509 -in "$W/dev1.pem" -noout -pubkey)" = "$(openssl pkey -in "$W/dev1.example.test.key" -pubout)"
check "simpleenroll: clientAuth EKU (re-enrollment)" bash -c "openssl x509 -in '$W/dev1.pem' -noout -ext extendedKeyUsage | grep -q 'TLS Web Client Authentication'"
S1=$(serial "$W/dev1.pem")
check "inventory: owner is the EST user, tier network-critical" \
  test "$(sql "SELECT owner || ' ' || tier FROM certificates WHERE ltrim(serial, '0') = ltrim('$S1', '0')")" = "dev1 network-critical"
check "privca list shows it with owner dev1" bash -c "[ -n '$S1' ] && '$PRIVCA_BIN' --config '$CONFIG' --data-dir '$DATA' list | grep -i '${S1#0}' | grep -q dev1"

# RFC 8951: one long line, CRLF-wrapped, and an odd Content-Transfer-Encoding are all accepted.
csr crlf.example.test
tr -d '\n' <"$W/crlf.example.test.b64" >"$W/oneline.b64"
code=$(post simpleenroll "$W/oneline.b64" "$W/oneline.p7" -u "dev1:$PW")
check "simpleenroll: base64 on one line" test "$code" = 200
csr crlf2.example.test
sed 's/$/\r/' "$W/crlf2.example.test.b64" >"$W/crlf.b64"
code=$(post simpleenroll "$W/crlf.b64" "$W/crlf.p7" -u "dev1:$PW" -H 'Content-Transfer-Encoding: 7bit')
check "simpleenroll: CRLF lines and Content-Transfer-Encoding 7bit" test "$code" = 200
code=$(CTYPE='application/PKCS10; charset=utf-8' post simpleenroll "$W/dev1.example.test.b64" "$W/ct.p7" -u "dev1:$PW")
check "simpleenroll: media type parameters and case ignored" test "$code" = 200

echo "# /simplereenroll with the TLS client certificate"
cat "$W/dev1.pem" >"$W/dev1-client.pem"
code=$(post simplereenroll "$W/dev1.example.test.b64" "$W/re1.p7" --cert "$W/dev1-client.pem" --key "$W/dev1.example.test.key")
check "simplereenroll (client certificate): 200" test "$code" = 200
p7 "$W/re1.p7" "$W/re1.pem"
S2=$(serial "$W/re1.pem")
check "simplereenroll: new serial, verifies" bash -c "[ '$S2' != '$S1' ] && openssl verify -CAfile '$DATA/root.pem' -untrusted '$W/cacerts.pem' '$W/re1.pem' | grep -q OK"
check "simplereenroll: the ledger links the renewal to the old certificate" \
  test "$(sql "SELECT ltrim(renews_serial, '0') FROM certificates WHERE ltrim(serial, '0') = ltrim('$S2', '0')")" = "${S1##0}"
csr other.example.test
code=$(post simplereenroll "$W/other.example.test.b64" "$W/re2.p7" --cert "$W/dev1-client.pem" --key "$W/dev1.example.test.key")
check "simplereenroll with another subject/SAN: 403" test "$code" = 403
code=$(post simplereenroll "$W/dev1.example.test.b64" "$W/re3.p7" -u "dev1:$PW")
check "simplereenroll without a client certificate: 403" test "$code" = 403

echo "# client certificates: which labels accept them, and for what"
CERT=(--cert "$W/re1.pem" --key "$W/dev1.example.test.key")
csr dev2.example.test
code=$(post simpleenroll "$W/dev2.example.test.b64" "$W/dev2.p7" "${CERT[@]}")
check "label default (auth basic + reenroll): a client certificate does not authenticate simpleenroll (401)" \
  test "$code" = 401
code=$(post router/simpleenroll "$W/dev2.example.test.b64" "$W/dev2.p7" "${CERT[@]}")
check "label router (cert_names own): a name outside the certificate's own: 403" test "$code" = 403
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=dev1.example.test \
  -addext "subjectAltName=DNS:dev1.example.test" -keyout "$W/dev1b.key" -outform DER -out "$W/dev1b.der" 2>/dev/null
base64 "$W/dev1b.der" >"$W/dev1b.b64"
code=$(post router/simpleenroll "$W/dev1b.b64" "$W/dev1b.p7" "${CERT[@]}")
check "label router: the certificate's own names with a new key: 200" test "$code" = 200
p7 "$W/dev1b.p7" "$W/dev1b.pem"
check "  owner is the label's (network-team), requester the certificate's subject" \
  test "$(sql "SELECT owner || ' ' || requester FROM certificates WHERE ltrim(serial, '0') = ltrim('$(serial "$W/dev1b.pem")', '0')")" = "network-team est:router/CN=dev1.example.test"
code=$(post vpn/simpleenroll "$W/dev1b.b64" "$W/vpnc.p7" "${CERT[@]}")
check "label vpn (cert_profiles: vpn-gateway): a clientAuth certificate of the device profile: 403" test "$code" = 403
check "  refusal audited" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'failed' AND detail LIKE '%profile is not one this label accepts%'")" = 1

echo "# /serverkeygen"
csr kg.example.test
code=$(post serverkeygen "$W/kg.example.test.b64" "$W/kg.mp" -u "dev1:$PW")
check "serverkeygen: 200 multipart/mixed" bash -c "[ $code = 200 ] && grep -qi '^content-type: multipart/mixed; boundary=' '$W/kg.mp.h'"
"$PY" - "$W/kg.mp" "$(header "$W/kg.mp" content-type)" "$W" <<'PY'
import base64, email, sys
body, ctype, out = open(sys.argv[1], "rb").read(), sys.argv[2], sys.argv[3]
msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
parts = msg.get_payload()
assert parts[0].get_content_type() == "application/pkcs8" and parts[0]["Content-Transfer-Encoding"] == "base64"
assert parts[1].get_content_type() == "application/pkcs7-mime" and "certs-only" in parts[1]["Content-Type"]
open(out + "/kg.key.der", "wb").write(base64.b64decode(parts[0].get_payload()))
open(out + "/kg.p7b64", "wb").write(parts[1].get_payload().encode())
PY
check "serverkeygen: key part (application/pkcs8) then certificate part (certs-only)" test -s "$W/kg.key.der"
p7 "$W/kg.p7b64" "$W/kg.pem"
check "serverkeygen: certificate verifies" verify "$W/kg.pem"
check "serverkeygen: the returned key matches the certificate" \
  test "$(openssl x509 -in "$W/kg.pem" -noout -pubkey)" = "$(openssl pkey -inform DER -in "$W/kg.key.der" -pubout)"
check "serverkeygen: not the CSR's key" test "$(openssl x509 -in "$W/kg.pem" -noout -pubkey)" != "$(openssl pkey -in "$W/kg.example.test.key" -pubout)"
if [ -z "$DB_URL" ]; then
  check "serverkeygen: the generated key is nowhere in the ledger files" \
    "$PY" -c "
import glob, sys
from cryptography.hazmat.primitives.serialization import load_der_private_key
k = load_der_private_key(open(sys.argv[1], 'rb').read(), None).private_numbers().private_value.to_bytes(32, 'big')
sys.exit(any(k in open(f, 'rb').read() for f in glob.glob(sys.argv[2] + '/privca.db*')))" "$W/kg.key.der" "$DATA"
fi

echo "# /serverkeygen, the key encrypted to the client (AsymmetricDecryptKeyIdentifier)"
SK=("$PY" "$(dirname "$0")/serverkey.py")
"${SK[@]}" csrs "$W"
code=$(post serverkeygen "$W/kgenc.b64" "$W/kgenc.mp" -u "dev1:$PW")
check "serverkeygen (encrypted): 200" test "$code" = 200
check "serverkeygen (encrypted): key part application/pkcs7-mime; smime-type=server-generated-key, then certs-only" \
  "${SK[@]}" parts "$W/kgenc.mp" "$(header "$W/kgenc.mp" content-type)" "$W"
check "serverkeygen (encrypted): openssl cms decrypts it with the client's key" \
  openssl cms -decrypt -inform DER -in "$W/kgenc.env.der" -inkey "$W/kgenc.key" -binary -out "$W/kgenc.sd.der"
"${SK[@]}" wrap "$W/kgenc.sd.der" "$W/kgenc.sd.ci.der" 2>/dev/null
check "serverkeygen (encrypted): the key package is signed by the label's CA (openssl cms -verify)" \
  openssl cms -verify -inform DER -in "$W/kgenc.sd.ci.der" -CAfile "$DATA/root.pem" -certfile "$W/cacerts.pem" \
  -purpose any -binary -out "$W/kgenc.pkg.der"
check "serverkeygen (encrypted): an AsymmetricKeyPackage with one key" "${SK[@]}" unpack "$W/kgenc.pkg.der" "$W/kgenc.gen.der"
p7 "$W/kgenc.p7b64" "$W/kgenc.pem"
check "serverkeygen (encrypted): certificate verifies" verify "$W/kgenc.pem"
check "serverkeygen (encrypted): the decrypted key matches the certificate" \
  test "$(openssl x509 -in "$W/kgenc.pem" -noout -pubkey)" = "$(openssl pkey -inform DER -in "$W/kgenc.gen.der" -pubout 2>/dev/null)"
before=$(sql "SELECT COUNT(*) FROM certificates")
code=$(post serverkeygen "$W/kgenc-psk.b64" "$W/kgenc-psk.out" -u "dev1:$PW")
check "serverkeygen with DecryptKeyIdentifier (no pre-shared keys): 400" test "$code" = 400
code=$(post serverkeygen "$W/kgenc-unknown.b64" "$W/kgenc-unknown.out" -u "dev1:$PW")
check "serverkeygen naming an unknown key: 400 with a reason" \
  bash -c "[ $code = 400 ] && grep -q AsymmetricDecryptKeyIdentifier '$W/kgenc-unknown.out'"
check "  and nothing was issued" test "$(sql "SELECT COUNT(*) FROM certificates")" = "$before"

echo "# /fullcmc (independent client: cmc.py)"
if "$PY" "$(dirname "$0")/cmc.py" "$DATA/root.pem" "$EST" dev1 "$PW" "$W"; then ok "cmc.py passed"; else fail "cmc.py passed"; fi
check "fullcmc certificate verifies with openssl" verify "$W/cmc1.pem"

echo "# labels"
VPW=$(user gw1 vpn)
csr vpn1.example.test
code=$(post vpn/simpleenroll "$W/vpn1.example.test.b64" "$W/vpn1.p7" -u "gw1:$VPW")
p7 "$W/vpn1.p7" "$W/vpn1.pem"
check "label vpn: 200, vpn-gateway profile (ipsecIKE EKU)" \
  bash -c "[ $code = 200 ] && openssl x509 -in '$W/vpn1.pem' -noout -ext extendedKeyUsage | grep -q '1.3.6.1.5.5.7.3.17\|ipsec Internet Key Exchange'"
code=$(post vpn/simpleenroll "$W/vpn1.example.test.b64" "$W/vpn2.p7" -u "dev1:$PW")
check "label vpn: a user of another label gets 401" test "$code" = 401
RPW=$(user r1 router)
csr r1.example.test
code=$(post router/simpleenroll "$W/r1.example.test.b64" "$W/r1.p7" -u "r1:$RPW")
p7 "$W/r1.p7" "$W/r1.pem"
check "label router: 200" test "$code" = 200
check "  owner set by the label (network-team)" \
  test "$(sql "SELECT owner FROM certificates WHERE ltrim(serial, '0') = ltrim('$(serial "$W/r1.pem")', '0')")" = network-team
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$EST/nosuchlabel/cacerts")
check "unknown label: 404" test "$code" = 404

echo "# CN-only requests on the default label (profile device: san.from_cn = \"dns-if-hostname\")"
# cnreq NAME SUBJ: key + base64 PKCS#10 with a subject and nothing else, in $W/NAME.{key,b64}.
cnreq() {
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "$2" -keyout "$W/$1.key" \
    -outform DER -out "$W/$1.der" 2>/dev/null
  base64 "$W/$1.der" >"$W/$1.b64"
}
# cn_cert CERT SUBJECT SAN: verifies; subject (RFC 2253) and subjectAltName (as openssl prints
# it, spaces removed; "" for none) as given.
cn_cert() {
  verify "$1" &&
    [ "$(openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')" = "$2" ] &&
    [ "$(openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ')" = "$3" ]
}
cnreq cn1 /CN=cn1.example.test
check "openssl req: the CSR has no subjectAltName" \
  bash -c "! openssl req -inform DER -in '$W/cn1.der' -noout -text | grep -q 'Alternative Name'"
code=$(post simpleenroll "$W/cn1.b64" "$W/cn1.p7" -u "dev1:$PW")
check "simpleenroll (Basic), CN-only host name: 200" test "$code" = 200
p7 "$W/cn1.p7" "$W/cn1.pem"
check "  verifies; subjectAltName DNS:cn1.example.test copied from the CN" \
  cn_cert "$W/cn1.pem" CN=cn1.example.test DNS:cn1.example.test
cnreq cn2 /CN=SN-0042-AB
code=$(post simpleenroll "$W/cn2.b64" "$W/cn2.p7" -u "dev1:$PW")
check "simpleenroll, CN-only serial number: 200" test "$code" = 200
p7 "$W/cn2.p7" "$W/cn2.pem"
check "  verifies; CN-only certificate, no subjectAltName" cn_cert "$W/cn2.pem" CN=SN-0042-AB ""
code=$(post simplereenroll "$W/cn1.b64" "$W/cn1re.p7" --cert "$W/cn1.pem" --key "$W/cn1.key")
check "simplereenroll with the same CN-only CSR (the certificate's SAN is its CN's): 200" test "$code" = 200
p7 "$W/cn1re.p7" "$W/cn1re.pem"
check "  verifies, same names" cn_cert "$W/cn1re.pem" CN=cn1.example.test DNS:cn1.example.test
cnreq cnkg /CN=cnkg.example.test
code=$(post serverkeygen "$W/cnkg.b64" "$W/cnkg.mp" -u "dev1:$PW")
check "serverkeygen, CN-only host name: 200" test "$code" = 200
"$PY" - "$W/cnkg.mp" "$(header "$W/cnkg.mp" content-type)" "$W" <<'PY'
import base64, email, sys
body, ctype, out = open(sys.argv[1], "rb").read(), sys.argv[2], sys.argv[3]
parts = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body).get_payload()
open(out + "/cnkg.key.der", "wb").write(base64.b64decode(parts[0].get_payload()))
open(out + "/cnkg.p7b64", "wb").write(parts[1].get_payload().encode())
PY
p7 "$W/cnkg.p7b64" "$W/cnkg.pem"
check "  verifies; subjectAltName DNS:cnkg.example.test copied from the CN" \
  cn_cert "$W/cnkg.pem" CN=cnkg.example.test DNS:cnkg.example.test
check "  the returned key matches the certificate" \
  test "$(openssl x509 -in "$W/cnkg.pem" -noout -pubkey)" = "$(openssl pkey -inform DER -in "$W/cnkg.key.der" -pubout)"

echo "# approval gate (label gated)"
GPW=$(user g1 gated)
csr gated1.example.test
code=$(post gated/simpleenroll "$W/gated1.example.test.b64" "$W/g1.p7" -u "g1:$GPW")
check "gated: 202 with Retry-After in seconds" bash -c "[ $code = 202 ] && grep -qiE '^retry-after: [0-9]+' '$W/g1.p7.h'"
code=$(post gated/simpleenroll "$W/gated1.example.test.b64" "$W/g1.p7" -u "g1:$GPW")
check "gated: the same request again is still 202" test "$code" = 202
check "  exactly one pending approval" test "$(sql "SELECT COUNT(*) FROM approvals WHERE status = 'pending'")" = 1
id=$(sql "SELECT id FROM approvals WHERE status = 'pending'")
check "  an approver approves through the admin API" api_approve "$id"
code=$(post gated/simpleenroll "$W/gated1.example.test.b64" "$W/g1.p7" -u "g1:$GPW")
p7 "$W/g1.p7" "$W/g1.pem"
check "gated: once approved, the same request gets the certificate" \
  bash -c "[ $code = 200 ] && openssl verify -CAfile '$DATA/root.pem' -untrusted '$W/cacerts.pem' '$W/g1.pem' | grep -q OK"

echo "# refusals"
code=$(post simpleenroll "$W/dev1.example.test.b64" "$W/n1" )
check "no credentials: 401 with WWW-Authenticate: Basic" bash -c "[ $code = 401 ] && grep -qi '^www-authenticate: Basic realm=' '$W/n1.h'"
code=$(post simpleenroll "$W/dev1.example.test.b64" "$W/n2" -u "dev1:wrong-password")
check "wrong password: 401" test "$code" = 401
head -c 300 /dev/urandom | base64 >"$W/garbage.b64"
code=$(post simpleenroll "$W/garbage.b64" "$W/n3" -u "dev1:$PW")
check "garbage CSR: 400" test "$code" = 400
printf 'this is *not* base64!\n' >"$W/notb64"
code=$(post simpleenroll "$W/notb64" "$W/n4" -u "dev1:$PW")
check "non-base64 body: 400" test "$code" = 400
"$PY" -c "import sys; d = bytearray(open(sys.argv[1], 'rb').read()); d[-3] ^= 1; open(sys.argv[2], 'wb').write(d)" \
  "$W/dev1.example.test.der" "$W/badsig.der"
base64 "$W/badsig.der" >"$W/badsig.b64"
code=$(post simpleenroll "$W/badsig.b64" "$W/n5" -u "dev1:$PW")
check "CSR with a bad signature: 400" test "$code" = 400
code=$(CTYPE=text/plain post simpleenroll "$W/dev1.example.test.b64" "$W/n6" -u "dev1:$PW")
check "wrong content type: 415" test "$code" = 415
check "  refusals are text/plain" grep -qi '^content-type: text/plain' "$W/n6.h"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$EST/simpleenroll")
check "GET /simpleenroll: 405" test "$code" = 405
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$EST/nosuchop")
check "unknown operation: 404" test "$code" = 404
before=$(cert_count)
check "refusals issued nothing" test "$(cert_count)" = "$before"
check_old_tls_refused tls1_1 8443

echo "# Basic: 1,000 wrong passwords from another address leave memory bounded and the device enrolling"
VPW=$(user victim default)
csr victim.example.test
code=$(post simpleenroll "$W/victim.example.test.b64" "$W/victim.p7" -u "victim:$VPW")
check "the device enrolls (its password is remembered)" test "$code" = 200
"$PY" "$(dirname "$0")/basic_auth.py" burst "$EST" "$DATA/root.pem" victim "$VPW" "$W/victim.example.test.b64" "$SERVE_PID" 20 \
  >"$W/burst.out" 2>&1
check "basic_auth.py burst" test $? = 0
sed 's/^/    /' "$W/burst.out"
check "  failed checks audited within the budgets only (at most 20 for the address)" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'failed' AND actor = 'est:default/victim'")" -le 20

echo "# re-enrollment with a revoked client certificate"
privca_cli revoke --serial "$S2" --reason keyCompromise >/dev/null
code=$(post simplereenroll "$W/dev1.example.test.b64" "$W/rv.p7" --cert "$W/re1.pem" --key "$W/dev1.example.test.key")
check "revoked client certificate: 403" test "$code" = 403
check "  refusal audited" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'failed' AND detail LIKE '%revoked%' AND ltrim(serial, '0') = ltrim('$S2', '0')")" = 1

echo "# an IDevID (bootstrap CA) certificate enrolls its own serial number as CN, nothing else"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=Acme IDevID CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout "$W/idevid-ca.key" -out "$DATA/idevid-ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/serialNumber=SN-4711/CN=Acme router" \
  -keyout "$W/idevid.key" -out "$W/idevid.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$W/idevid.ext"
openssl x509 -req -in "$W/idevid.csr" -CA "$DATA/idevid-ca.pem" -CAkey "$W/idevid-ca.key" -CAcreateserial -days 30 \
  -extfile "$W/idevid.ext" -out "$W/idevid.pem" 2>/dev/null
stop_privca
[ "$CONFIG" = "$ROOT/conf/privca.dev.toml" ] &&
  sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$CONFIG" >"$DATA/privca.toml" && CONFIG="$DATA/privca.toml"
# The bootstrap CA, a label for it, and no failure budgets (the timing check below makes 400
# failed checks).
sed -i -e '/^\[est\]$/a bootstrap_ca = ["idevid-ca.pem"]\naddress_failures_per_minute = 0\nuser_failures_per_minute = 0' "$CONFIG"
cat >>"$CONFIG" <<'TOML'

[est.labels.idevid]
profile = "tls-client"
auth = ["cert"]
cert_issuers = ["bootstrap"]
cert_names = "serial-number"

[est.labels.servers]
profile = "tls-server"
TOML
start_privca || exit 1
IDEV=(--cert "$W/idevid.pem" --key "$W/idevid.key")
enroll_as() { # SUBJ [SAN] → HTTP status of idevid/simpleenroll with the IDevID
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "$1" ${2:+-addext "subjectAltName=$2"} \
    -keyout "$W/ld.key" -outform DER -out "$W/ld.der" 2>/dev/null
  base64 "$W/ld.der" >"$W/ld.b64"
  post idevid/simpleenroll "$W/ld.b64" "$W/ld.p7" "${IDEV[@]}"
}
check "IDevID enrolls CN=<its serialNumber>: 200" test "$(enroll_as /CN=SN-4711)" = 200
p7 "$W/ld.p7" "$W/ldevid.pem"
check "  the LDevID verifies and names SN-4711" \
  bash -c "openssl verify -CAfile '$DATA/root.pem' -untrusted '$W/cacerts.pem' '$W/ldevid.pem' | grep -q OK && openssl x509 -in '$W/ldevid.pem' -noout -subject | grep -q SN-4711"
check "IDevID enrolling another CN: 403" test "$(enroll_as /CN=SN-4712)" = 403
check "IDevID adding a SAN: 403" test "$(enroll_as /CN=SN-4711 DNS:evil.example.test)" = 403
code=$(post router/simpleenroll "$W/ld.b64" "$W/ld2.p7" "${IDEV[@]}")
check "IDevID on a label without \"bootstrap\" in cert_issuers: 403" test "$code" = 403

echo "# a label on tls-server, which still requires a SAN: the refusal names the rule and the way out"
SPW=$(user s1 servers)
code=$(post servers/simpleenroll "$W/cn1.b64" "$W/srv.out" -u "s1:$SPW")
check "CN-only simpleenroll on label servers (tls-server): 403" test "$code" = 403
check "  body: profile tls-server requires at least one subjectAltName (dns or ip) (san.required): add one" \
  grep -qx '403 profile tls-server requires at least one subjectAltName (dns or ip) (san.required): add one to the request' "$W/srv.out"

echo "# Basic: an unknown user costs the same argon2 work as a known one"
"$PY" "$(dirname "$0")/basic_auth.py" timing "$EST" "$DATA/root.pem" dev1 unused 200 >"$W/timing.out" 2>&1
check "basic_auth.py timing (200 tries each)" test $? = 0
sed 's/^/    /' "$W/timing.out"
finish
