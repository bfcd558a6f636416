#!/usr/bin/env bash
# Runs every interop script (issue before lint) and prints one summary line; a failed script's
# FAIL lines and server diagnostics are repeated at the end, where a truncated CI log still shows them.
set -uo pipefail
cd "$(dirname "$0")"
scripts=(issue/openssl-verify.sh issue/subordinate.sh lint/pkilint.sh hsm/keys.sh audit/tamper.sh serve/healthz.sh revocation/openssl-crl.sh revocation/openssl-ocsp.sh)
for s in */*.sh; do
  case $s in */lib-*.sh | soak/soak.sh) continue ;; esac
  case " ${scripts[*]} " in *" $s "*) ;; *) scripts+=("$s") ;; esac
done
passed=0
failed=0
failures=""
log=$(mktemp /tmp/privca-interop-log.XXXXXX)
trap 'rm -f "$log"' EXIT
run() { # run LABEL SCRIPT [VAR=value...]
  local label=$1 script=$2; shift 2
  printf '\n--- %s\n' "$label"
  if env "$@" bash "$script" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" = 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "*** $label failed"
    failures+=$(printf '\n*** %s\n%s' "$label" "$(grep -A40 -E '^  FAIL|^privca warnings' "$log" | tail -n 60)")
  fi
}
for s in "${scripts[@]}"; do run "$s" "$s"; done
# The soak test's short version: 5 minutes of steady mixed load (30 minutes: SOAK_SECONDS=1800).
run "soak/soak.sh (${SOAK_SECONDS:-300} s)" soak/soak.sh SOAK_SECONDS="${SOAK_SECONDS:-300}"
# The ledger-facing scripts again on PostgreSQL when a server is available.
if [ -n "${PRIVCA_TEST_PG_URL:-}" ]; then
  for s in issue/openssl-verify.sh revocation/openssl-crl.sh revocation/openssl-ocsp.sh audit/secrets.sh clm/discover.sh clm/deploy.sh crash/sigkill.sh outage/outage.sh dashboard/browser.sh admin/mtls.sh acme/*.sh est/*.sh scep/*.sh; do
    [ "$s" = acme/lib-acme.sh ] && continue
    run "$s (PostgreSQL)" "$s" INTEROP_PG_URL="$PRIVCA_TEST_PG_URL"
  done
fi
[ -n "$failures" ] && printf '\nfailed scripts:%s\n' "$failures"
printf '\ninterop: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
