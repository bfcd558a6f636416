#!/usr/bin/env bash
# `privca discover` against loopback servers started here, on 127.0.0.17-.29 port 19443
# (`openssl s_server` unless noted): an expired certificate, a self-signed one, an incomplete
# chain, a wrong name, RSA-1024, a SHA-1 signature, TLS 1.0 only, something that is not TLS
# (Python), a server that never answers (Python), and a certificate privca issued, with and
# without its issuing CA; aiosmtpd with STARTTLS on 127.0.0.27:2587 serving one that expires
# soon. Every finding must be reported (--json), every certificate be in the inventory with its
# endpoint (SQL on the ledger), privca's own certificate be matched (no external row), a rescan
# change nothing, and a CIDR above the maximum be refused. Then `privca inventory import`: a PEM
# chain, a DER file, privca's own chain (recognised), and a malformed file (named, nothing
# written). Finally `privca serve` with [clm.discovery] records an endpoint on its own. Binds
# none of the dev config's addresses (privca serve listens on 127.0.0.30).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
privca_cli init >/dev/null
T=$DATA/targets
mkdir -p "$T/newcerts"
PIDS=()
cleanup_servers() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'cleanup_servers; cleanup' EXIT
PORT=19443

# A test PKI that neither privca nor the public roots know: root -> intermediate -> leaves.
cat >"$T/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
dir = $T
database = $T/index.txt
new_certs_dir = $T/newcerts
serial = $T/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
EOF
: >"$T/index.txt"
echo 1000 >"$T/serial"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Discovery Test Root" -days 365 \
  -addext basicConstraints=critical,CA:TRUE -keyout "$T/root.key" -out "$T/root.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Discovery Test Issuing CA" \
  -keyout "$T/inter.key" -out "$T/inter.csr" 2>/dev/null
openssl ca -batch -config "$T/ca.cnf" -cert "$T/root.pem" -keyfile "$T/root.key" -extensions v3_ca -days 365 -notext \
  -in "$T/inter.csr" -out "$T/inter.pem" 2>/dev/null

# leaf NAME KEY-ARGS SAN [openssl ca args...]: a leaf signed by the intermediate.
leaf() {
  local name=$1 key=$2 san=$3; shift 3
  # shellcheck disable=SC2086
  openssl req -new $key -nodes -subj "/CN=$name.discovery.test" -addext "subjectAltName=$san" \
    -keyout "$T/$name.key" -out "$T/$name.csr" 2>/dev/null
  openssl ca -batch -config "$T/ca.cnf" -cert "$T/inter.pem" -keyfile "$T/inter.key" -extensions v3_leaf -notext \
    -in "$T/$name.csr" -out "$T/$name.pem" "$@" 2>/dev/null
}
EC="-newkey ec -pkeyopt ec_paramgen_curve:P-256"
leaf expired "$EC" "DNS:expired.discovery.test,IP:127.0.0.17" -startdate 20200101000000Z -enddate 20210101000000Z
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=self.discovery.test -days 200 \
  -addext "subjectAltName=DNS:self.discovery.test,IP:127.0.0.18" -keyout "$T/self.key" -out "$T/self.pem" 2>/dev/null
leaf incomplete "$EC" "DNS:incomplete.discovery.test,IP:127.0.0.19" -days 200
leaf wrongname "$EC" "DNS:www.elsewhere.test,IP:127.0.0.99" -days 200
leaf rsa1024 "-newkey rsa:1024" "DNS:rsa1024.discovery.test,IP:127.0.0.21" -days 200
leaf sha1 "$EC" "DNS:sha1.discovery.test,IP:127.0.0.22" -days 200 -md sha1
leaf tls10 "$EC" "DNS:tls10.discovery.test,IP:127.0.0.23" -days 200
leaf smtp "$EC" "DNS:smtp.discovery.test,IP:127.0.0.27" -days 10
cat "$T/smtp.pem" "$T/inter.pem" >"$T/smtp-chain.pem"

# privca's own certificate for 127.0.0.24.
openssl req -new $EC -nodes -subj /CN=own.discovery.test -addext "subjectAltName=DNS:own.discovery.test,IP:127.0.0.24" \
  -keyout "$T/own.key" -out "$T/own.csr" 2>/dev/null
