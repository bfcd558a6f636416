#!/usr/bin/env bash
# Client-certificate login and the PKCS#12 download on a real `privca serve`, with curl and
# OpenSSL as the peers. A client CA and three client certificates are made with openssl; the
# config gets `[admin] client_ca` with alice mapped by subject and bob by fingerprint. Then:
# alice's certificate reads the API as operator; bob's as auditor, and is refused (403) what an
# auditor may not do; an unmapped certificate of the same CA, a self-signed one with alice's
# subject and one of another CA are refused 401 and audited; no certificate is 401; alice asks
# for a certificate with a server-generated key (`POST /api/v1/certificates/keystore`, with
# X-Requested-With; without it 403) and `openssl pkcs12` opens the PKCS#12 with the password
# (PBES2 AES-256-CBC, MAC SHA-256), its key matching its certificate, which `openssl verify`
# accepts under privca's root; the dashboard's certificate login opens a session; password
# login still works; the audit chain verifies.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
ADMIN=https://127.0.0.1:9443
PKI="$DATA/client-pki"
mkdir -p "$PKI"

# The client CA and its certificates (clientAuth), plus a rogue self-signed "alice" and a
# certificate from another CA.
ca() { # ca NAME
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/O=Interop/CN=$1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -keyout "$PKI/$1.key" -out "$PKI/$1.pem" 2>/dev/null
}
client() { # client CA NAME
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=Interop/CN=$2" \
    -keyout "$PKI/$2.key" -out "$PKI/$2.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" "subjectAltName=email:$2@interop.test" >"$PKI/$2.ext"
  openssl x509 -req -in "$PKI/$2.csr" -CA "$PKI/$1.pem" -CAkey "$PKI/$1.key" -CAcreateserial -days 1 \
    -extfile "$PKI/$2.ext" -out "$PKI/$2.pem" 2>/dev/null
}
ca client-ca
ca other-ca
client client-ca alice
client client-ca bob
client client-ca mallory
client other-ca eve
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/O=Interop/CN=alice" \
  -addext extendedKeyUsage=clientAuth -keyout "$PKI/rogue.key" -out "$PKI/rogue.pem" 2>/dev/null
