# Shared helpers of the protocol benchmarks (sourced by acme.sh, est.sh, scep.sh, issue.sh,
# cluster.sh): release binaries, a work directory cleaned up on exit, a fresh privca per run on
# SQLite or on a fresh PostgreSQL database, and the RESULT lines of benches/result.sh.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/benches/result.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/privca-target}"
PG_URL="${BENCH_PG_URL:-${PRIVCA_TEST_PG_URL:-}}"
if [ -n "${BENCH_SMOKE:-}" ]; then PG_URL=""; fi
SERVER_PID=""
DBS=()
PIDS=()
WORK=$(mktemp -d /tmp/privca-bench.XXXXXX)

# bench_bins LOAD_VAR LOAD_BIN: PRIVCA_BIN and the load generator ($LOAD_VAR), built in release
# unless both are given (the test command passes debug builds).
bench_bins() {
  local var=$1 bin=$2
  if [ -z "${PRIVCA_BIN:-}" ] || [ -z "${!var:-}" ]; then
    (cd "$ROOT" && cargo build --release -p privca -p privca-load --bin privca --bin "$bin" >/dev/null)
    PRIVCA_BIN="${PRIVCA_BIN:-$CARGO_TARGET_DIR/release/privca}"
    printf -v "$var" '%s' "${!var:-$CARGO_TARGET_DIR/release/$bin}"
  fi
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

bench_cleanup() {
  stop_server
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for db in "${DBS[@]}"; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap bench_cleanup EXIT

# wait_for URL [curl args...]: until URL answers 2xx (or the server died).
wait_for() {
  local url=$1; shift
  for _ in $(seq 1 240); do
    curl -sf "$@" "$url" >/dev/null 2>&1 && return 0
    if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.25
  done
  echo "server at $url did not come up" >&2
  return 1
}

# The dev config's listener ports, moved up by BENCH_PORT_SHIFT (default 0; issue.sh and ocsp.sh
# use 10000 so that they can run next to an interop/ script).
PORT_SHIFT="${BENCH_PORT_SHIFT:-0}"
HTTPS_PORT=$((8443 + PORT_SHIFT))
HTTP_PORT=$((8080 + PORT_SHIFT))
ADMIN_PORT=$((9443 + PORT_SHIFT))

# bench_config BACKEND DATA: DATA/privca.toml, the dev config on SQLite or on a new PostgreSQL
# database (listeners moved by BENCH_PORT_SHIFT); sets LEDGER_SQL to a command that runs one
# query against that ledger.
bench_config() {
  local backend=$1 data=$2
  mkdir -p "$data"
  sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" -e "s#127.0.0.1:8443#127.0.0.1:$HTTPS_PORT#" \
    -e "s#127.0.0.1:8080#127.0.0.1:$HTTP_PORT#" -e "s#127.0.0.1:9443#127.0.0.1:$ADMIN_PORT#" \
    "$ROOT/conf/privca.dev.toml" >"$data/privca.toml"
  LEDGER_SQL=(sqlite3 "$data/privca.db")
  if [ "$backend" = postgres ]; then
    local db="privca_bench_$$_$RANDOM"
    psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
    DBS+=("$db")
    sed -i "s#^url = \"sqlite://privca.db\"#url = \"${PG_URL%/*}/$db\"#" "$data/privca.toml"
    LEDGER_SQL=(psql "${PG_URL%/*}/$db" -tAqc)
  fi
}

# bench_serve DATA: starts privca on DATA/privca.toml (log filter $BENCH_RUST_LOG, default warn),
# waits for HTTPS, sets SERVER_PID.
bench_serve() {
  local data=$1
  RUST_LOG="${BENCH_RUST_LOG:-warn}" "$PRIVCA_BIN" --config "$data/privca.toml" --data-dir "$data" serve >"$data/serve.log" 2>&1 &
  SERVER_PID=$!
  wait_for "https://127.0.0.1:$HTTPS_PORT/healthz" -k
}