privca_cli issue --csr "$T/own.csr" --profile tls-server --out "$T/own-chain.pem" 2>/dev/null
openssl x509 -in "$T/own-chain.pem" -out "$T/own.pem"
# The certificates above the leaf.
awk 'n > 0 || /-----END CERTIFICATE-----/ { if (n++ > 0) print }' "$T/own-chain.pem" >"$T/own-above.pem"

# serve IP NAME [s_server args...]: serves NAME's key and certificate (with the intermediate).
serve() {
  local ip=$1 name=$2; shift 2
  openssl s_server -accept "$ip:$PORT" -key "$T/$name.key" -cert "$T/$name.pem" -quiet -naccept 1000 "$@" \
    </dev/null >"$T/$name-$ip.log" 2>&1 &
  PIDS+=($!)
}
serve 127.0.0.17 expired -cert_chain "$T/inter.pem"
serve 127.0.0.18 self
serve 127.0.0.19 incomplete
serve 127.0.0.20 wrongname -cert_chain "$T/inter.pem"
serve 127.0.0.21 rsa1024 -cert_chain "$T/inter.pem" -cipher 'DEFAULT@SECLEVEL=0'
serve 127.0.0.22 sha1 -cert_chain "$T/inter.pem" -cipher 'DEFAULT@SECLEVEL=0'
serve 127.0.0.23 tls10 -cert_chain "$T/inter.pem" -tls1 -cipher 'DEFAULT@SECLEVEL=0'
serve 127.0.0.24 own -cert_chain "$T/own-above.pem"
# privca's certificate without its issuing CA (privca knows it, so only the chain is incomplete).
serve 127.0.0.28 own
# Not TLS: answers every connection with a line of text.
/usr/bin/python3 - "127.0.0.25" "$PORT" >"$T/garbage.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"HTTP/1.0 400 this is not TLS\r\n\r\n"); c.recv(4096)
    except OSError:
        pass
    c.close()
PY
PIDS+=($!)
# Accepts and never says a word.
/usr/bin/python3 - "127.0.0.29" "$PORT" >"$T/silent.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c)
PY
PIDS+=($!)
/usr/bin/python3 -m aiosmtpd -n -l 127.0.0.27:2587 --tlscert "$T/smtp-chain.pem" --tlskey "$T/smtp.key" \
  >"$T/smtp.log" 2>&1 &
PIDS+=($!)

wait_port() { # wait_port IP PORT
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}
for ip in 17 18 19 20 21 22 23 24 25 28 29; do
  wait_port "127.0.0.$ip" "$PORT" || fail "server on 127.0.0.$ip:$PORT did not start: $(cat "$T"/*.log | tail -5)"
done
wait_port 127.0.0.27 2587 || fail "aiosmtpd did not start: $(tail -5 "$T/smtp.log")"

# 1. The range: 127.0.0.16/28 (14 addresses) on one port; the unused addresses refuse.
privca_cli discover --cidr 127.0.0.16/28 --ports "$PORT" --handshake-timeout 2s --json >"$T/scan.json" 2>"$T/scan.err" \
  || fail "discover --cidr: $(cat "$T/scan.err")"
# 2. STARTTLS SMTP, and privca's own certificate by name.
privca_cli discover --targets 127.0.0.27:2587 --starttls smtp --json >"$T/smtp.json" 2>"$T/smtp.err" \
  || fail "discover --starttls smtp: $(cat "$T/smtp.err")"
privca_cli discover --targets "127.0.0.24:$PORT" --sni own.discovery.test --json >"$T/own.json" 2>"$T/own.err" \
  || fail "discover --sni: $(cat "$T/own.err")"
# The summary table of a terminal-less run.
privca_cli discover --targets "127.0.0.17:$PORT,127.0.0.25:$PORT" >"$T/table.txt" 2>/dev/null || true
cat "$T/table.txt"

