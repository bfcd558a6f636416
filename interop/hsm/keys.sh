#!/usr/bin/env bash
# Keys stay in the token: pkcs11-tool (OpenSC) shows every private key always-sensitive and
# never-extractable (the SCEP RA key included); no private key appears in the ledger or the data directory outside the
# token; the source never reads CKA_VALUE of a private key nor calls C_WrapKey.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
privca_cli init >/dev/null
make_csr leaf tls-server ec "$DATA"
privca_cli issue --csr "$DATA/leaf.csr" --profile tls-server >/dev/null 2>&1
rm -f "$DATA/leaf.key" # the client's own key, not privca's
label=$(sed -n 's/^token_label *= *"\(.*\)"/\1/p' "$ROOT/conf/privca.dev.toml")
export SOFTHSM2_CONF="$DATA/softhsm2.conf"
objects=$(pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label "$label" --login \
  --pin "$(cat "$DATA/secrets/user.pin")" --list-objects --type privkey 2>/dev/null)
keys=$(grep -c "Private Key Object" <<<"$objects" || true)
protected=$(grep -c "always sensitive, never extractable" <<<"$objects" || true)
if [ "$keys" -ge 5 ] && [ "$keys" = "$protected" ]; then
  ok "$keys private keys, all always-sensitive and never-extractable"
else
  fail "private keys: $keys, protected: $protected"
  printf '%s\n' "$objects"
fi
for label in privca-root privca-issuer-ec privca-issuer-rsa privca-audit privca-tls privca-scep-ra; do
  check "key $label in the token" grep -q "label: *$label" <<<"$objects"
done
if strings "$DATA/privca.db" | grep -q "PRIVATE KEY"; then fail "PEM private key in the ledger"; else ok "no PEM private key in the ledger"; fi
if grep -rl "PRIVATE KEY" "$DATA" --exclude-dir=tokens >/dev/null 2>&1; then
  fail "private key file in the data directory: $(grep -rl "PRIVATE KEY" "$DATA" --exclude-dir=tokens)"
else
  ok "no private key file in the data directory outside the token"
fi
if python3 - "$DATA/privca.db" <<'PY'; then ok "no PKCS#8 structure in the ledger"; else fail "PKCS#8 structure in the ledger"; fi
import sys
data = open(sys.argv[1], "rb").read()
# PKCS#8 PrivateKeyInfo: SEQUENCE { INTEGER 0, AlgorithmIdentifier ... } begins 02 01 00 30
sys.exit(1 if b"\x02\x01\x00\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01" in data or b"\x02\x01\x00\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01" in data else 0)
PY
if grep -rnE "AttributeType::Value\b|Attribute::Value\(" "$ROOT/src" >/dev/null; then fail "source reads CKA_VALUE"; else ok "source never reads CKA_VALUE"; fi
if grep -rn "wrap_key" "$ROOT/src" >/dev/null; then fail "source calls C_WrapKey"; else ok "source never calls C_WrapKey"; fi
finish
