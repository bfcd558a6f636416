#!/usr/bin/env bash
# Every benchmark against privca and its peers (pebble, OpenBao, cfssl, openssl, nmap, the raw
# SoftHSM2 token) in one run: installs what it needs (.ci/packages.sh), builds the release
# binaries once, runs each benchmark script and cargo bench BENCH_REPS times (the scripts start
# the peers themselves), collects their `RESULT` lines (benches/result.sh) and writes
# OUT/latest.md — machine, versions, per benchmark its command and a table of medians with
# min–max over the repetitions, and privca's ratios to its peers — and OUT/<benchmark>.png.
# A failed benchmark is reported and the others still run; the exit status is then 1.
#
#   bash benches/run.sh            full run (release build, 3 repetitions, SQLite and PostgreSQL;
#                                  about an hour): benches/results/. Run it on a quiet machine.
#   bash benches/run.sh --quick    smoke run (1 repetition, smallest sizes, seconds-long runs;
#                                  the test command's): benches/results/quick/ (git-ignored).
#
# Environment: BENCH_REPS; BENCH_ONLY="acme ocsp" (a subset); BENCH_OUT (output directory);
# PRIVCA_BIN, ACME_LOAD_BIN, POST_LOAD_BIN, TLS_TARGETS_BIN (given, e.g. debug builds, they are
# not built); BENCH_PG_URL or PRIVCA_TEST_PG_URL (a role with CREATEDB), else the test suite's
# PostgreSQL when it answers. Binds the dev config's ports: not next to an interop/ script.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/privca-target}"
QUICK=""
case "${1:-}" in
  --quick) QUICK=1 ;;
  "") ;;
  *) echo "usage: bash benches/run.sh [--quick]" >&2; exit 2 ;;
esac
REPS="${BENCH_REPS:-$([ -n "$QUICK" ] && echo 1 || echo 3)}"
OUT="${BENCH_OUT:-$ROOT/benches/results${QUICK:+/quick}}"
BENCHES="${BENCH_ONLY:-signer acme issue ocsp crl est scep clm admin discover cluster}"

# The command of one repetition of benchmark $1, run from the repository's root.
bench_cmd() {
  if [ -n "$QUICK" ]; then
    case "$1" in
      signer) echo "PRIVCA_BENCH_SECONDS=0.25 cargo test -q --bench signer" ;;
      clm) echo "PRIVCA_BENCH_CLM_COUNT=5000 cargo test -q --bench clm" ;;
      admin) echo "PRIVCA_BENCH_ADMIN_COUNT=2000 PRIVCA_BENCH_SECONDS=1 cargo test -q --bench admin" ;;
      issue) echo "BENCH_SMOKE=1 BENCH_IDLE_SECONDS=1 bash benches/issue.sh" ;;
      ocsp) echo "BENCH_SMOKE=1 BENCH_SECONDS=1 BENCH_CERTS=3 BENCH_CONNECTIONS=8 bash benches/ocsp.sh" ;;
      crl) echo "BENCH_SMOKE=1 BENCH_ENTRIES=2000 bash benches/crl.sh" ;;
      *) echo "BENCH_SMOKE=1 bash benches/$1.sh" ;;
    esac
  else
    case "$1" in
      signer | clm | admin) echo "cargo bench -q --bench $1" ;;
      acme) echo 'BENCH_CONCURRENCY="8 32" BENCH_SECONDS=4 BENCH_PEBBLE_ATTEMPTS=10 bash benches/acme.sh' ;;
      scep) echo "BENCH_REQUESTS=3000 BENCH_SECONDS=8 bash benches/scep.sh" ;;
      cluster) echo "BENCH_SECONDS=15 bash benches/cluster.sh" ;;
      *) echo "bash benches/$1.sh" ;;
    esac
  fi
}

step() { printf '\n=== benches/run.sh: %s\n' "$*"; }

step "packages"
source .ci/packages.sh
ci_packages

# PostgreSQL: the given URL, else the test suite's database when it answers.
PG_URL="${BENCH_PG_URL:-${PRIVCA_TEST_PG_URL:-}}"
if [ -z "$PG_URL" ] && psql postgres://privca:privca@127.0.0.1:5432/privca_test -tAc 'SELECT 1' >/dev/null 2>&1; then
  PG_URL=postgres://privca:privca@127.0.0.1:5432/privca_test
fi
if [ -n "$PG_URL" ]; then
  export BENCH_PG_URL=$PG_URL PRIVCA_TEST_PG_URL=$PG_URL