findings() { # findings FILE HOST PORT -> "a,b,c" or "error: ..."
  jq -r --arg h "$1" --argjson p "$2" '.[] | select(.host == $h and .port == $p)
    | if .observation then (.observation.findings | join(",")) else "error: " + .error end' "$3"
}
expect() { # expect WHAT HOST PORT FILE FINDINGS
  local got
  got=$(findings "$2" "$3" "$4")
  if [ "$got" = "$5" ]; then ok "$1: $got"; else fail "$1: expected [$5], got [$got]"; fi
}
expect "expired" 127.0.0.17 "$PORT" "$T/scan.json" "expired,unknown-issuer"
expect "self-signed" 127.0.0.18 "$PORT" "$T/scan.json" "self-signed"
expect "incomplete chain" 127.0.0.19 "$PORT" "$T/scan.json" "incomplete-chain,unknown-issuer"
expect "wrong name" 127.0.0.20 "$PORT" "$T/scan.json" "hostname-mismatch,unknown-issuer"
expect "RSA-1024" 127.0.0.21 "$PORT" "$T/scan.json" "unknown-issuer,weak-key"
expect "SHA-1" 127.0.0.22 "$PORT" "$T/scan.json" "sha1-signature,unknown-issuer"
expect "TLS 1.0 only" 127.0.0.23 "$PORT" "$T/scan.json" "legacy-tls,unknown-issuer"
expect "privca's own, by address" 127.0.0.24 "$PORT" "$T/scan.json" ""
expect "privca's own without its issuing CA" 127.0.0.28 "$PORT" "$T/scan.json" "hostname-mismatch,incomplete-chain"
expect "STARTTLS SMTP, expiring in 10 days" 127.0.0.27 2587 "$T/smtp.json" "expiring,unknown-issuer"
expect "privca's own, by SNI name" 127.0.0.24 "$PORT" "$T/own.json" ""
got=$(findings 127.0.0.25 "$PORT" "$T/scan.json")
case $got in "error: no TLS certificate"*) ok "not TLS: per-endpoint error ($got)" ;; *) fail "not TLS: $got" ;; esac
got=$(findings 127.0.0.29 "$PORT" "$T/scan.json")
if [ "$got" = "error: handshake timed out" ]; then ok "silent server: per-endpoint timeout"; else fail "silent server: $got"; fi
got=$(findings 127.0.0.26 "$PORT" "$T/scan.json")
case $got in "error: cannot connect"*) ok "nothing listening: per-endpoint error" ;; *) fail "closed port: $got" ;; esac
if [ "$(jq length "$T/scan.json")" = 14 ]; then ok "14 endpoints in the /28"; else fail "$(jq length "$T/scan.json") endpoints in the /28"; fi
v=$(jq -r '.[] | select(.host == "127.0.0.23") | "\(.observation.tls_version) \(.observation.legacy_probe)"' "$T/scan.json")
if [ "$v" = "TLSv1.0 true" ]; then ok "TLS 1.0 server read by the ClientHello probe"; else fail "TLS 1.0 server: $v"; fi
n=$(jq -r '.[] | select(.host == "127.0.0.17") | .observation.chain | length' "$T/scan.json")
if [ "$n" = 2 ]; then ok "whole served chain captured (leaf + intermediate)"; else fail "chain length $n"; fi
if grep -q "127.0.0.17:$PORT .*expired" "$T/table.txt" && grep -q "127.0.0.25:$PORT  error: " "$T/table.txt"; then
  ok "summary table lists findings and errors"
else
  fail "summary table"
fi

# Inventory: every certificate with its endpoint; privca's own matched, not duplicated.
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
for name in expired self incomplete wrongname rsa1024 sha1 tls10 smtp; do
  f=$(fp "$T/$name.pem")
  row=$(sql "SELECT source || '|' || owner || '|' || tier FROM external_certificates WHERE fingerprint_sha256 = '$f'")
  ep=$(sql "SELECT host || ':' || port FROM endpoints WHERE fingerprint_sha256 = '$f'")
  if [ "$row" = "discovery|unowned|internal" ] && [ -n "$ep" ]; then
    ok "$name: in the inventory (discovery, unowned), endpoint $ep"
  else
    fail "$name: external row [$row], endpoint [$ep]"
  fi
done
own=$(fp "$T/own.pem")
own_serial=$(sql "SELECT serial FROM certificates WHERE fingerprint_sha256 = '$own'")
if [ -n "$own_serial" ] && [ "$(sql "SELECT COUNT(*) FROM external_certificates WHERE fingerprint_sha256 = '$own'")" = 0 ] \
  && [ "$(sql "SELECT COUNT(*) FROM endpoints WHERE fingerprint_sha256 = '$own'")" = 3 ]; then
  ok "privca's certificate (serial $own_serial) matched at its 3 endpoints, no external row"
