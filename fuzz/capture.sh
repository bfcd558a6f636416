#!/usr/bin/env bash
# Captures fuzz seeds from the real clients the interop scripts drive, as they talk to privca:
#
#   flock -o /tmp/privca-interop.lock bash fuzz/capture.sh
#
# Run by hand, not by CI; the seeds it writes into fuzz/seeds/<target>/ are committed. It
# starts a dev privca as the interop scripts do (interop/lib.sh: PRIVCA_BIN, the dev ports, a
# fresh data directory, INTEROP_PG_URL for PostgreSQL) with its URL bases (urls.https_base,
# urls.http_base) on mitmdump, mitmproxy's proxy in reverse-proxy mode on free loopback ports:
# every client follows the ACME directory, the certificates' OCSP URL and the SCEP and EST
# URLs into the proxy without needing proxy support of its own, and trusts the proxy's CA
# (REQUESTS_CA_BUNDLE, LEGO_CA_CERTIFICATES, curl --cacert; for uacme, which reads no CA
# variable, the system store for the time of its run, as interop/acme/uacme.sh does).
# capture_addon.py logs every request; capture_seeds.py turns the log into seeds named
# CLIENT-OPERATION, one per client and operation, identical bytes once.
#
#   certbot     acme_jws: newAccount (RS256), with EAB, account update and deactivation,
#               newOrder, challenge, finalize, POST-as-GET, revokeCert by the account key and
#               by the certificate key; csr: its finalize CSRs (RSA, P-256); ocsp_request: the
#               request of `certbot certificates`.
#   lego        acme_jws: newAccount (ES256), with EAB, onlyReturnExisting, newOrder, http-01 and
#               tls-alpn-01 challenges, finalize, POST-as-GET, revokeCert; csr: its CSRs.
#   uacme       acme_jws: newAccount (ES384), with EAB, account update, keyChange, newOrder,
#               challenge, finalize, POST-as-GET, revokeCert (account and certificate key),
#               deactivation; csr: its CSRs; ocsp_request: GnuTLS's request when uacme checks
#               a certificate it already has.
#   curl        est_body: simpleenroll (Basic; base64 wrapped, on one line, CRLF lines),
#               simplereenroll (TLS client certificate, through a second proxy that presents
#               it), serverkeygen, the `Authorization: Basic` value; ocsp_get: GET paths
#               (plain, percent-encoded, after a doubled slash) as openssl-ocsp.sh sends them.
#   openssl     ocsp_request: `openssl ocsp` POSTs (nonce, no nonce, SHA-256 CertID, two CertIDs).
#   scepclient  scep_message: micromdm's GetCACaps and GetCACert queries and its PKCSReq
#               (name rsa, DES); csr: the CSR it kept in its working directory.
#   certmonger  scep_message: scep-submit's GetCACaps and GetCACert queries, and the PKCSReq
#               the certmonger daemon (session bus, its own store) builds for `getcert request`.
#
# mitmproxy 12 needs Python >= 3.12: it lives in a venv of its own, CAPTURE_VENV (default
# .venv-capture, git-ignored), made on the first run with pip. A client whose steps all failed
# keeps its old seeds; the others' are replaced. Ends with "N passed, N failed" like the interop
# scripts.
set -uo pipefail
FUZZ=$(cd "$(dirname "$0")" && pwd)
source "$FUZZ/../interop/lib.sh"
source "$ROOT/interop/acme/lib-acme.sh"
CLIENTS=(certbot lego uacme curl openssl scepclient certmonger)
SEEDS="$FUZZ/seeds"

# --- mitmproxy
VENV="${CAPTURE_VENV:-$ROOT/.venv-capture}"
if [ ! -x "$VENV/bin/mitmdump" ]; then
  py=""
  for p in python3.13 python3.12 python3 "$(pyenv root 2>/dev/null)"/versions/3.1[2-9]*/bin/python3; do
    if "$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      py=$p
      break
    fi
  done
  [ -n "$py" ] || { echo "mitmproxy 12 needs Python >= 3.12; none found" >&2; exit 1; }
  "$py" -m venv "$VENV" && "$VENV/bin/pip" install -q 'mitmproxy>=12,<13' || exit 1
fi
echo "mitmproxy $("$VENV/bin/mitmdump" --version | awk '/^Mitmproxy/ {print $2}')"

fresh_data_dir
CAP="$DATA/capture"
W="$CAP/work"
mkdir -p "$W"
export CAPTURE_LOG="$CAP/requests.jsonl" CAPTURE_TAG="$CAP/tag"
# tag CLIENT[:LABEL]: who sends the requests from now on (capture_addon.py reads it).
tag() { printf '%s\n' "$1" >"$CAPTURE_TAG"; }
tag unknown

