#!/usr/bin/env bash
# Runs every interop script (issue before lint) and prints one summary line.
set -uo pipefail
cd "$(dirname "$0")"
scripts=(issue/openssl-verify.sh issue/subordinate.sh lint/pkilint.sh hsm/keys.sh audit/tamper.sh serve/healthz.sh revocation/openssl-crl.sh revocation/openssl-ocsp.sh)
for s in */*.sh; do
  [ "$s" = acme/lib-acme.sh ] && continue
  case " ${scripts[*]} " in *" $s "*) ;; *) scripts+=("$s") ;; esac
done
passed=0
failed=0
for s in "${scripts[@]}"; do
  printf '\n--- %s\n' "$s"
  if bash "$s"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "*** $s failed"; fi
done
# The ledger-facing scripts again on PostgreSQL when a server is available.
if [ -n "${PRIVCA_TEST_PG_URL:-}" ]; then
  for s in issue/openssl-verify.sh revocation/openssl-crl.sh revocation/openssl-ocsp.sh acme/*.sh est/*.sh scep/*.sh; do
    [ "$s" = acme/lib-acme.sh ] && continue
    printf '\n--- %s (PostgreSQL)\n' "$s"
    if INTEROP_PG_URL="$PRIVCA_TEST_PG_URL" bash "$s"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "*** $s (PostgreSQL) failed"; fi
  done
fi
printf '\ninterop: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
