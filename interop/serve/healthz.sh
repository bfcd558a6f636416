#!/usr/bin/env bash
# `privca serve` on a fresh data dir initialises itself, answers /healthz on HTTPS (with a
# certificate privca issued for localhost/127.0.0.1, verified against root.pem), plain HTTP and
# the admin listener, refuses TLS 1.0 (with a self-test that the probe connects to a server
# that accepts it), serves the CA certificates for AIA, stops on SIGTERM, and restarts with
# the same keys and certificates.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
start_privca
check "HTTPS /healthz (curl -k)" curl -skf https://127.0.0.1:8443/healthz
check "HTTPS /healthz verified against root.pem" curl -sf --cacert "$DATA/root.pem" https://127.0.0.1:8443/healthz
check "HTTPS by name localhost" curl -sf --cacert "$DATA/root.pem" https://localhost:8443/healthz
check "HTTP /healthz" curl -sf http://127.0.0.1:8080/healthz
check "admin /healthz" curl -sf --cacert "$DATA/root.pem" https://127.0.0.1:9443/healthz
check "admin /metrics (Prometheus text with HSM and OCSP counters)" bash -c "curl -sf --cacert '$DATA/root.pem' https://127.0.0.1:9443/metrics | grep -q '^privca_hsm_operations_total{op=\"sign\",result=\"ok\"}'"
check_old_tls_refused tls1 8443
curl -sf http://127.0.0.1:8080/ca/root.der -o "$DATA/root.der"
check "/ca/root.der is the root" cmp <(openssl x509 -inform DER -in "$DATA/root.der") <(openssl x509 -in "$DATA/root.pem")
curl -sf http://127.0.0.1:8080/ca/ec-chain.pem -o "$DATA/ec-chain-served.pem"
check "/ca/ec-chain.pem verifies" openssl verify -CAfile "$DATA/root.pem" "$DATA/ec-chain-served.pem"
check "/ca/unknown.pem is 404" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/ca/unknown.pem)\" = 404 ]"
check "serve printed the root CA path" grep -q "root CA: *$DATA/root.pem" "$DATA/serve.log"
root_before=$(sha256sum <"$DATA/root.pem")
tls_before=$(sha256sum <"$DATA/tls/server-chain.pem")
stop_privca
check "stopped on SIGTERM" bash -c "! curl -skf https://127.0.0.1:8443/healthz"
start_privca
check "restart: healthz" curl -sf --cacert "$DATA/root.pem" https://127.0.0.1:8443/healthz
check "restart: same root" test "$(sha256sum <"$DATA/root.pem")" = "$root_before"
check "restart: same TLS certificate" test "$(sha256sum <"$DATA/tls/server-chain.pem")" = "$tls_before"
check "restart: no key generated" bash -c "! grep -q 'generated key' '$DATA/serve.log'"
stop_privca
finish