MITM_PIDS=()
TRUST=""
stop_mitm() {
  local p
  for p in "${MITM_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  MITM_PIDS=()
}
capture_cleanup() {
  stop_mitm
  if [ -n "$TRUST" ]; then
    rm -f "$TRUST"
    update-ca-certificates --fresh >/dev/null 2>&1
  fi
  acme_cleanup
}
trap capture_cleanup EXIT

# start_mitm PORT UPSTREAM [mitmdump options...]: a recording reverse proxy on 127.0.0.1:PORT.
# The upstream is this script's own privca on loopback; its TLS certificate is not checked.
start_mitm() {
  local port=$1 upstream=$2
  shift 2
  "$VENV/bin/mitmdump" -q --set confdir="$CAP/mitm" --set ssl_insecure=true -s "$FUZZ/capture_addon.py" \
    --mode "reverse:$upstream@127.0.0.1:$port" "$@" >>"$CAP/mitmdump.log" 2>&1 &
  MITM_PIDS+=($!)
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "mitmdump did not start on :$port; log:" >&2
  tail -n 20 "$CAP/mitmdump.log" >&2
  return 1
}

PS=$(free_port)
PH=$(free_port)
sed -e "s#^https_base = .*#https_base = \"https://127.0.0.1:$PS\"#" -e "s#^http_base = .*#http_base = \"http://127.0.0.1:$PH\"#" \
  -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$CONFIG" >"$DATA/capture.toml"
CONFIG="$DATA/capture.toml"
start_challtestsrv || exit 1
start_privca || exit 1
start_mitm "$PS" https://127.0.0.1:8443 || exit 1
start_mitm "$PH" http://127.0.0.1:8080 || exit 1
CA="$CAP/mitm/mitmproxy-ca-cert.pem"
DIR="https://127.0.0.1:$PS/acme/directory"
HTTP01=(--http-01-address 127.0.0.1 --http-01-port 5002)
# eab OWNER: "KID HMAC" of a new EAB key.
eab() { privca_cli acme eab add --owner "$1" | awk '/^kid:/ {k=$2} /^hmac_key:/ {h=$2} END {print k, h}'; }

echo "# certbot $(certbot --version 2>&1 | awk '{print $2}')"
tag certbot
export REQUESTS_CA_BUNDLE="$CA"
CB=(certbot --server "$DIR" --config-dir "$W/cb" --work-dir "$W/cb" --logs-dir "$W/cb/logs" -n)
check "register" "${CB[@]}" register --agree-tos -m one@privca.test
check "update_account" "${CB[@]}" update_account -m two@privca.test
check "http-01, RSA key" "${CB[@]}" certonly --standalone "${HTTP01[@]}" --key-type rsa --cert-name one -d one.privca.test
check "http-01, two names, ECDSA key" "${CB[@]}" certonly --standalone "${HTTP01[@]}" --key-type ecdsa --cert-name two \
  -d a.privca.test -d b.privca.test
check "certificates (checks OCSP)" "${CB[@]}" certificates
check "revoke by the account key" "${CB[@]}" revoke --cert-path "$W/cb/live/one/cert.pem" --reason keycompromise \
  --no-delete-after-revoke
check "revoke by the certificate key" "${CB[@]}" revoke --cert-path "$W/cb/live/two/cert.pem" \
  --key-path "$W/cb/live/two/privkey.pem" --reason superseded --no-delete-after-revoke
check "unregister" "${CB[@]}" unregister
read -r kid hmac <<<"$(eab capture-certbot)"
check "register with EAB" certbot --server "$DIR" --config-dir "$W/cb2" --work-dir "$W/cb2" --logs-dir "$W/cb2/logs" -n \
  register --agree-tos -m three@privca.test --eab-kid "$kid" --eab-hmac-key="$hmac"
unset REQUESTS_CA_BUNDLE

echo "# lego $(lego --version 2>&1 | awk '{print $3}')"
tag lego
export LEGO_CA_CERTIFICATES="$CA"
L=(lego --server "$DIR" --path "$W/lego" --email lego@privca.test --accept-tos)
check "register + http-01, two names, EC P-256" "${L[@]}" --key-type ec256 --domains la.privca.test \
  --domains lb.privca.test --http --http.port 127.0.0.1:5002 run
check "tls-alpn-01, RSA key" "${L[@]}" --key-type rsa2048 --domains lalpn.privca.test --tls --tls.port 127.0.0.1:5001 run
check "revoke, reason cessationOfOperation" "${L[@]}" --domains la.privca.test revoke --reason 5
read -r kid hmac <<<"$(eab capture-lego)"
check "register with EAB + http-01" lego --server "$DIR" --path "$W/lego-eab" --email eab@privca.test --accept-tos \
  --eab --kid "$kid" --hmac="$hmac" --domains leab.privca.test --http --http.port 127.0.0.1:5002 run
