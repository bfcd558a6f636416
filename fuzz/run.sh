#!/usr/bin/env bash
# Runs privca's fuzz targets (cargo-fuzz, libFuzzer, stable toolchain, no sanitizer), one at a
# time, and fails on the first crash, leak of time (-timeout) or memory (-rss_limit_mb).
#
#   bash fuzz/run.sh [TARGET...]          bounded run: FUZZ_SECONDS (20) per target, from the
#                                         seeds into a fresh corpus (what .ci/test runs)
#   bash fuzz/run.sh --long [TARGET...]   long run: FUZZ_SECONDS (600) per target under
#                                         nice -n 19, corpus kept in fuzz/corpus/TARGET
#
# Installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when it is missing. The build goes
# to FUZZ_TARGET_DIR (default ~/.cache/privca-fuzz-target), never into the repo. A crashing
# input is saved in fuzz/artifacts/TARGET/; replay it with
# `cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-…`. Prints one summary line per
# target (executions, exec/s, cov, ft, corpus, crashes) and appends it to FUZZ_SUMMARY if set.
set -euo pipefail
cd "$(dirname "$0")"
FUZZ=$PWD
long=0
if [ "${1:-}" = "--long" ]; then
  long=1
  shift
fi
TARGETS=("$@")
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=(acme_jws csr est_body ocsp_get ocsp_request scep_message)
SECONDS_PER=${FUZZ_SECONDS:-$([ "$long" = 1 ] && echo 600 || echo 20)}
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/privca-fuzz-target}"
export CARGO_INCREMENTAL=0
NICE=()
[ "$long" = 1 ] && NICE=(nice -n 19)

command -v cargo-fuzz >/dev/null || [ -x "$HOME/.cargo/bin/cargo-fuzz" ] || cargo install cargo-fuzz --locked
export PATH="$HOME/.cargo/bin:$PATH"

"${NICE[@]}" cargo fuzz build -s none

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
failed=0
for t in "${TARGETS[@]}"; do
  if [ "$long" = 1 ]; then
    corpus="$FUZZ/corpus/$t"
  else
    corpus="$LOGS/corpus-$t"
  fi
  mkdir -p "$corpus" "$FUZZ/artifacts/$t"
  log="$LOGS/$t.log"
  rc=0
  "${NICE[@]}" cargo fuzz run -s none "$t" "$corpus" "$FUZZ/seeds/$t" -- \
    -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  stat() { grep -E "^stat::$1:" "$log" | tail -1 | awk '{print $2}'; }
  line=$(printf '%-13s %5ss  execs %s  exec/s %s  cov %s  ft %s  corpus %s  crashes %s' "$t" "$SECONDS_PER" \
    "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
    "$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")" \
    "$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")" \
    "$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$done_line")" "$([ "$rc" = 0 ] && echo 0 || echo "1+ (exit $rc)")")
  echo "$line"
  [ -n "${FUZZ_SUMMARY:-}" ] && echo "$line" >>"$FUZZ_SUMMARY"
  if [ "$rc" != 0 ]; then
    failed=1
    echo "--- $t failed (exit $rc); the end of its log:" >&2
    tail -40 "$log" >&2
    ls -l "$FUZZ/artifacts/$t" >&2 || true
  fi
done
exit "$failed"
