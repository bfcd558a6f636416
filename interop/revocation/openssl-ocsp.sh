#!/usr/bin/env bash
# OCSP against `openssl ocsp` and curl, with `privca serve` running: POST with and without a
# nonce (response signature verified against the root through the delegated responder),
# good / revoked with reason / unknown, SHA-256 CertIDs, GET with the base64 request in the
# path (including `/`, `+`, `=`, a doubled slash and percent-encoding) with RFC 9919 caching
# headers, `revoked` within 2 s of `privca revoke`, malformedRequest for garbage and truncated
# requests, unauthorized for a foreign issuer, 413 for oversized bodies, pkilint on responses.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
start_privca
for n in good bad; do
  make_csr "$n" tls-server ec "$DATA"
  privca_cli issue --csr "$DATA/$n.csr" --profile tls-server --out "$DATA/$n-chain.pem" 2>/dev/null
  openssl x509 -in "$DATA/$n-chain.pem" -out "$DATA/$n.pem"
done
ISSUER="$DATA/ec.pem"
URL=http://127.0.0.1:8080/ocsp
ocsp() { openssl ocsp -issuer "$ISSUER" -url "$URL" -CAfile "$DATA/root.pem" "$@" 2>&1; }

out=$(ocsp -cert "$DATA/good.pem")
check "POST with nonce: signature verifies against the root" grep -q "Response verify OK" <<<"$out"
check "POST with nonce: good" grep -q "good.pem: good" <<<"$out"
check "nonce echoed (no warning)" bash -c "! grep -q 'WARNING: no nonce' <<<'$out'"
out=$(ocsp -cert "$DATA/good.pem" -no_nonce)
check "POST without nonce: good, verified" bash -c "grep -q 'good.pem: good' <<<'$out' && grep -q 'Response verify OK' <<<'$out'"
out=$(ocsp -sha256 -cert "$DATA/good.pem" -no_nonce)
check "SHA-256 CertID answered" grep -q "good.pem: good" <<<"$out"

sleep 1.5 # let the pre-signer sign the first responses
check "before revocation: good (pre-signed, cached)" bash -c "openssl ocsp -issuer '$ISSUER' -url '$URL' -CAfile '$DATA/root.pem' -cert '$DATA/bad.pem' -no_nonce 2>&1 | grep -q 'bad.pem: good'"
privca_cli revoke --serial "$(openssl x509 -in "$DATA/bad.pem" -noout -serial | cut -d= -f2)" --reason keyCompromise >/dev/null
start=$(date +%s%N)
revoked_in=""
for _ in $(seq 1 40); do
  out=$(ocsp -cert "$DATA/bad.pem" -no_nonce)
  if grep -q "bad.pem: revoked" <<<"$out"; then revoked_in=$(( ($(date +%s%N) - start) / 1000000 )); break; fi
  sleep 0.1
done
if [ -n "$revoked_in" ] && [ "$revoked_in" -le 2000 ]; then ok "revoked within 2 s of privca revoke (${revoked_in} ms)"; else fail "not revoked within 2 s"; fi
check "reason keyCompromise" grep -q "Reason: keyCompromise" <<<"$out"
out=$(ocsp -cert "$DATA/bad.pem")
check "revoked with nonce, verified" bash -c "grep -q 'bad.pem: revoked' <<<'$out' && grep -q 'Response verify OK' <<<'$out'"

# Unknown serial under our issuer: a certificate signed by a throwaway CA with our issuer's name
# would need its key; instead ask for a random serial with the real issuer hashes.
openssl ocsp -issuer "$ISSUER" -serial 0x0123456789abcdef -no_nonce -reqout "$DATA/unknown.req" >/dev/null 2>&1
curl -sf --data-binary @"$DATA/unknown.req" -H 'Content-Type: application/ocsp-request' "$URL" -o "$DATA/unknown.resp"
check "unknown serial: unknown" bash -c "openssl ocsp -respin '$DATA/unknown.resp' -resp_text -noverify 2>/dev/null | grep -q 'Cert Status: unknown'"