else
  fail "privca's own certificate not matched"
fi
# The same through `privca inventory show --json`: source, owner and the endpoints.
declare -A host=([expired]=127.0.0.17 [self]=127.0.0.18 [incomplete]=127.0.0.19 [wrongname]=127.0.0.20
  [rsa1024]=127.0.0.21 [sha1]=127.0.0.22 [tls10]=127.0.0.23 [smtp]=127.0.0.27)
shown=0
for name in "${!host[@]}"; do
  got=$(privca_cli inventory show "$(fp "$T/$name.pem")" --json 2>/dev/null \
    | jq -r '"\(.certificate.source) \(.certificate.owner) \([.endpoints[].host] | join(","))"')
  if [ "$got" = "discovery unowned ${host[$name]}" ]; then shown=$((shown + 1)); else fail "inventory show $name: $got"; fi
done
[ "$shown" = 8 ] && ok "inventory show: the 8 discovered certificates, each with its endpoint"
got=$(privca_cli inventory show "$(fp "$T/own.pem")" --json 2>/dev/null \
  | jq -r '"\(.certificate.source) \(.endpoints | length)"')
case $got in
  "discovery "*) fail "privca's own certificate shown as discovered: $got" ;;
  *" 3") ok "inventory show: privca's own certificate ($got endpoints)" ;;
  *) fail "inventory show own: $got" ;;
esac
reported=$(jq -r '.[] | select(.host == "127.0.0.24") | .recorded.own_serial' "$T/scan.json")
if [ "$reported" = "$own_serial" ]; then ok "scan output names privca's serial"; else fail "scan output: [$reported]"; fi
n=$(sql "SELECT COUNT(*) FROM external_certificates")
if [ "$n" = 8 ]; then ok "8 external certificates"; else fail "$n external certificates"; fi
f=$(sql "SELECT findings FROM endpoints WHERE host = '127.0.0.21'")
if [ "$f" = '["unknown-issuer","weak-key"]' ]; then ok "findings stored with the endpoint"; else fail "stored findings $f"; fi

# A rescan changes nothing but last_seen: no new rows, no new audit rows, same deployed_at.
audits=$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'endpoint-seen'")
deployed=$(sql "SELECT deployed_at FROM endpoints WHERE host = '127.0.0.17'")
sleep 1
privca_cli discover --cidr 127.0.0.16/28 --ports "$PORT" --handshake-timeout 2s >/dev/null 2>&1
if [ "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'endpoint-seen'")" = "$audits" ] \
  && [ "$(sql "SELECT deployed_at FROM endpoints WHERE host = '127.0.0.17'")" = "$deployed" ] \
  && [ "$(sql "SELECT COUNT(*) FROM endpoints")" = 11 ] \
  && [ "$(sql "SELECT CASE WHEN last_seen > deployed_at THEN 1 ELSE 0 END FROM endpoints WHERE host = '127.0.0.17'")" = 1 ]; then
  ok "rescan: same rows, last_seen moved, no audit row ($audits endpoint-seen rows)"
else
  fail "rescan changed the inventory"
fi

# A CIDR above the maximum is refused before anything is sent.
if privca_cli discover --cidr 10.0.0.0/16 --ports 443 >/dev/null 2>"$T/big.err"; then
  fail "a /16 was scanned"
elif grep -q "CIDR 10.0.0.0/16 has 65536 addresses, more than the maximum of 4096" "$T/big.err"; then
  ok "a /16 is refused: $(cat "$T/big.err")"
else
  fail "a /16: $(cat "$T/big.err")"
fi

# inventory import: a PEM chain, a DER file, privca's own chain, a malformed file.
openssl x509 -in "$T/root.pem" -outform DER -out "$T/root.der"
cat "$T/incomplete.pem" "$T/inter.pem" >"$T/bundle.pem"
printf -- '-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n' >"$T/broken.pem"
cat "$T/inter.pem" "$T/broken.pem" >"$T/half-broken.pem"
before=$(sql "SELECT COUNT(*) FROM external_certificates")
privca_cli inventory import "$T/bundle.pem" "$T/half-broken.pem" "$T/root.der" "$T/own-chain.pem" --owner web-team \
  >"$T/import.out" 2>"$T/import.err" && fail "import with a malformed file exited 0" || true
