#!/usr/bin/env bash
# What no Debian ACME client exercises (error cases, profiles, ARI) with an independent Python
# client (protocol.py: `cryptography` + urllib), then ledger checks: no certificate for the
# refused requests, and the replacement linked to the certificate it renews.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/lib-acme.sh"
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
fresh_data_dir
start_challtestsrv
start_privca || exit 1
before=$(cert_count)
out=$("$PY" "$(dirname "$0")/protocol.py" "$DATA/root.pem")
rc=$?
echo "$out" | grep -v '^REPLACED_SERIAL='
check "protocol.py passed" test "$rc" = 0
replaced=$(sed -n 's/^REPLACED_SERIAL=//p' <<<"$out")
check "exactly two certificates issued (refused requests left none)" test "$(( $(cert_count) - before ))" = 2
check "the replacement renews the replaced certificate in the ledger" \
  test "$(sql "SELECT COUNT(*) FROM certificates WHERE ltrim(renews_serial, '0') = ltrim('$replaced', '0')")" = 1
finish
