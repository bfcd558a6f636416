#!/usr/bin/env bash
# Lints every certificate the issue script produced (leaves of every profile, the root and the
# intermediates) with pkilint's RFC 5280 linter: no finding at ERROR level or above.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
LINT="$ROOT/.venv-tools/bin/lint_pkix_cert"
if [ ! -x "$LINT" ]; then
  python3 -m venv "$ROOT/.venv-tools" && "$ROOT/.venv-tools/bin/pip" install -q pkilint
fi
if ! ls "$INTEROP_OUT"/certs/*.pem >/dev/null 2>&1; then
  bash "$ROOT/interop/issue/openssl-verify.sh" >/dev/null
fi
for cert in "$INTEROP_OUT"/certs/*.pem; do
  name=$(basename "$cert" .pem)
  if out=$("$LINT" lint -s ERROR "$cert" 2>&1); then
    ok "pkilint $name"
  else
    fail "pkilint $name:"
    printf '%s\n' "$out" | sed 's/^/       /'
  fi
done
finish
