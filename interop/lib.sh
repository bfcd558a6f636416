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

# api_approve ID: approves request ID through the admin API (POST /api/v1/approvals/ID/approve)
# with an approver token made once per run; true when the certificate was issued (HTTP 200).
api_approve() {
  if [ -z "${APPROVER_TOKEN:-}" ]; then
    APPROVER_TOKEN=$(privca_cli admin token new --role approver --expires 1d --note interop 2>/dev/null)
  fi
  local code
  code=$(curl -sk -o "$DATA/approve-$1.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $APPROVER_TOKEN" "https://127.0.0.1:9443/api/v1/approvals/$1/approve")
  [ "$code" = 200 ] && grep -q '"issued"' "$DATA/approve-$1.json"
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

# tls_handshake VERSION HOST:PORT: true when an OpenSSL client held to exactly that protocol
# version (tls1, tls1_1, tls1_2, tls1_3) completes a handshake. Debian's OpenSSL offers neither
# TLS 1.0 nor 1.1 (nor their SHA-1 signatures) at its default security level 2, so a plain
# `s_client -tls1` fails against any server: SECLEVEL=0 makes it offer them for real.
tls_handshake() {
  local out want
  case $1 in
    tls1) want=TLSv1 ;; tls1_1) want=TLSv1.1 ;; tls1_2) want=TLSv1.2 ;; tls1_3) want=TLSv1.3 ;;
    *) return 2 ;;
  esac
  out=$(timeout 10 openssl s_client -connect "$2" "-$1" -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1) || return 1
  # A cipher was agreed ("New, …" names the cipher's own version) and the session's protocol is $want.
  grep -q '^New, .*, Cipher is [A-Z]' <<<"$out" && grep -qx " *Protocol *: *$want" <<<"$out"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# check_old_tls_refused VERSION PORT (tls1 or tls1_1): first a self-test that the probe can fail,
# against a throwaway `openssl s_server` on a free loopback port that accepts only that version;
# then that privca on PORT completes a TLS 1.2 handshake with the same client (so a refusal below
# is the handshake's, not a closed port's) and refuses VERSION.
check_old_tls_refused() {
  local v=$1 port=$2 name dir p pid up=1
  case $v in tls1) name="TLS 1.0" ;; tls1_1) name="TLS 1.1" ;; *) fail "check_old_tls_refused: $v"; return ;; esac
  dir=$(mktemp -d /tmp/privca-tls-selftest.XXXXXX)
  CLEANUP+=("$dir")
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -days 1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  p=$(free_port)
  openssl s_server -accept "127.0.0.1:$p" -cert "$dir/cert.pem" -key "$dir/key.pem" "-$v" \
    -cipher 'DEFAULT@SECLEVEL=0' -quiet </dev/null >"$dir/s_server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    if tls_handshake "$v" "127.0.0.1:$p"; then up=0; break; fi
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$up" = 0 ]; then
    ok "self-test: the $name probe connects to an openssl s_server that accepts $name"
  else
    fail "self-test: the $name probe did not connect to an openssl s_server that accepts $name"
  fi
  check "the same client completes TLS 1.2 with privca on :$port" tls_handshake tls1_2 "127.0.0.1:$port"
  if tls_handshake "$v" "127.0.0.1:$port"; then fail "$name refused on :$port"; else ok "$name refused on :$port"; fi
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
