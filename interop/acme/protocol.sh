#!/usr/bin/env bash
# What no Debian ACME client exercises (error cases, profiles, ARI, http-01 redirects to other
# ports) with an independent Python client (protocol.py: `cryptography` + urllib), then ledger
# checks: no certificate for the refused requests, and the replacement linked to the certificate
# it renews. Last, the server restarted with `deny_ranges = ["127.0.0.2/32"]` and
# `protocol.py --deny`: validation refuses that address with the same generic problem.
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
echo "$out" | grep -v '^REPLACE'
check "protocol.py passed" test "$rc" = 0
replaced=$(sed -n 's/^REPLACED_SERIAL=//p' <<<"$out")
check "exactly two certificates issued (refused requests left none)" test "$(( $(cert_count) - before ))" = 2
check "the replacement renews the replaced certificate in the ledger" \
  test "$(sql "SELECT COUNT(*) FROM certificates WHERE ltrim(renews_serial, '0') = ltrim('$replaced', '0')")" = 1

# ARI "flagged for early renewal": `privca renew-early` moves the suggested window to now.
replacement=$(sed -n 's/^REPLACEMENT_SERIAL=//p' <<<"$out")
ari_url=$(sed -n 's/^REPLACEMENT_ARI_URL=//p' <<<"$out")
ari_start() { curl -sf --cacert "$DATA/root.pem" "$ari_url" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["suggestedWindow"]["start"])'; }
start_before=$(ari_start)
privca_cli renew-early --serial "$replacement" --reason "interop test" >/dev/null
start_after=$(ari_start)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
moved_to_now() { [[ -n "$2" && "$2" < "$1" && ! "$2" > "$3" ]]; }
check "renew-early: ARI window now starts at the flag ($start_before -> $start_after)" \
  moved_to_now "$start_before" "$start_after" "$now"
check "renew-early: audited" test "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'renew-early-flagged' AND ltrim(serial, '0') = ltrim('$replacement', '0')")" = 1
check "renew-early of an unknown serial fails" bash -c "! \"$PRIVCA_BIN\" --config \"$CONFIG\" --data-dir \"$DATA\" renew-early --serial 0badc0de"

# The validation deny list, on the same ledger: the first run validated http-01 on 127.0.0.2.
stop_privca
acme_config -e 's#^deny_ranges = \[\]#deny_ranges = ["127.0.0.2/32"]#'
check "a config copy denies 127.0.0.2/32" grep -q '^deny_ranges = \["127.0.0.2/32"\]' "$CONFIG"
start_privca || exit 1
out=$("$PY" "$(dirname "$0")/protocol.py" "$DATA/root.pem" --deny)
rc=$?
echo "$out"
check "protocol.py --deny passed" test "$rc" = 0
finish