else
  echo "no PostgreSQL: the benchmarks run on SQLite only" >&2
fi

step "binaries"
if [ -z "${PRIVCA_BIN:-}" ] || [ -z "${ACME_LOAD_BIN:-}" ] || [ -z "${POST_LOAD_BIN:-}" ] || [ -z "${TLS_TARGETS_BIN:-}" ]; then
  cargo build -q --release -p privca -p privca-load --bin privca --bin acme-load --bin post-load --bin tls-targets
fi
export PRIVCA_BIN="${PRIVCA_BIN:-$CARGO_TARGET_DIR/release/privca}"
export ACME_LOAD_BIN="${ACME_LOAD_BIN:-$CARGO_TARGET_DIR/release/acme-load}"
export POST_LOAD_BIN="${POST_LOAD_BIN:-$CARGO_TARGET_DIR/release/post-load}"
export TLS_TARGETS_BIN="${TLS_TARGETS_BIN:-$CARGO_TARGET_DIR/release/tls-targets}"
echo "privca: $PRIVCA_BIN"

RUN=$(mktemp -d /tmp/privca-benchrun.XXXXXX)
META=$RUN/meta.tsv
RESULTS=$RUN/results.tsv
: >"$RESULTS"
meta() { printf '%s\t%s\t%s\n' "$@" >>"$META"; }

# Machine and versions, as the report shows them.
meta info date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta info mode "$([ -n "$QUICK" ] && echo "quick (smoke sizes; the figures only show that the benchmarks work)" || echo full)"
meta info repetitions "$REPS"
meta info databases "SQLite${PG_URL:+, PostgreSQL}"
meta info privca_binary "$PRIVCA_BIN"
meta machine CPU "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
meta machine cores "$(nproc)"
meta machine RAM "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
meta machine kernel "$(uname -sr)"
meta machine "load average at start" "$(cut -d' ' -f1-3 /proc/loadavg)"
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev (with uncommitted changes)"
source benches/openbao.sh
openbao_bin
first() { "$@" 2>&1 | head -n 1; }
meta version privca "$rev"
meta version rustc "$(rustc --version)"
meta version pebble "$(dpkg-query -W -f='${Version}' pebble)"
meta version OpenBao "$(first "$BAO_BIN" version)"
meta version cfssl "$(cfssl version | sed -n 's/^Version: //p')"
meta version openssl "$(openssl version)"
meta version SoftHSM2 "$(softhsm2-util --version)"
if [ -n "$PG_URL" ]; then
  meta version PostgreSQL "$(psql "$PG_URL" -tAc 'SHOW server_version')"
else
  meta version PostgreSQL "$(psql --version) (client only: not used)"
fi
meta version SQLite "$(sqlite3 --version | cut -d' ' -f1)"
meta version wrk "$(first wrk --version | cut -d' ' -f2)"
meta version nmap "$(first nmap --version)"
meta version HAProxy "$(first haproxy -v | cut -d' ' -f3)"

FAILED=()
for bench in $BENCHES; do
  if [ "$bench" = cluster ] && [ -z "$PG_URL" ]; then # several instances share one PostgreSQL
    meta info skipped "cluster (needs PostgreSQL)"
    continue
  fi
  cmd=$(bench_cmd "$bench")
  meta bench "$bench" "$cmd"
  for rep in $(seq 1 "$REPS"); do
    step "$bench, repetition $rep of $REPS: $cmd"
    log="$RUN/$bench-$rep.log"
    t0=$(date +%s)
    set +e
    bash -c "$cmd" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    meta status "$bench" "$rep $rc $(($(date +%s) - t0))"
    awk -v rep="$rep" '$1 == "RESULT" && NF == 6 { print rep, $2, $3, $4, $5, $6 }' "$log" >>"$RESULTS"
    if [ "$rc" != 0 ]; then
      FAILED+=("$bench#$rep")
      echo "benches/run.sh: $bench failed (exit $rc; log $log)" >&2
    elif ! grep -q '^RESULT ' "$log"; then
      FAILED+=("$bench#$rep")
      echo "benches/run.sh: $bench printed no RESULT line (log $log)" >&2
    fi
  done
done

step "report"
mkdir -p "$OUT"
.venv-tools/bin/python benches/report.py "$META" "$RESULTS" "$OUT"
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "benches/run.sh: failed: ${FAILED[*]} (logs in $RUN)" >&2
  exit 1
fi
rm -rf "$RUN"
