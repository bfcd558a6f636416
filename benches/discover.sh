#!/usr/bin/env bash
# Discovery benchmark: N loopback TLS endpoints (default 1,000 ports on 127.0.0.1 from 31000,
# served by one process, `tls-targets` of benches/load (tokio + rustls), with a leaf +
# intermediate of a test CA), scanned by `privca discover` (first scan, which writes every endpoint and
# certificate row, then a rescan) and by `nmap --script ssl-cert` (Debian nmap) in the same run;
# prints endpoints/s of each (whole process, start to exit) and privca's rate over nmap's (goal
# >= 5x), and checks both read the certificate of every endpoint. No fixed privca port is bound.
#
#   bash benches/discover.sh            full run (release build, 1,000 endpoints)
#   bash benches/discover.sh --quick    smoke run (50 endpoints; PRIVCA_BIN=… TLS_TARGETS_BIN=… to
#                                       use debug builds)
#
# Environment: BENCH_ENDPOINTS, BENCH_CONCURRENCY (privca --concurrency, default 64),
# BENCH_FIRST_PORT, PRIVCA_BIN, TLS_TARGETS_BIN.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/benches/result.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/privca-target}"
QUICK="${BENCH_SMOKE:-}"
[ "${1:-}" = --quick ] && QUICK=1
N="${BENCH_ENDPOINTS:-$([ -n "$QUICK" ] && echo 50 || echo 1000)}"
FIRST="${BENCH_FIRST_PORT:-31000}"
CONCURRENCY="${BENCH_CONCURRENCY:-64}"
if [ -z "${PRIVCA_BIN:-}" ] || [ -z "${TLS_TARGETS_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p privca -p privca-load --bin privca --bin tls-targets >/dev/null)
  PRIVCA_BIN="${PRIVCA_BIN:-$CARGO_TARGET_DIR/release/privca}"
  TLS_TARGETS_BIN="${TLS_TARGETS_BIN:-$CARGO_TARGET_DIR/release/tls-targets}"
fi
for tool in nmap openssl jq python3 sqlite3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nmap openssl jq python3 sqlite3)" >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
DATA=$(mktemp -d /tmp/privca-bench-discover.XXXXXX)
TARGETS_PID=""
cleanup() {
  if [ -n "$TARGETS_PID" ]; then kill "$TARGETS_PID" 2>/dev/null || true; wait "$TARGETS_PID" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT
cli() { "$PRIVCA_BIN" --config "$ROOT/conf/privca.dev.toml" --data-dir "$DATA" "$@"; }
cli init >/dev/null

# A test CA's leaf for 127.0.0.1, served with its intermediate.
T=$DATA/pki
mkdir -p "$T"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -subj "/CN=Bench Root" -days 30 -addext basicConstraints=critical,CA:TRUE \
  -keyout "$T/root.key" -out "$T/root.pem" 2>/dev/null
openssl req -new "${ec[@]}" -subj "/CN=Bench Issuing CA" -keyout "$T/inter.key" -out "$T/inter.csr" 2>/dev/null
openssl x509 -req -in "$T/inter.csr" -CA "$T/root.pem" -CAkey "$T/root.key" -days 30 \
  -extfile <(printf 'basicConstraints=critical,CA:TRUE\n') -out "$T/inter.pem" 2>/dev/null
openssl req -new "${ec[@]}" -subj "/CN=bench.discovery.test" -keyout "$T/leaf.key" -out "$T/leaf.csr" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA "$T/inter.pem" -CAkey "$T/inter.key" -days 20 \
  -extfile <(printf 'subjectAltName=DNS:bench.discovery.test,IP:127.0.0.1\n') -out "$T/leaf.pem" 2>/dev/null
cat "$T/leaf.pem" "$T/inter.pem" >"$T/chain.pem"

"$TLS_TARGETS_BIN" --first-port "$FIRST" --ports "$N" --cert "$T/chain.pem" --key "$T/leaf.key" >"$DATA/targets.log" 2>&1 &
TARGETS_PID=$!
for _ in $(seq 1 300); do
  grep -q ready "$DATA/targets.log" && break
  kill -0 "$TARGETS_PID" 2>/dev/null || { cat "$DATA/targets.log" >&2; exit 1; }
  sleep 0.1
done
grep -q ready "$DATA/targets.log" || { echo "the target server did not start" >&2; exit 1; }
LAST=$((FIRST + N - 1))
list=$(seq -s, -f '127.0.0.1:%g' "$FIRST" "$LAST")

now() { date +%s.%N; }
rate() { python3 -c "import sys; n, t = float(sys.argv[1]), float(sys.argv[2]); print(f'{n / t:.1f}')" "$@"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$@"; }

privca_scan() { # privca_scan LABEL OUT SERIES
  local t0 t1 read
  t0=$(now)
  cli discover --targets "$list" --concurrency "$CONCURRENCY" --json >"$2" 2>"$2.err"
  t1=$(now)
  read=$(jq '[.[] | select(.observation.leaf.subject == "CN=bench.discovery.test")] | length' "$2")
  printf '%-22s %5d endpoints in %6s s: %7s endpoints/s, certificate read at %d (%s)\n' "$1" "$N" \
    "$(secs "$t0" "$t1")" "$(rate "$N" "$(secs "$t0" "$t1")")" "$read" "$(tail -n 1 "$2.err")"
  [ "$read" = "$N" ] || { echo "privca read $read of $N certificates" >&2; jq -r '.[] | select(.error) | .error' "$2" | sort | uniq -c >&2; exit 1; }
  PRIVCA_SECS+=("$(secs "$t0" "$t1")")
  result discover "$3" per_s "$(rate "$N" "$(secs "$t0" "$t1")")" endpoints/s
}
PRIVCA_SECS=()

echo "discovery benchmark: $N loopback TLS endpoints ($TLS_TARGETS_BIN), privca --concurrency $CONCURRENCY ($PRIVCA_BIN), $(nmap --version | head -n 1)"
privca_scan "privca (first scan)" "$DATA/scan1.json" privca/first
privca_scan "privca (rescan)" "$DATA/scan2.json" privca/rescan
t0=$(now)
nmap -Pn -n -p "$FIRST-$LAST" --script ssl-cert -oX "$DATA/nmap.xml" 127.0.0.1 >/dev/null
t1=$(now)
NMAP_SECS=$(secs "$t0" "$t1")
nmap_read=$(grep -c 'Subject: commonName=bench.discovery.test' "$DATA/nmap.xml" || true)
printf '%-22s %5d endpoints in %6s s: %7s endpoints/s, certificate read at %d\n' "nmap --script ssl-cert" "$N" \
  "$NMAP_SECS" "$(rate "$N" "$NMAP_SECS")" "$nmap_read"
result discover nmap per_s "$(rate "$N" "$NMAP_SECS")" endpoints/s
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.1f}')" "$NMAP_SECS" "$1"; }
findings=$(jq -r '[.[] | .observation.findings | join(",")] | unique | join(" / ")' "$DATA/scan2.json")
echo "privca / nmap, endpoints per second: first scan $(ratio "${PRIVCA_SECS[0]}")x, rescan $(ratio "${PRIVCA_SECS[1]}")x (goal >= 5x); privca's findings: $findings"
rows=$(sqlite3 "$DATA/privca.db" "SELECT COUNT(*) FROM endpoints")
echo "inventory: $rows endpoint rows, $(sqlite3 "$DATA/privca.db" "SELECT COUNT(*) FROM external_certificates") external certificate(s)"
[ "$rows" = "$N" ] || { echo "expected $N endpoint rows" >&2; exit 1; }