cat "$T/import.out" "$T/import.err"
if grep -q "half-broken.pem: certificate #2 is malformed" "$T/import.err"; then ok "malformed file named"; else fail "malformed file: $(cat "$T/import.err")"; fi
inter=$(fp "$T/inter.pem")
src=$(sql "SELECT source || '|' || owner FROM external_certificates WHERE fingerprint_sha256 = '$inter'")
# bundle.pem: the leaf was discovered already, the intermediate is new; root.der new; own-chain.pem:
# privca's leaf and issuing CA.
if [ "$src" = "import|web-team" ] && [ "$(sql "SELECT COUNT(*) FROM external_certificates")" = $((before + 2)) ] \
  && grep -q "bundle.pem: 2 certificate(s): 1 imported, 1 already in the inventory" "$T/import.out" \
  && grep -q "own-chain.pem: 2 certificate(s): 0 imported, 0 already in the inventory, 2 issued by privca (serial $own_serial, ca:" "$T/import.out"; then
  ok "import: PEM chain and DER rows written, privca's own certificate recognised"
else
  fail "import: [$src], $(sql "SELECT COUNT(*) FROM external_certificates") rows (was $before)"
fi
root_fp=$(fp "$T/root.pem")
if [ "$(sql "SELECT source FROM external_certificates WHERE fingerprint_sha256 = '$root_fp'")" = import ]; then ok "DER import"; else fail "DER import"; fi
if [ "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'inventory-imported'")" = 2 ]; then
  ok "one audit row per file that added rows"
else
  fail "$(sql "SELECT COUNT(*) FROM audit_events WHERE event = 'inventory-imported'") inventory-imported audit rows"
fi

# Scheduled scans: `privca serve` with [clm.discovery] (listeners on 127.0.0.30, so no address of
# the dev config is taken) records a new endpoint on its own, as actor `system`.
leaf scheduled "$EC" "DNS:scheduled.discovery.test,IP:127.0.0.31" -days 200
serve 127.0.0.31 scheduled -cert_chain "$T/inter.pem"
wait_port 127.0.0.31 "$PORT" || fail "server on 127.0.0.31 did not start"
sed -e 's#^dir = "profiles"#dir = "'"$ROOT"'/conf/profiles"#' -e 's#"127\.0\.0\.1:\(8443\|8080\|9443\)"#"127.0.0.30:\1"#' \
  "$CONFIG" >"$DATA/scheduled.toml"
printf '\n[clm.discovery]\nenabled = true\ninterval = "1h"\ntargets = ["127.0.0.31:%s", "127.0.0.26:%s"]\nhandshake_timeout = "2s"\n' \
  "$PORT" "$PORT" >>"$DATA/scheduled.toml"
"$PRIVCA_BIN" --config "$DATA/scheduled.toml" --data-dir "$DATA" serve >"$DATA/serve.log" 2>&1 &
SERVE_PID=$!
seen=""
for _ in $(seq 1 60); do
  seen=$(sql "SELECT findings FROM endpoints WHERE host = '127.0.0.31'")
  [ -n "$seen" ] && break
  sleep 0.5
done
actor=$(sql "SELECT actor FROM audit_events WHERE event = 'endpoint-seen' AND detail LIKE '%127.0.0.31%'")
if [ "$seen" = '["unknown-issuer"]' ] && [ "$actor" = system ]; then
  ok "scheduled scan by privca serve recorded 127.0.0.31 ($seen, audit actor $actor)"
else
  fail "scheduled scan: endpoint [$seen], actor [$actor]; $(grep -i discovery "$DATA/serve.log" | tail -3)"
fi
for _ in $(seq 1 20); do grep -q "discovery scan done" "$DATA/serve.log" && break; sleep 0.25; done
if grep -q "discovery scan done" "$DATA/serve.log"; then
  ok "serve logged the scan: $(grep -o 'discovery scan done.*' "$DATA/serve.log" | head -c 200)"
else
  fail "no scan log line"
fi
stop_privca

check "audit chain verifies" privca_cli audit verify
finish