unset LEGO_CA_CERTIFICATES

echo "# uacme $(dpkg-query -W -f='${Version}' uacme 2>/dev/null)"
tag uacme
TRUST=/usr/local/share/ca-certificates/privca-capture-$$.crt
cp "$CA" "$TRUST" && update-ca-certificates >/dev/null 2>&1
serve_webroot "$W/www" || exit 1
uacme_http01_hook "$W/hook.sh" "$W/www"
U=(uacme -a "$DIR" -c "$W/uacme" -y -h "$W/hook.sh")
check "new (EC P-384 account key)" "${U[@]}" -t EC -b 384 new uacme@privca.test
check "update" "${U[@]}" update uacme2@privca.test
check "issue, http-01, EC P-256" "${U[@]}" -t EC -b 256 issue ua.privca.test
# Exit 1: the certificate it has is still good (after an OCSP check), nothing issued.
check "issue again: kept after checking OCSP" bash -c '"$@"; [ $? = 1 ]' _ "${U[@]}" issue ua.privca.test
check "issue, http-01, RSA 2048, two names" "${U[@]}" -t RSA -b 2048 issue ub.privca.test uc.privca.test
check "newkey (keyChange to EC P-256)" "${U[@]}" -t EC -b 256 newkey
check "revoke by the account key" "${U[@]}" -r 4 revoke "$W/uacme/ua.privca.test/cert.pem"
check "revoke by the certificate key" "${U[@]}" revoke "$W/uacme/ub.privca.test/cert.pem" \
  "$W/uacme/private/ub.privca.test/key.pem"
check "deactivate" "${U[@]}" deactivate
read -r kid hmac <<<"$(eab capture-uacme)"
check "new with EAB" uacme -a "$DIR" -c "$W/uacme-eab" -y -e "$kid:$hmac" new eab@privca.test
stop_webroot
rm -f "$TRUST"
update-ca-certificates --fresh >/dev/null 2>&1
TRUST=""

echo "# EST with curl $(curl --version | awk 'NR == 1 {print $2}')"
tag curl
PC=$(free_port)
EST="https://127.0.0.1:$PS/.well-known/est"
CURL=(curl -sS --cacert "$CA" --tlsv1.2)
PW=$(privca_cli est user add dev1 --label default | tail -n 1)
# csr NAME: key and base64 PKCS#10 (76 columns) for DNS:NAME in $W/NAME.{key,der,b64}.
csr() {
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$1" -addext "subjectAltName=DNS:$1" \
    -keyout "$W/$1.key" -outform DER -out "$W/$1.der" 2>/dev/null
  base64 "$W/$1.der" >"$W/$1.b64"
}
# post URL BODY OUT [curl args...]: HTTP status.
post() {
  local url=$1 body=$2 out=$3
  shift 3
  "${CURL[@]}" -o "$out" -w '%{http_code}' -H 'Content-Type: application/pkcs10' --data-binary @"$body" "$@" "$url"
}
csr e1.example.test
check "simpleenroll (Basic, wrapped base64)" test "$(post "$EST/simpleenroll" "$W/e1.example.test.b64" "$W/e1.p7" -u "dev1:$PW")" = 200
csr e2.example.test
tr -d '\n' <"$W/e2.example.test.b64" >"$W/e2.b64"
check "simpleenroll, base64 on one line" test "$(post "$EST/simpleenroll" "$W/e2.b64" "$W/e2.p7" -u "dev1:$PW")" = 200
csr e3.example.test
sed 's/$/\r/' "$W/e3.example.test.b64" >"$W/e3.b64"
check "simpleenroll, CRLF lines" test "$(post "$EST/simpleenroll" "$W/e3.b64" "$W/e3.p7" -u "dev1:$PW")" = 200
csr kg.example.test
check "serverkeygen" test "$(post "$EST/serverkeygen" "$W/kg.example.test.b64" "$W/kg.mp" -u "dev1:$PW")" = 200
# simplereenroll authenticates with the TLS client certificate: a second proxy presents it.
tr -d '\r' <"$W/e1.p7" | base64 -d | openssl pkcs7 -inform DER -print_certs 2>/dev/null | openssl x509 >"$W/client.pem"
cat "$W/e1.example.test.key" >>"$W/client.pem"
openssl req -new -key "$W/e1.example.test.key" -subj /CN=e1.example.test -addext "subjectAltName=DNS:e1.example.test" \
  -outform DER -out "$W/re.der" && base64 "$W/re.der" >"$W/re.b64"
start_mitm "$PC" https://127.0.0.1:8443 --set client_certs="$W/client.pem" || exit 1
check "simplereenroll (TLS client certificate)" \
  test "$(post "https://127.0.0.1:$PC/.well-known/est/simplereenroll" "$W/re.b64" "$W/re.p7")" = 200

