#!/usr/bin/env bash
# Subordinate set-up: an `external = true` issuer gets a CSR from `privca init --issuer-csr`
# (signed in the HSM), an existing "company root" made with openssl signs it, and
# `privca import-issuer` installs it; leaves issued under it verify against the company root.
# A certificate for another key, and a second import, are refused.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
mkdir -p "$DATA/conf/profiles"
cp "$ROOT"/conf/profiles/*.toml "$DATA/conf/profiles/"
sed -e 's/^name = "tls-server"/name = "corp-server"/' -e 's/^issuer = "ec"/issuer = "corp"/' \
  "$ROOT/conf/profiles/tls-server.toml" >"$DATA/conf/profiles/corp-server.toml"
cp "$ROOT/conf/privca.dev.toml" "$DATA/conf/privca.toml"
cat >>"$DATA/conf/privca.toml" <<'TOML'

[[issuer]]
id = "corp"
key = "ecdsa-p256"
subject = "CN=privca issuing CA under Corp Root,O=Example Corp"
validity = "3y"
external = true
TOML
corp() { "$PRIVCA_BIN" --config "$DATA/conf/privca.toml" --data-dir "$DATA" "$@"; }

out=$(corp init --issuer-csr)
if grep -q "issuer CSR: $DATA/corp.csr.pem" <<<"$out" && openssl req -in "$DATA/corp.csr.pem" -verify -noout 2>/dev/null; then
  ok "init --issuer-csr wrote a self-signed CSR ($(openssl req -in "$DATA/corp.csr.pem" -noout -subject))"
else
  fail "no valid issuer CSR: $out"
fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$DATA/corp-root.key" \
  -out "$DATA/corp-root.pem" -subj "/CN=Corp Root/O=Example Corp" -days 3650 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
cat >"$DATA/sub.cnf" <<'CNF'
[v3]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl x509 -req -in "$DATA/corp.csr.pem" -CA "$DATA/corp-root.pem" -CAkey "$DATA/corp-root.key" \
  -CAcreateserial -days 1000 -sha384 -extfile "$DATA/sub.cnf" -extensions v3 -out "$DATA/corp.pem" 2>/dev/null
cat "$DATA/corp.pem" "$DATA/corp-root.pem" >"$DATA/corp-bundle.pem"

if corp import-issuer "$DATA/ec.pem" --issuer corp 2>"$DATA/wrong.err"; then
  fail "imported a certificate for another key"
else
  ok "certificate for another key refused ($(cat "$DATA/wrong.err"))"
fi
check "import-issuer installs the signed intermediate" corp import-issuer "$DATA/corp-bundle.pem" --issuer corp
if corp import-issuer "$DATA/corp-bundle.pem" --issuer corp 2>/dev/null; then fail "second import accepted"; else ok "second import refused"; fi

make_csr sub tls-server ec "$DATA"
if corp issue --csr "$DATA/sub.csr" --profile corp-server --out "$DATA/sub-chain.pem" 2>"$DATA/sub.err"; then
  openssl x509 -in "$DATA/sub-chain.pem" -out "$DATA/sub-leaf.pem"
  check "leaf under the imported issuer verifies against the company root" \
    openssl verify -CAfile "$DATA/corp-root.pem" -untrusted "$DATA/sub-chain.pem" "$DATA/sub-leaf.pem"
  check "corp-chain.pem ends at the company root" grep -q "$(sed -n 2p "$DATA/corp-root.pem")" "$DATA/corp-chain.pem"
else
  fail "issue under the imported issuer: $(cat "$DATA/sub.err")"
fi
check "the own root still works for the other issuers" corp check-config
finish
