#!/usr/bin/env bash
# CRLs against openssl and pkilint: with `privca serve` running, issue certificates, revoke one
# with a reason, then fetch /crl/ec.crl and /crl/ec-delta.crl over HTTP and check with
# `openssl crl` (signature, CRL number grows between fetches, the revoked serial and reason
# present, the good one absent, the delta holds only the newer revocation, hold and
# removeFromCRL), `openssl verify -crl_check` (revoked rejected, good accepted), conditional
# GET, and pkilint's CRL linter. A certificate revoked through the CLI is rejected by
# `openssl verify -crl_check` with only the complete CRL from the certificate's CDP URL within
# crl.full_after_revocation + 5 s (accepted before), with no `crl publish`. Then SIGKILL the CLI during CRL generation repeatedly: CRL
# numbers stay unique and increasing.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
start_privca
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
for n in good bad bad2 held; do
  make_csr "$n" tls-server ec "$DATA"
  privca_cli issue --csr "$DATA/$n.csr" --profile tls-server --out "$DATA/$n-chain.pem" 2>/dev/null
  openssl x509 -in "$DATA/$n-chain.pem" -out "$DATA/$n.pem"
done
privca_cli revoke --serial "$(serial_of "$DATA/bad.pem")" --reason keyCompromise >/dev/null
privca_cli crl publish --issuer ec >/dev/null

fetch() { # fetch NAME OUT: GET /crl/NAME.crl into OUT.der and OUT.txt
  curl -sf "http://127.0.0.1:8080/crl/$1.crl" -o "$2.der" -D "$2.headers"
  openssl crl -inform DER -in "$2.der" -noout -text >"$2.txt"
}
crl_number() { grep -A1 "X509v3 CRL Number" "$1.txt" | tail -1 | tr -d ' '; }
fetch ec "$DATA/full1"
check "complete CRL signature verifies with the issuer" openssl crl -inform DER -in "$DATA/full1.der" -CAfile "$DATA/ec-chain.pem" -noout -verify
check "Content-Type application/pkix-crl" grep -qi "^content-type: application/pkix-crl" "$DATA/full1.headers"
check "revoked serial listed" grep -q "Serial Number: $(serial_of "$DATA/bad.pem")" "$DATA/full1.txt"
check "reason keyCompromise" grep -q "Key Compromise" "$DATA/full1.txt"
check "good serial absent" bash -c "! grep -q 'Serial Number: $(serial_of "$DATA/good.pem")' '$DATA/full1.txt'"
check "freshestCRL points at the delta" grep -q "URI:http://127.0.0.1:8080/crl/ec-delta.crl" "$DATA/full1.txt"
check "IDP critical, user certificates only" grep -q "Issuing Distribution Point: critical" "$DATA/full1.txt"
openssl crl -inform DER -in "$DATA/full1.der" -out "$DATA/full1.pem"
cat "$DATA/ec.pem" "$DATA/root.pem" >"$DATA/trust.pem"
if openssl verify -crl_check -CAfile "$DATA/trust.pem" -CRLfile "$DATA/full1.pem" "$DATA/bad.pem" >"$DATA/v.out" 2>&1; then
  fail "openssl verify -crl_check accepted the revoked certificate"
elif grep -q "certificate revoked" "$DATA/v.out"; then
  ok "openssl verify -crl_check rejects the revoked certificate"
else
  fail "unexpected openssl verify output: $(cat "$DATA/v.out")"
fi
check "openssl verify -crl_check accepts the good certificate" openssl verify -crl_check -CAfile "$DATA/trust.pem" -CRLfile "$DATA/full1.pem" "$DATA/good.pem"
etag=$(grep -i '^etag:' "$DATA/full1.headers" | cut -d' ' -f2 | tr -d '\r')
check "conditional GET answers 304" test "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" http://127.0.0.1:8080/crl/ec.crl)" = 304

# A newer revocation reaches the delta CRL through the publisher job (no CLI publish).
privca_cli revoke --serial "$(serial_of "$DATA/bad2.pem")" --reason cessationOfOperation --invalidity-date "$(date -u -d '2 days ago' +%F)" >/dev/null
privca_cli revoke --serial "$(serial_of "$DATA/held.pem")" --reason certificateHold >/dev/null
for _ in $(seq 1 20); do
  fetch ec-delta "$DATA/delta1"
  grep -q "Serial Number: $(serial_of "$DATA/held.pem")" "$DATA/delta1.txt" && break
  sleep 0.5
done
check "delta CRL signature verifies" openssl crl -inform DER -in "$DATA/delta1.der" -CAfile "$DATA/ec-chain.pem" -noout -verify
check "delta indicator names the complete CRL" grep -A1 "Delta CRL Indicator: critical" "$DATA/delta1.txt"
check "delta lists the new revocation with its reason" grep -q "Cessation Of Operation" "$DATA/delta1.txt"
check "delta lists the hold" grep -q "Certificate Hold" "$DATA/delta1.txt"
check "delta carries the invalidity date" grep -q "Invalidity Date" "$DATA/delta1.txt"
check "delta omits the revocation already in its base" bash -c "! grep -q 'Serial Number: $(serial_of "$DATA/bad.pem")' '$DATA/delta1.txt'"
privca_cli revoke --serial "$(serial_of "$DATA/held.pem")" --reason removeFromCRL >/dev/null
for _ in $(seq 1 20); do
  fetch ec-delta "$DATA/delta2"
  grep -q "Remove From CRL" "$DATA/delta2.txt" && break
  sleep 0.5