echo "# OCSP with openssl $(openssl version | awk '{print $2}') and curl"
OCSP="http://127.0.0.1:$PH/ocsp"
C1="$W/lego/certificates/lalpn.privca.test.crt"
C2="$W/cb/live/two/cert.pem"
ocsp() { openssl ocsp -issuer "$DATA/ec.pem" -url "$OCSP" -CAfile "$DATA/root.pem" "$@" 2>&1 | grep -q ': good$\|: revoked$'; }
tag openssl:nonce
check "openssl ocsp, nonce" ocsp -cert "$C1"
tag openssl:no-nonce
check "openssl ocsp -no_nonce" ocsp -cert "$C1" -no_nonce
tag openssl:sha256
check "openssl ocsp -sha256" ocsp -sha256 -cert "$C1"
tag openssl:two-certids
check "openssl ocsp, two certificates" ocsp -cert "$C1" -cert "$C2" -no_nonce
openssl ocsp -issuer "$DATA/ec.pem" -cert "$C2" -no_nonce -reqout "$W/get.req" >/dev/null 2>&1
b64=$(base64 -w0 "$W/get.req")
tag curl:plain
check "GET, base64 in the path" curl -sf -o /dev/null "$OCSP/$b64"
tag curl:percent-encoded
check "GET, percent-encoded" curl -sf -o /dev/null "$OCSP/$(sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g' <<<"$b64")"
tag curl:double-slash
check "GET after a doubled slash" curl -sf -o /dev/null "$OCSP//$b64"

echo "# SCEP"
SCEP="http://127.0.0.1:$PH/scep"
tag scepclient:pkcsreq
CH=$(privca_cli scep challenge new --profile device-rsa | tail -n 1)
mkdir -p "$W/scepclient"
check "scepclient: PKCSReq (name rsa)" bash -c "cd '$W/scepclient' && timeout 120 scepclient -server-url '$SCEP/rsa' \
  -challenge '$CH' -cn scepclient.example.test -private-key key.pem -certificate cert.pem >out.txt 2>&1"
tag certmonger
check "certmonger scep-submit -c (GetCACaps)" /usr/lib/certmonger/scep-submit -u "$SCEP" -c
check "certmonger scep-submit -C (GetCACert)" /usr/lib/certmonger/scep-submit -u "$SCEP" -C
tag certmonger:pkcsreq
CH=$(privca_cli scep challenge new --profile device | tail -n 1)
CMS="$W/cm/store"
mkdir -p "$CMS"/{cas,requests,local,tmp,config}
cat >"$W/cm/request.sh" <<REQ
#!/bin/sh
getcert add-scep-ca -s -c privca -u '$SCEP' || exit 1
getcert request -s -c privca -f '$W/cm/cert.pem' -k '$W/cm/key.pem' -N CN=cm.example.test -D cm.example.test \
  -L '$CH' -w -v
REQ
chmod +x "$W/cm/request.sh"
# A daemon of its own on a session bus, its store in $CMS (not /var/lib/certmonger).
check "certmonger daemon: getcert request over SCEP" env HOME="$CMS" CERTMONGER_CONFIG_DIR="$CMS/config" \
  CERTMONGER_CAS_DIR="$CMS/cas" CERTMONGER_REQUESTS_DIR="$CMS/requests" CERTMONGER_LOCAL_CA_DIR="$CMS/local" \
  CERTMONGER_TMPDIR="$CMS/tmp" CERTMONGER_SYSTEM_LOCK_FILE="$CMS/lock" bash -c "timeout 60 dbus-run-session -- \
  certmonger -s -n -c '$W/cm/request.sh' >'$W/cm/out.txt' 2>&1; test -s '$W/cm/cert.pem'"
tag unknown

# --- seeds: each client's old ones replaced by what it sent now.
stop_mitm
NEW="$CAP/seeds"
"$VENV/bin/python" "$FUZZ/capture_seeds.py" "$CAPTURE_LOG" "$NEW" | sed 's/^/  /'
if [ -s "$W/scepclient/csr.pem" ]; then
  mkdir -p "$NEW/csr"
  openssl req -in "$W/scepclient/csr.pem" -outform DER -out "$NEW/csr/scepclient-pkcsreq-rsa2048.der"
fi
for c in "${CLIENTS[@]}"; do
  if compgen -G "$NEW/*/$c-*" >/dev/null; then
    rm -f "$SEEDS"/*/"$c"-*
    for f in "$NEW"/*/"$c"-*; do cp "$f" "$SEEDS/$(basename "$(dirname "$f")")/"; done
    printf '  %-11s %s\n' "$c" "$(cd "$NEW" && ls -d */"$c"-* | cut -d/ -f1 | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}')"
  else
    fail "$c sent nothing to capture: its old seeds are kept"
  fi
done
finish
