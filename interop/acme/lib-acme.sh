# Shared helpers for the ACME interop scripts (sourced after ../lib.sh).
# pebble-challtestsrv answers DNS on 127.0.0.1:8053 (every name → 127.0.0.1, TXT records set
# through its management API on 127.0.0.1:8055) and binds nothing else; clients answer http-01
# on 127.0.0.1:5002 and tls-alpn-01 on 127.0.0.1:5001, as the dev config expects.

DIR_URL=https://127.0.0.1:8443/acme/directory
CHALLTESTSRV_PID=""

# start_challtestsrv: a fresh pebble-challtestsrv of this script's own. One already listening
# (left by an interrupted run, with whatever records it holds) is stopped first; anything else
# on its ports is refused rather than trusted.
start_challtestsrv() {
  if (exec 3<>/dev/tcp/127.0.0.1/8055) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/8053) 2>/dev/null; then
    local stale
    stale=$(pgrep -f '^(/usr/bin/)?pebble-challtestsrv .*-management 127.0.0.1:8055' || true)
    if [ -z "$stale" ]; then
      echo "127.0.0.1:8053 or :8055 is taken by something other than pebble-challtestsrv: refusing to use it" >&2
      return 1
    fi
    echo "stopping a pebble-challtestsrv this script did not start (pid $stale)" >&2
    kill $stale 2>/dev/null || true
    for _ in $(seq 1 50); do
      (exec 3<>/dev/tcp/127.0.0.1/8055) 2>/dev/null || break
      sleep 0.1
    done
  fi
  pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 127.0.0.1:8053 -http01 "" -https01 "" \
    -tlsalpn01 "" -management 127.0.0.1:8055 >"$DATA/challtestsrv.log" 2>&1 &
  CHALLTESTSRV_PID=$!
  for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/8055) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "pebble-challtestsrv did not start" >&2
  return 1
}

acme_cleanup() {
  stop_webroot
  # Wait for it to exit: the next script must not find this one's ports still open, reuse it
  # and lose its DNS server halfway through.
  if [ -n "$CHALLTESTSRV_PID" ]; then
    kill "$CHALLTESTSRV_PID" 2>/dev/null && wait "$CHALLTESTSRV_PID" 2>/dev/null
  fi
  cleanup
}
trap acme_cleanup EXIT

# set_txt NAME VALUE / clear_txt NAME: TXT records at _acme-challenge.NAME.
set_txt() {
  curl -sf -d "{\"host\":\"_acme-challenge.$1.\",\"value\":\"$2\"}" http://127.0.0.1:8055/set-txt >/dev/null
}
clear_txt() {
  curl -sf -d "{\"host\":\"_acme-challenge.$1.\"}" http://127.0.0.1:8055/clear-txt >/dev/null
}

# verify_chain LEAF CHAIN NAME...: the chain verifies against the root and the leaf carries
# exactly these DNS names.
verify_chain() {
  local leaf=$1 chain=$2; shift 2
  openssl verify -CAfile "$DATA/root.pem" -untrusted "$chain" "$leaf" >/dev/null 2>&1 || return 1
  local sans
  sans=$(openssl x509 -in "$leaf" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ' | tr ',' '\n' | sort)
  [ "$sans" = "$(printf 'DNS:%s\n' "$@" | sort)" ]
}

# key_matches CERT KEY: the certificate's public key is KEY's.
key_matches() {
  [ -s "$1" ] && [ -s "$2" ] || return 1
  [ "$(openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)" = \
    "$(openssl pkey -in "$2" -pubout -outform DER 2>/dev/null | sha256sum)" ]
}

serial_of() {
  openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'
}

# ledger_owner SERIAL: the CLM owner recorded for a certificate.
ledger_owner() {
  sql "SELECT owner FROM certificates WHERE ltrim(serial, '0') = ltrim('$1', '0')"
}

# ledger_status SERIAL: status and reason of a certificate in the ledger.
ledger_status() {
  sql "SELECT status || ' ' || COALESCE(revocation_reason, '') FROM certificates WHERE ltrim(serial, '0') = ltrim('$1', '0')"
}

# A config copy with `[acme]` changed by sed expressions (e.g. EAB required).
acme_config() {
  local out="$DATA/acme.toml"
  sed "$@" "$CONFIG" >"$out"
  if ! grep -q '^dir = "/' "$out"; then sed -i "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$out"; fi
  CONFIG="$out"
}

# serve_webroot DIR: serves DIR on 127.0.0.1:5002 (http-01 for clients that only write files).
WEBROOT_PID=""
serve_webroot() {
  mkdir -p "$1/.well-known/acme-challenge"
  python3 -m http.server --bind 127.0.0.1 --directory "$1" 5002 >"$DATA/webroot.log" 2>&1 &
  WEBROOT_PID=$!
  for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/5002) 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# uacme_http01_hook HOOK WEBROOT: writes HOOK, a uacme hook (METHOD TYPE IDENT TOKEN AUTH) that
# answers http-01 only, by a file under WEBROOT (served by serve_webroot), and removes it after.
uacme_http01_hook() {
  cat >"$1" <<HOOK
#!/bin/sh
[ "\$2" = http-01 ] || exit 1
case "\$1" in
  begin) printf '%s' "\$5" >"$2/.well-known/acme-challenge/\$4" ;;
  *) rm -f "$2/.well-known/acme-challenge/\$4" ;;
esac
HOOK
  chmod +x "$1"
}
stop_webroot() {
  [ -n "$WEBROOT_PID" ] && kill "$WEBROOT_PID" 2>/dev/null || true
  WEBROOT_PID=""
}