done
check "lifted hold appears as removeFromCRL in the delta" grep -q "Remove From CRL" "$DATA/delta2.txt"
privca_cli crl publish --issuer ec >/dev/null
fetch ec "$DATA/full2"
n1=$(crl_number "$DATA/full1"); n2=$(crl_number "$DATA/full2")
check "CRL number increased between fetches ($n1 -> $n2)" test "$n2" -gt "$n1"
check "complete CRL keeps both revocations" bash -c "grep -q 'Key Compromise' '$DATA/full2.txt' && grep -q 'Cessation Of Operation' '$DATA/full2.txt'"
check "complete CRL drops the lifted hold" bash -c "! grep -q 'Certificate Hold' '$DATA/full2.txt'"
fetch root "$DATA/root"
check "root CRL verifies against the root" openssl crl -inform DER -in "$DATA/root.der" -CAfile "$DATA/root.pem" -noout -verify
check "intermediates carry the root CRL's CDP" bash -c "openssl x509 -in '$DATA/ec.pem' -noout -text | grep -q 'URI:http://127.0.0.1:8080/crl/root.crl'"
LINT="$ROOT/.venv-tools/bin/lint_crl"
if [ -x "$LINT" ]; then
  for f in full2 delta2; do check "pkilint CRL $f" "$LINT" lint -t CRL -p PKIX -s ERROR "$DATA/$f.der"; done
  check "pkilint root CRL (ARL)" "$LINT" lint -t ARL -p PKIX -s ERROR "$DATA/root.der"
fi

# The complete CRL follows a revocation by itself: a relying party that reads only the CRL at the
# certificate's CDP (openssl -crl_check, nginx ssl_crl) rejects it within full_after_revocation.
make_csr late tls-server ec "$DATA"
privca_cli issue --csr "$DATA/late.csr" --profile tls-server --out "$DATA/late-chain.pem" 2>/dev/null
openssl x509 -in "$DATA/late-chain.pem" -out "$DATA/late.pem"
cdp=$(openssl x509 -in "$DATA/late.pem" -noout -ext crlDistributionPoints | grep -o 'URI:[^ ]*' | head -1 | cut -d: -f2-)
delay=$(sed -n 's/^full_after_revocation = "\([0-9]*\)s"/\1/p' "$CONFIG")
check "the certificate names its CDP ($cdp) and the config a delay (${delay}s)" test -n "$cdp" -a -n "$delay"
cdp_verify() { # cdp_verify OUT: fetch the CDP's CRL only, then openssl verify -crl_check the certificate
  curl -sf "$cdp" -o "$DATA/cdp.der" && openssl crl -inform DER -in "$DATA/cdp.der" -out "$DATA/cdp.pem" &&
    openssl verify -crl_check -CAfile "$DATA/trust.pem" -CRLfile "$DATA/cdp.pem" "$DATA/late.pem" >"$1" 2>&1
}
check "before the revocation the CDP's complete CRL accepts it" cdp_verify "$DATA/late-before.out"
privca_cli revoke --serial "$(serial_of "$DATA/late.pem")" --reason keyCompromise >/dev/null
t0=$(date +%s%N)
limit=$(( (${delay:-0} + 5) * 1000 ))
rejected=""
while elapsed=$(( ($(date +%s%N) - t0) / 1000000 )); [ "$elapsed" -le "$limit" ]; do
  if ! cdp_verify "$DATA/late-after.out" && grep -q "certificate revoked" "$DATA/late-after.out"; then rejected=$elapsed; break; fi
  sleep 0.2
done
check "openssl -crl_check with only the CDP's complete CRL rejects a CLI revocation after ${rejected:-never} ms (limit $limit ms)" test -n "$rejected"
check "no CLI publish: the job re-signed the complete CRL (keyCompromise listed)" \
  bash -c "openssl crl -inform DER -in '$DATA/cdp.der' -noout -text | grep -A5 'Serial Number: $(serial_of "$DATA/late.pem")' | grep -q 'Key Compromise'"
stop_privca

# Crash safety: SIGKILL the publisher at random points of CRL generation (after its first CRL
# reservation; start-up is not this test: SoftHSM2 rewrites its token file at every login);
# numbers never repeat or go back.
for i in $(seq 1 8); do
  RUST_LOG=info "$PRIVCA_BIN" --config "$CONFIG" --data-dir "$DATA" crl publish >"$DATA/killed.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do
    grep -q crl-reserve "$DATA/killed.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.005
  done
  sleep "0.00$((RANDOM % 10))"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
privca_cli crl publish >/dev/null
dups=$(sql "SELECT COUNT(*) FROM (SELECT issuer_id, crl_number FROM crls GROUP BY 1, 2 HAVING COUNT(*) > 1) d")
order=$(sql "SELECT COUNT(*) FROM crls a JOIN crls b ON a.issuer_id = b.issuer_id AND a.crl_number < b.crl_number AND a.created_at > b.created_at")
published=$(sql "SELECT crl_number FROM crls WHERE issuer_id = 'ec' AND state = 'published' ORDER BY crl_number" | paste -sd,)
check "after SIGKILLs no CRL number is shared (ec published: $published)" test "$dups" = 0
check "after SIGKILLs CRL numbers follow creation order" test "$order" = 0
finish