check "openssl made the client CA and certificates" test -s "$PKI/alice.pem" -a -s "$PKI/rogue.pem" -a -s "$PKI/eve.pem"
bob_fp=$(openssl x509 -in "$PKI/bob.pem" -outform DER | sha256sum | cut -d' ' -f1)
alice_subject=$(openssl x509 -in "$PKI/alice.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')

# The configuration: the dev config (or its PostgreSQL copy) with [admin] added.
sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$CONFIG" >"$DATA/privca-mtls.toml"
cat >>"$DATA/privca-mtls.toml" <<TOML

[admin]
client_ca = "client-pki/client-ca.pem"

[admin.client_certs]
alice = "subject:$alice_subject"
bob = "fingerprint:$bob_fp"
TOML
CONFIG="$DATA/privca-mtls.toml"
start_privca || exit 1

(umask 077 && printf '%s\n' 'mtls interop password, long enough' >"$DATA/pw")
privca_cli admin user add alice --role operator --password-file "$DATA/pw" >/dev/null 2>&1
privca_cli admin user add bob --role auditor --password-file "$DATA/pw" >/dev/null 2>&1
privca_cli admin user add mallory --role admin --password-file "$DATA/pw" >/dev/null 2>&1
check "users alice (operator), bob (auditor) and mallory (admin, not mapped)" \
  test "$(sql "SELECT COUNT(*) FROM admin_users")" = 3

CURL=(curl -sk --max-time 20)
code() { # code CERT METHOD PATH [curl args...]: the HTTP status with CERT's certificate (or none)
  local cert=$1 method=$2 path=$3; shift 3
  local tls=()
  [ "$cert" != none ] && tls=(--cert "$PKI/$cert.pem" --key "$PKI/$cert.key")
  "${CURL[@]}" "${tls[@]}" -o "$DATA/body" -w '%{http_code}' -X "$method" "$@" "$ADMIN$path"
}
check "alice's certificate lists certificates (200)" test "$(code alice GET /api/v1/certificates?limit=1)" = 200
check "alice (operator) may not read the access list (403)" test "$(code alice GET /api/v1/users)" = 403
check "bob's certificate (by fingerprint) reads the audit log as auditor (200)" test "$(code bob GET /api/v1/audit?limit=1)" = 200
check "bob may not revoke (403)" test "$(code bob POST /api/v1/certificates/00/revoke -H 'X-Requested-With: curl' -H 'Content-Type: application/json' -d '{}')" = 403
failed_before=$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'admin-login-failed'")
check "mallory's certificate, from the client CA but mapped to nobody, is refused (401)" \
  test "$(code mallory GET /api/v1/certificates)" = 401
check "  as a problem document" grep -q 'urn:privca:problem' "$DATA/body"
check "a self-signed certificate with alice's subject is refused (401)" test "$(code rogue GET /api/v1/certificates)" = 401
check "a certificate of another CA is refused (401)" test "$(code eve GET /api/v1/certificates)" = 401
check "no certificate and no token: 401" test "$(code none GET /api/v1/certificates)" = 401
check "the three refused certificates audited as failed logins, with their fingerprints" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'admin-login-failed' AND detail LIKE '%client-certificate%'")" = $((failed_before + 3))
mallory_fp=$(openssl x509 -in "$PKI/mallory.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "  mallory's by its fingerprint" test "$(sql "SELECT COUNT(*) FROM audit_events WHERE detail LIKE '%$mallory_fp%'")" = 1

# A certificate for a server-generated key, as PKCS#12.
PW='interop keystore pass phrase'
body='{"profile":"tls-server","names":["p12.interop.test","127.0.0.1"],"owner":"team-interop","password":"'"$PW"'"}'
certs_before=$(sql "SELECT COUNT(*) FROM certificates")
check "a keystore request without X-Requested-With is refused (403)" \
  test "$(code alice POST /api/v1/certificates/keystore -H 'Content-Type: application/json' -d "$body")" = 403
check "  and issues nothing" test "$(sql "SELECT COUNT(*) FROM certificates")" = "$certs_before"
status=$("${CURL[@]}" --cert "$PKI/alice.pem" --key "$PKI/alice.key" -D "$DATA/p12.headers" -o "$DATA/out.p12" -w '%{http_code}' \
  -X POST -H 'X-Requested-With: curl' -H 'Content-Type: application/json' -d "$body" "$ADMIN/api/v1/certificates/keystore")
check "POST /api/v1/certificates/keystore with alice's certificate: 201" test "$status" = 201
check "  application/x-pkcs12" grep -qi '^content-type: application/x-pkcs12' "$DATA/p12.headers"
openssl pkcs12 -info -nodes -passin "pass:$PW" -in "$DATA/out.p12" >"$DATA/p12.info" 2>&1
check "openssl pkcs12 -info opens it with the password" grep -q 'BEGIN PRIVATE KEY' "$DATA/p12.info"
check "  key shrouded with PBES2, PBKDF2, AES-256-CBC" grep -q 'Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC' "$DATA/p12.info"
check "  MAC SHA-256" grep -q 'MAC: sha256' "$DATA/p12.info"
check "  a wrong password opens nothing" bash -c "! openssl pkcs12 -info -nodes -passin pass:wrong -in '$DATA/out.p12' >/dev/null 2>&1"
openssl pkcs12 -in "$DATA/out.p12" -passin "pass:$PW" -nocerts -nodes -out "$DATA/p12.key" 2>/dev/null
openssl pkcs12 -in "$DATA/out.p12" -passin "pass:$PW" -clcerts -nokeys -out "$DATA/p12.crt" 2>/dev/null
openssl pkcs12 -in "$DATA/out.p12" -passin "pass:$PW" -cacerts -nokeys -out "$DATA/p12.chain" 2>/dev/null
check "  its key is its certificate's" \
  test "$(openssl pkey -in "$DATA/p12.key" -pubout 2>/dev/null)" = "$(openssl x509 -in "$DATA/p12.crt" -noout -pubkey 2>/dev/null)"
check "  openssl verify accepts the certificate under privca's root with the bundled chain" \
  openssl verify -CAfile "$DATA/root.pem" -untrusted "$DATA/p12.chain" "$DATA/p12.crt"
serial=$(openssl x509 -in "$DATA/p12.crt" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
check "the ledger holds it, requested by admin:alice, owned by team-interop" \
  test "$(sql "SELECT requester || ' ' || owner FROM certificates WHERE LTRIM(serial, '0') = '$serial'")" = "admin:alice team-interop"
check "  issuance audited (reserve, signed, committed) as admin:alice" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE LTRIM(serial, '0') = '$serial' AND actor = 'admin:alice' AND event IN ('reserve', 'signed', 'committed')")" -ge 2
check "  neither the password nor the key in the audit log" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE detail LIKE '%$PW%' OR detail LIKE '%PRIVATE KEY%'")" = 0

# The dashboard: the certificate login button, then a session.
jar="$DATA/jar"
"${CURL[@]}" --cert "$PKI/alice.pem" --key "$PKI/alice.key" -c "$jar" -o "$DATA/login.html" "$ADMIN/ui/login"
check "the login page offers the certificate login" grep -q 'Log in with your client certificate' "$DATA/login.html"
csrf=$(grep -o 'name="csrf" value="[^"]*"' "$DATA/login.html" | head -1 | sed 's/.*value="//; s/"$//')
status=$("${CURL[@]}" --cert "$PKI/alice.pem" --key "$PKI/alice.key" -b "$jar" -c "$jar" -o /dev/null -w '%{http_code}' \
  --data-urlencode "csrf=$csrf" --data-urlencode "code=" "$ADMIN/ui/login/certificate")
check "POST /ui/login/certificate: 303 to the dashboard" test "$status" = 303
check "  a session cookie" grep -q privca_session "$jar"
check "  the session shows alice (operator)" bash -c "curl -sk -b '$jar' '$ADMIN/ui/certificates' | grep -q 'alice (operator)'"
# Password login still works, without a certificate.
jar2="$DATA/jar2"
"${CURL[@]}" -c "$jar2" -o "$DATA/login2.html" "$ADMIN/ui/login"
check "  (no certificate: no certificate button)" bash -c "! grep -q 'client certificate' '$DATA/login2.html'"
csrf=$(grep -o 'name="csrf" value="[^"]*"' "$DATA/login2.html" | head -1 | sed 's/.*value="//; s/"$//')
status=$("${CURL[@]}" -b "$jar2" -c "$jar2" -o /dev/null -w '%{http_code}' --data-urlencode "csrf=$csrf" \
  --data-urlencode user=alice --data-urlencode "password=$(cat "$DATA/pw")" --data-urlencode code= "$ADMIN/ui/login")
check "password login still works (303, session)" bash -c "[ '$status' = 303 ] && grep -q privca_session '$jar2'"
check "two dashboard logins audited, one by certificate" \
  test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'admin-login' AND detail LIKE '%client-certificate%'")" = 1
check "audit chain verifies" privca_cli audit verify
stop_privca
check "check-config accepts [admin] client_ca and client_certs" privca_cli check-config
sed -i 's#^bob = .*#bob = "fingerprint:00"#' "$CONFIG"
check "  and names a malformed mapping" \
  bash -c "'$PRIVCA_BIN' --config '$CONFIG' --data-dir '$DATA' check-config 2>&1 | grep -q admin.client_certs.bob"
finish
