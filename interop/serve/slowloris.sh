#!/usr/bin/env bash
# Slow clients and connection floods (see slowloris.py): 2,000 slowloris connections against
# each listener (8080 headers; 8443 and 9443 a trickled ClientHello, 100 of them headers after
# the handshake) leave OCSP, ACME and EST answered with p99 under twice the quiet p99 (20 ms
# floor), privca under its open-file limit, and every slow connection closed by the server
# within its timeout. Runs on a copy of the dev config with short timeouts (TIMEOUT seconds).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
TIMEOUT=20
fresh_data_dir
sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" \
  -e "s#^request_timeout = .*#request_timeout = \"${TIMEOUT}s\"\nheader_read_timeout = \"${TIMEOUT}s\"\ntls_handshake_timeout = \"${TIMEOUT}s\"\nidle_timeout = \"30s\"#" \
  "$CONFIG" >"$DATA/slowloris.toml"
CONFIG="$DATA/slowloris.toml"
start_privca
make_csr good tls-server ec "$DATA"
privca_cli issue --csr "$DATA/good.csr" --profile tls-server --out "$DATA/good-chain.pem" 2>/dev/null
openssl x509 -in "$DATA/good-chain.pem" -out "$DATA/good.pem"
openssl ocsp -issuer "$DATA/ec.pem" -cert "$DATA/good.pem" -no_nonce -reqout "$DATA/good.req" >/dev/null 2>&1
check "the OCSP request is answered before the attack" \
  bash -c "curl -sf http://127.0.0.1:8080/ocsp/\$(base64 -w0 '$DATA/good.req') -o '$DATA/good.resp' && openssl ocsp -respin '$DATA/good.resp' -issuer '$DATA/ec.pem' -cert '$DATA/good.pem' -CAfile '$DATA/root.pem' 2>&1 | grep -q 'good.pem: good'"
if python3 "$ROOT/interop/serve/slowloris.py" --pid "$SERVE_PID" --root "$DATA/root.pem" \
  --ocsp-req "$DATA/good.req" --timeout "$TIMEOUT" | tee "$DATA/slowloris.out"; then
  ok "slowloris checks"
else
  fail "slowloris checks"
fi
check "still healthy afterwards" curl -sf --cacert "$DATA/root.pem" https://127.0.0.1:8443/healthz
check "refusals counted: privca_connections_refused_total on every listener" bash -c \
  "[ \$(curl -sf --cacert '$DATA/root.pem' https://127.0.0.1:9443/metrics | grep -c '^privca_connections_refused_total{listener=') = 3 ]"
stop_privca
finish
