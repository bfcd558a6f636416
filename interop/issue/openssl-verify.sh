#!/usr/bin/env bash
# `privca issue` for every profile with P-256 and RSA-2048 CSRs made by `openssl req`; every
# chain must pass `openssl verify` against <data-dir>/root.pem and carry AIA and CDP. Then the
# refusals: bad CSR signature, RSA-1024, a SAN the profile forbids (non-zero exit, the rule in
# the message, certificate count unchanged). Finally `privca init` twice changes nothing.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
mkdir -p "$INTEROP_OUT/certs"
rm -f "$INTEROP_OUT"/certs/*.pem
privca_cli init >/dev/null
root_sum=$(sha256sum <"$DATA/root.pem")

for profile in tls-server tls-client device vpn-gateway code-signing email; do
  for key in ec rsa; do
    name="$profile-$key"
    make_csr "$name" "$profile" "$key" "$DATA"
    if privca_cli issue --csr "$DATA/$name.csr" --profile "$profile" --out "$DATA/$name-chain.pem" 2>"$DATA/$name.err"; then
      openssl x509 -in "$DATA/$name-chain.pem" -out "$INTEROP_OUT/certs/$name.pem"
      if openssl verify -CAfile "$DATA/root.pem" -untrusted "$DATA/$name-chain.pem" "$INTEROP_OUT/certs/$name.pem" | grep -q ': OK$'; then
        ok "$name: openssl verify"
      else
        fail "$name: openssl verify"
      fi
      text=$(openssl x509 -in "$INTEROP_OUT/certs/$name.pem" -noout -text)
      if grep -q "CA Issuers - URI:http://127.0.0.1:8080/ca/" <<<"$text" && grep -q "OCSP - URI:http://127.0.0.1:8080/ocsp" <<<"$text" \
        && grep -q "URI:http://127.0.0.1:8080/crl/" <<<"$text"; then
        ok "$name: AIA (OCSP, caIssuers) and CDP present"
      else
        fail "$name: AIA/CDP missing"
      fi
    else
      fail "$name: issue failed: $(cat "$DATA/$name.err")"
    fi
  done
done

# Refusals change nothing but the audit log.
before=$(cert_count)
refuse() { # refuse NAME CSR PROFILE EXPECTED-TEXT
  local name=$1 csr=$2 profile=$3 want=$4
  if privca_cli issue --csr "$csr" --profile "$profile" >/dev/null 2>"$DATA/$name.err"; then
    fail "$name: was issued"
  elif grep -q "$want" "$DATA/$name.err"; then
    ok "$name: refused ($(tr -d '\n' <"$DATA/$name.err"))"
  else
    fail "$name: refused without naming the rule: $(cat "$DATA/$name.err")"
  fi
}
make_csr badsig tls-server ec "$DATA"
openssl req -in "$DATA/badsig.csr" -outform DER -out "$DATA/badsig.der"
python3 - "$DATA/badsig.der" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[-3] ^= 0x01  # inside the signature value
open(p, "wb").write(bytes(b))
PY
refuse "bad CSR signature" "$DATA/badsig.der" tls-server "signature"
openssl req -new -nodes -newkey rsa:1024 -subj /CN=weak.example.test -addext subjectAltName=DNS:weak.example.test \
  -keyout "$DATA/weak.key" -out "$DATA/weak.csr" 2>/dev/null
refuse "RSA-1024 key" "$DATA/weak.csr" tls-server "RSA-1024 is too weak"
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=x.example.test \
  -addext subjectAltName=DNS:x.example.test,email:x@example.test -keyout "$DATA/forbid.key" -out "$DATA/forbid.csr" 2>/dev/null
refuse "email SAN in tls-server" "$DATA/forbid.csr" tls-server "san.types"
after=$(cert_count)
if [ "$before" = "$after" ]; then ok "certificate count unchanged by refusals ($after)"; else fail "count changed $before -> $after"; fi
failed_rows=$(sql "select count(*) from audit_events where event = 'failed'")
if [ "$failed_rows" -ge 3 ]; then ok "refusals left $failed_rows audit 'failed' rows"; else fail "only $failed_rows audit 'failed' rows"; fi

privca_cli init >/dev/null
if [ "$(sha256sum <"$DATA/root.pem")" = "$root_sum" ]; then ok "second init keeps the same root"; else fail "root changed"; fi
cp "$DATA/root.pem" "$DATA/ec.pem" "$DATA/rsa.pem" "$INTEROP_OUT/certs/" 2>/dev/null || true
finish
