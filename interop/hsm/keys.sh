#!/usr/bin/env bash
# Keys stay in the token: pkcs11-tool (OpenSC) lists every private key with the attributes
# sensitive, always sensitive, never extractable and local (the SCEP RA key included); reading the
# secret part of each (CKA_VALUE, or an RSA key's private exponent and primes) is refused with
# CKR_ATTRIBUTE_SENSITIVE (read_private.py, PyKCS11: pkcs11-tool --read-object never reads a
# private key whatever its attributes); no private key appears in the ledger or the data
# directory outside the token. A self-test first shows both checks fail on a throwaway token
# holding an extractable, non-sensitive key.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
HERE="$ROOT/interop/hsm"
fresh_data_dir
privca_cli init >/dev/null
make_csr leaf tls-server ec "$DATA"
privca_cli issue --csr "$DATA/leaf.csr" --profile tls-server >/dev/null 2>&1
rm -f "$DATA/leaf.key" # the client's own key, not privca's
MODULE=/usr/lib/softhsm/libsofthsm2.so
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
"$PY" -c 'import PyKCS11' 2>/dev/null || fail "PyKCS11 is not installed (.ci/test installs it in .venv-tools)"

# key_access OBJECTS: "label<TAB>access" for each private key in pkcs11-tool --list-objects output.
key_access() {
  awk '/^Private Key Object/ { if (n) print l "\t" a; n = 1; l = ""; a = ""; next }
       /^[^ ]/ { if (n) print l "\t" a; n = 0; next }
       n && /^  label:/ { sub(/^  label: */, ""); sub(/ +$/, ""); l = $0 }
       n && /^  Access:/ { sub(/^  Access: */, ""); sub(/ +$/, ""); a = $0 }
       END { if (n) print l "\t" a }' <<<"$1"
}
# unprotected OBJECTS: the labels of the private keys that lack any of sensitive, always sensitive,
# never extractable, local.
unprotected() {
  key_access "$1" | awk -F'\t' '{ n = split($2, t, / *, */); split("", h); for (i = 1; i <= n; i++) h[t[i]] = 1
    if (!(("sensitive" in h) && ("always sensitive" in h) && ("never extractable" in h) && ("local" in h))) print $1 }'
}
list_privkeys() { # TOKEN_LABEL PIN
  pkcs11-tool --module "$MODULE" --token-label "$1" --login --pin "$2" --list-objects --type privkey 2>/dev/null
}

echo "# self-test: a throwaway token with one protected and one extractable key"
ST=$(mktemp -d /tmp/privca-keys-selftest.XXXXXX)
CLEANUP+=("$ST")
mkdir -p "$ST/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' "$ST" >"$ST/softhsm2.conf"
export SOFTHSM2_CONF="$ST/softhsm2.conf"
softhsm2-util --init-token --free --label selftest --pin 1234 --so-pin 5678 >/dev/null || fail "self-test: softhsm2-util --init-token"
pkcs11-tool --module "$MODULE" --token-label selftest --login --pin 1234 --keypairgen --key-type EC:prime256v1 \
  --label protected >/dev/null 2>&1 || fail "self-test: pkcs11-tool --keypairgen"
"$PY" "$HERE/read_private.py" "$MODULE" selftest 1234 --make-extractable extractable >/dev/null 2>&1 ||
  fail "self-test: generating the extractable key"
st_objects=$(list_privkeys selftest 1234)
check "self-test: pkcs11-tool lists both keys" test "$(key_access "$st_objects" | cut -f1 | sort | tr '\n' ' ')" = "extractable protected "
check "self-test: the attribute check flags the extractable key, and only it" test "$(unprotected "$st_objects")" = extractable
st_rc=0
st_read=$("$PY" "$HERE/read_private.py" "$MODULE" selftest 1234 2>&1) || st_rc=$?
check "self-test: the read check reads the extractable key's CKA_VALUE and fails (exit 1)" \
  bash -c "[ $st_rc = 1 ] && grep -q '^extractable: CKA_VALUE READ' <<<\"\$1\"" _ "$st_read"
check "self-test: and is refused on the protected key" grep -q '^protected: CKA_VALUE refused (CKR_ATTRIBUTE_SENSITIVE)' <<<"$st_read"

echo "# privca's token"
label=$(sed -n 's/^token_label *= *"\(.*\)"/\1/p' "$ROOT/conf/privca.dev.toml")
export SOFTHSM2_CONF="$DATA/softhsm2.conf"
PIN=$(cat "$DATA/secrets/user.pin")
objects=$(list_privkeys "$label" "$PIN")
keys=$(key_access "$objects" | wc -l)
weak=$(unprotected "$objects")
if [ "$keys" -ge 6 ] && [ -z "$weak" ]; then
  ok "$keys private keys, each sensitive, always sensitive, never extractable and local"
else
  fail "private keys: $keys; lacking sensitive/always sensitive/never extractable/local: ${weak:-none}"
  printf '%s\n' "$objects"
fi
for l in privca-root privca-issuer-ec privca-issuer-rsa privca-audit privca-tls privca-scep-ra; do
  check "key $l in the token" grep -q "^$l"$'\t' <<<"$(key_access "$objects")"
done
if out=$("$PY" "$HERE/read_private.py" "$MODULE" "$label" "$PIN" 2>&1); then
  ok "reading each private key's secret is refused as sensitive ($(wc -l <<<"$out") attributes)"
else
  fail "a private key's secret was readable or not refused as sensitive"
  printf '%s\n' "$out"
fi
check "  every key was tried" test "$(cut -d: -f1 <<<"$out" | sort -u | wc -l)" = "$keys"
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
finish
