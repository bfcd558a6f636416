# Shared helpers for the interop scripts (sourced, not run).
# Every script: fresh data dir, privca on loopback only, counters, cleanup on exit.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/privca-target}"
PRIVCA_BIN="${PRIVCA_BIN:-$CARGO_TARGET_DIR/debug/privca}"
INTEROP_OUT="${INTEROP_OUT:-$ROOT/target-interop}"
PASSED=0
FAILED=0
CLEANUP=()
CLEANUP_DBS=()
SERVE_PID=""
CONFIG="$ROOT/conf/privca.dev.toml"
DB_URL=

if [ ! -x "$PRIVCA_BIN" ]; then
  (cd "$ROOT" && cargo build --bin privca)
fi

cleanup() {
  stop_privca
  for d in "${CLEANUP[@]}"; do rm -rf "$d"; done
  for db in "${CLEANUP_DBS[@]}"; do psql "$INTEROP_PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); printf '  ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL %s\n' "$*"; }
check() { # check "description" command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}

# A fresh data directory; with INTEROP_PG_URL set (a PostgreSQL role with CREATEDB), also a
# fresh PostgreSQL database and a copy of the dev config that uses it.
fresh_data_dir() {
  DATA=$(mktemp -d /tmp/privca-interop.XXXXXX)
  CLEANUP+=("$DATA")
  export DATA
  if [ -n "${INTEROP_PG_URL:-}" ]; then
    local db="privca_interop_$$_$RANDOM"
    psql "$INTEROP_PG_URL" -qc "CREATE DATABASE $db" >/dev/null
    CLEANUP_DBS+=("$db")
    DB_URL="${INTEROP_PG_URL%/*}/$db"
    sed -e "s#^url = \"sqlite://privca.db\"#url = \"$DB_URL\"#" -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" \
      "$ROOT/conf/privca.dev.toml" >"$DATA/privca.toml"
    CONFIG="$DATA/privca.toml"
  fi
}

# One SQL query against the ledger (SQLite or PostgreSQL), unaligned output.
sql() {
  if [ -n "$DB_URL" ]; then psql "$DB_URL" -tAqc "$1"; else sqlite3 "$DATA/privca.db" "$1"; fi
}

privca_cli() {
  "$PRIVCA_BIN" --config "$CONFIG" --data-dir "$DATA" "$@"
}

start_privca() {
  # The binary itself, not the privca_cli function: $! must be privca's own PID.
  "$PRIVCA_BIN" --config "$CONFIG" --data-dir "$DATA" serve >"$DATA/serve.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 120); do
    if curl -skf https://127.0.0.1:8443/healthz >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$SERVE_PID" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "privca did not come up; log:" >&2
  tail -n 40 "$DATA/serve.log" >&2
  return 1
}

stop_privca() {
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  SERVE_PID=""
}

# make_csr NAME PROFILE KEYTYPE OUTDIR: a CSR that fits PROFILE, key "ec" (P-256) or "rsa" (2048).
make_csr() {
  local name=$1 profile=$2 keytype=$3 out=$4 subj san
  case "$profile" in
    tls-server) subj=/CN=www.example.test; san=DNS:www.example.test,DNS:api.example.test,IP:127.0.0.1 ;;
    tls-client) subj=/CN=client1.example.test; san=DNS:client1.example.test ;;
    device) subj=/CN=router1.example.test; san=DNS:router1.example.test ;;
    vpn-gateway) subj=/CN=vpn.example.test; san=DNS:vpn.example.test,IP:127.0.0.2 ;;
    code-signing) subj="/CN=Example Release Signing/O=Example Corp"; san="" ;;
    email) subj="/CN=Alice Example"; san=email:alice@example.test ;;
    *) subj=/CN=$name; san=DNS:$name ;;
  esac
  local keyargs=(-newkey rsa:2048)
  [ "$keytype" = ec ] && keyargs=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  local ext=()
  [ -n "$san" ] && ext=(-addext "subjectAltName=$san")
  openssl req -new -nodes "${keyargs[@]}" -subj "$subj" "${ext[@]}" \
    -keyout "$out/$name.key" -out "$out/$name.csr" 2>/dev/null
}

cert_count() {
  privca_cli list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

finish() {
  printf '%s%s: %d passed, %d failed\n' "$(basename "$0" .sh)" "${INTEROP_PG_URL:+ (PostgreSQL)}" "$PASSED" "$FAILED"
  if [ "$FAILED" != 0 ] && [ -s "${DATA:-}/serve.log" ]; then # the server's side of the failures
    echo "privca warnings, errors and ACME challenge outcomes (last 30):"
    grep -E 'WARN|ERROR|ACME challenge' "$DATA/serve.log" | tail -n 30
  fi
  [ "$FAILED" = 0 ]
}