# GET: the request in the path, verbatim and percent-encoded, after a doubled slash.
openssl ocsp -issuer "$ISSUER" -cert "$DATA/good.pem" -no_nonce -reqout "$DATA/get.req" >/dev/null 2>&1
b64=$(base64 -w0 "$DATA/get.req")
curl -sf -D "$DATA/get.headers" "$URL/$b64" -o "$DATA/get.resp"
check "GET: good, verified" bash -c "openssl ocsp -respin '$DATA/get.resp' -issuer '$ISSUER' -cert '$DATA/good.pem' -CAfile '$DATA/root.pem' 2>&1 | grep -q 'good.pem: good'"
check "GET: Content-Type application/ocsp-response" grep -qi "^content-type: application/ocsp-response" "$DATA/get.headers"
check "GET: Cache-Control max-age" grep -qi "^cache-control: max-age=[0-9]*, public, no-transform, must-revalidate" "$DATA/get.headers"
check "GET: ETag, Last-Modified, Expires" bash -c "grep -qi '^etag:' '$DATA/get.headers' && grep -qi '^last-modified:' '$DATA/get.headers' && grep -qi '^expires:' '$DATA/get.headers'"
enc=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$b64")
curl -sf "$URL/$enc" -o "$DATA/get2.resp"
check "GET percent-encoded" bash -c "openssl ocsp -respin '$DATA/get2.resp' -issuer '$ISSUER' -cert '$DATA/good.pem' -CAfile '$DATA/root.pem' 2>&1 | grep -q 'good.pem: good'"
curl -sf "$URL//$b64" -o "$DATA/get3.resp"
check "GET after a doubled slash" bash -c "openssl ocsp -respin '$DATA/get3.resp' -issuer '$ISSUER' -cert '$DATA/good.pem' -CAfile '$DATA/root.pem' 2>&1 | grep -q 'good.pem: good'"
# A request whose base64 contains '/' and '+': try serials until one does.
for s in $(seq 1 200); do
  openssl ocsp -issuer "$ISSUER" -serial "$s" -no_nonce -reqout "$DATA/slash.req" >/dev/null 2>&1
  sb=$(base64 -w0 "$DATA/slash.req")
  case "$sb" in *"/"*"+"* | *"+"*"/"*) break ;; esac
done
curl -sf "$URL/$sb" -o "$DATA/slash.resp"
check "GET with '/' and '+' inside the base64 ($sb)" bash -c "openssl ocsp -respin '$DATA/slash.resp' -resp_text -noverify 2>/dev/null | grep -q 'Cert Status: unknown'"

status_of() { openssl ocsp -respin "$1" -resp_text -noverify 2>/dev/null | head -1; }
curl -s --data-binary 'garbage' -H 'Content-Type: application/ocsp-request' "$URL" -o "$DATA/garbage.resp" -w '%{http_code}' >"$DATA/code"
check "garbage: HTTP 200 malformedRequest" bash -c "[ \"\$(cat '$DATA/code')\" = 200 ] && cmp -s '$DATA/garbage.resp' <(printf '\x30\x03\x0a\x01\x01')"
head -c 20 "$DATA/get.req" >"$DATA/trunc.req"
curl -s --data-binary @"$DATA/trunc.req" "$URL" -o "$DATA/trunc.resp"
check "truncated: malformedRequest" cmp -s "$DATA/trunc.resp" <(printf '\x30\x03\x0a\x01\x01')
check "GET garbage: malformedRequest" bash -c "curl -s '$URL/!!notbase64' | cmp -s - <(printf '\x30\x03\x0a\x01\x01')"
head -c 100000 /dev/urandom >"$DATA/big"
check "oversized body: 413" test "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$DATA/big" "$URL")" = 413
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DATA/other.key" -subj /CN=other -days 2 -out "$DATA/other.pem" 2>/dev/null
openssl ocsp -issuer "$DATA/other.pem" -serial 0x01 -no_nonce -reqout "$DATA/foreign.req" >/dev/null 2>&1
curl -s --data-binary @"$DATA/foreign.req" "$URL" -o "$DATA/foreign.resp"
check "foreign issuer: unauthorized" cmp -s "$DATA/foreign.resp" <(printf '\x30\x03\x0a\x01\x06')
LINT="$ROOT/.venv-tools/bin/lint_ocsp_response"
if [ -x "$LINT" ]; then
  check "pkilint OCSP response (good)" "$LINT" lint -s ERROR "$DATA/get.resp"
  curl -sf --data-binary @<(openssl ocsp -issuer "$ISSUER" -cert "$DATA/bad.pem" -no_nonce -reqout /dev/stdout 2>/dev/null) "$URL" -o "$DATA/bad.resp"
  check "pkilint OCSP response (revoked)" "$LINT" lint -s ERROR "$DATA/bad.resp"
fi
responder=$(openssl ocsp -respin "$DATA/get.resp" -resp_text -noverify 2>/dev/null)
check "delegated responder: OCSP Signing EKU" grep -q "OCSP Signing" <<<"$responder"
check "delegated responder: id-pkix-ocsp-nocheck" grep -q "OCSP No Check" <<<"$responder"
stop_privca
finish
