#!/usr/bin/env bash
# OCSP benchmark: wrk at c=64 (POST and GET) against privca's responder, against cfssl
# ocspserve (Debian golang-cfssl) loaded with the same pre-signed responses, and against OpenBao's
# `pki/ocsp` (benches/openbao.sh: raft, PKI; its plain-HTTP listener) for the same CSRs signed by
# its `pki/sign`, all over plain HTTP, in one run. OpenBao signs every response when asked.
# Prints req/s, p99 latency and the ratios (goals: privca POST >= 6x cfssl POST
# and >= 12x OpenBao; GET >= POST). BENCH_OPENBAO=0 leaves OpenBao out. privca listens on the
# dev config's ports + BENCH_PORT_SHIFT (default 10000), cfssl on 8889, OpenBao on 8200/8210.
#
#   bash benches/ocsp.sh                 full run (release build, 100 certificates, 10 s each)
#   BENCH_SECONDS=1 BENCH_CERTS=5 PRIVCA_BIN=... bash benches/ocsp.sh   smoke run (test command)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/privca-target}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CERTS="${BENCH_CERTS:-100}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
if [ -z "${PRIVCA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin privca >/dev/null)
  PRIVCA_BIN="$CARGO_TARGET_DIR/release/privca"
fi
for tool in wrk cfssl sqlite3 openssl curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk golang-cfssl sqlite3)" >&2; exit 1; }
done
DATA=$(mktemp -d /tmp/privca-bench-ocsp.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$DATA"
}
trap cleanup EXIT
[ -n "${BENCH_KEEP:-}" ] && trap - EXIT
# The dev config with its listeners moved up by BENCH_PORT_SHIFT (default 10000), so that the run
# does not meet an interop/ script on the dev ports.
SHIFT="${BENCH_PORT_SHIFT:-10000}"
HTTP_PORT=$((8080 + SHIFT))
sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" -e "s#127.0.0.1:8443#127.0.0.1:$((8443 + SHIFT))#" \
  -e "s#127.0.0.1:8080#127.0.0.1:$HTTP_PORT#" -e "s#127.0.0.1:9443#127.0.0.1:$((9443 + SHIFT))#" \
  "$ROOT/conf/privca.dev.toml" >"$DATA/privca.toml"
cli() { "$PRIVCA_BIN" --config "$DATA/privca.toml" --data-dir "$DATA" "$@"; }
WORK=$DATA
source "$ROOT/benches/openbao.sh"
source "$ROOT/benches/result.sh"
OPENBAO="${BENCH_OPENBAO:-1}"

"$PRIVCA_BIN" --config "$DATA/privca.toml" --data-dir "$DATA" serve >"$DATA/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
for i in $(seq 1 "$CERTS"); do
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout /dev/null -subj "/CN=b$i.example.test" \
    -addext "subjectAltName=DNS:b$i.example.test" -out "$DATA/r$i.csr" 2>/dev/null
  cli issue --csr "$DATA/r$i.csr" --profile tls-server --out "$DATA/c$i.pem" 2>/dev/null
done
# Wait until every certificate has its pre-signed SHA-1 response.
for _ in $(seq 1 120); do
  missing=$(sqlite3 "$DATA/privca.db" "SELECT COUNT(*) FROM certificates c WHERE NOT EXISTS \
    (SELECT 1 FROM ocsp_responses o WHERE o.serial = c.serial AND o.hash_alg = 'sha1')")
  [ "$missing" = 0 ] && break
  sleep 0.5
done
sqlite3 "$DATA/privca.db" "SELECT hex(der) FROM ocsp_responses WHERE hash_alg = 'sha1'" |
  while read -r h; do printf '%s' "$h" | xxd -r -p | base64 -w0; echo; done >"$DATA/responses.b64"
cfssl ocspserve -address 127.0.0.1 -port 8889 -responses "$DATA/responses.b64" -loglevel 5 >"$DATA/cfssl.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -s -o /dev/null http://127.0.0.1:8889/ 2>/dev/null && break; sleep 0.2; done

# OpenBao signs the same CSRs.
if [ "$OPENBAO" = 1 ]; then
  openbao_start "$DATA/openbao" >/dev/null
  openbao_pki
  for i in $(seq 1 "$CERTS"); do
    python3 -c 'import json,sys; print(json.dumps({"csr": open(sys.argv[1]).read()}))' "$DATA/r$i.csr" |
      curl -sf --cacert "$BAO_CACERT" -H "X-Vault-Token: $BAO_TOKEN" --data @- "$BAO_ADDR/v1/pki/sign/bench" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["certificate"])' >"$DATA/b$i.pem"
  done
fi

# ocsp_lua ISSUER LEAF_PREFIX OUT: one request per certificate LEAF_PREFIX<i>.pem as wrk Lua tables
# (POST bodies and GET paths, the base64 percent-encoded as RFC 6960 appendix A says).
ocsp_lua() {
  local issuer=$1 leaf=$2 out=$3
  {
    echo 'local bodies = {}'
    echo 'local paths = {}'
    for i in $(seq 1 "$CERTS"); do
      openssl ocsp -issuer "$issuer" -cert "$leaf$i.pem" -no_nonce -reqout "$leaf$i.req" >/dev/null 2>&1
      printf 'bodies[%d] = "%s"\n' "$i" "$(xxd -p "$leaf$i.req" | tr -d '\n' | sed 's/\(..\)/\\x\1/g')"
      printf 'paths[%d] = "/ocsp/%s"\n' "$i" "$(base64 -w0 "$leaf$i.req" | sed 's#+#%2B#g; s#/#%2F#g; s#=#%3D#g')"
    done
    cat <<'LUA'
local n = 0
local mode = os.getenv("OCSP_MODE") or "post"
local prefix = os.getenv("OCSP_PREFIX") or ""
request = function()
  n = n % #bodies + 1
  if mode == "get" then
    return wrk.format("GET", prefix .. paths[n]:sub(6))
  end
  return wrk.format("POST", prefix, { ["Content-Type"] = "application/ocsp-request" }, bodies[n])
end
LUA
  } >"$out"
}
for i in $(seq 1 "$CERTS"); do
  openssl x509 -in "$DATA/c$i.pem" -out "$DATA/l$i.pem"
  openssl ocsp -issuer "$DATA/ec.pem" -cert "$DATA/l$i.pem" -no_nonce -reqout "$DATA/q$i.der" >/dev/null 2>&1
done
ocsp_lua "$DATA/ec.pem" "$DATA/l" "$DATA/ocsp.lua"
[ "$OPENBAO" = 1 ] && ocsp_lua "$WORK/openbao-root.pem" "$DATA/b" "$DATA/openbao.lua"

# Sanity: both servers answer the same request with a good, verifiable response.
for url in "http://127.0.0.1:$HTTP_PORT/ocsp" http://127.0.0.1:8889/; do
  curl -sf --data-binary @"$DATA/q1.der" -H 'Content-Type: application/ocsp-request' "$url" -o "$DATA/check.der"
  openssl ocsp -respin "$DATA/check.der" -issuer "$DATA/ec.pem" -cert "$DATA/l1.pem" -CAfile "$DATA/root.pem" 2>&1 | grep -q ": good" ||
    { echo "$url did not answer good" >&2; exit 1; }
done
if [ "$OPENBAO" = 1 ]; then
  curl -sf --data-binary @"$DATA/b1.req" -H 'Content-Type: application/ocsp-request' \
    "http://127.0.0.1:$BAO_PLAIN_PORT/v1/pki/ocsp" -o "$DATA/check.der"
  openssl ocsp -respin "$DATA/check.der" -issuer "$WORK/openbao-root.pem" -cert "$DATA/b1.pem" \
    -CAfile "$WORK/openbao-root.pem" 2>&1 | grep -q ": good" || { echo "OpenBao did not answer good" >&2; exit 1; }
fi

run() { # run NAME URL MODE PREFIX [LUA] -> "req/s p99_ms"
  local out
  out=$(OCSP_MODE=$3 OCSP_PREFIX=$4 wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency -s "${5:-$DATA/ocsp.lua}" "$2" 2>&1)
  local rps p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -z "$non2xx" ] || { echo "$1: $non2xx non-2xx answers" >&2; exit 1; }
  echo "$rps $p99"
}
read -r cfssl_post cfssl_p99 < <(run "cfssl POST" http://127.0.0.1:8889/ post /)
read -r privca_post privca_post_p99 < <(run "privca POST" "http://127.0.0.1:$HTTP_PORT/ocsp" post /ocsp)
read -r privca_get privca_get_p99 < <(run "privca GET" "http://127.0.0.1:$HTTP_PORT" get /ocsp)
if [ "$OPENBAO" = 1 ]; then
  BAO_OCSP="http://127.0.0.1:$BAO_PLAIN_PORT/v1/pki/ocsp"
  read -r bao_post bao_post_p99 < <(run "OpenBao POST" "$BAO_OCSP" post /v1/pki/ocsp "$DATA/openbao.lua")
  read -r bao_get bao_get_p99 < <(run "OpenBao GET" "http://127.0.0.1:$BAO_PLAIN_PORT" get /v1/pki/ocsp "$DATA/openbao.lua")
  openbao_stop
fi
# Flood: garbage POSTs at c/2 while valid POSTs at c/2 are measured, against the same quiet load.
cat >"$DATA/garbage.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "this is not an OCSP request"
wrk.headers["Content-Type"] = "application/ocsp-request"
LUA
half=$((CONNECTIONS / 2 > 0 ? CONNECTIONS / 2 : 1))
quiet=$(OCSP_MODE=post OCSP_PREFIX=/ocsp wrk -t1 -c"$half" -d"${SECONDS_PER_RUN}s" --latency -s "$DATA/ocsp.lua" "http://127.0.0.1:$HTTP_PORT/ocsp" 2>&1 | awk '$1 == "99%" {print $2}')
wrk -t1 -c"$half" -d"$((SECONDS_PER_RUN + 2))s" -s "$DATA/garbage.lua" "http://127.0.0.1:$HTTP_PORT/ocsp" >"$DATA/garbage.out" 2>&1 &
flood_pid=$!
sleep 1
flood=$(OCSP_MODE=post OCSP_PREFIX=/ocsp wrk -t1 -c"$half" -d"${SECONDS_PER_RUN}s" --latency -s "$DATA/ocsp.lua" "http://127.0.0.1:$HTTP_PORT/ocsp" 2>&1 | awk '$1 == "99%" {print $2}')
wait "$flood_pid" || true
garbage_rps=$(awk '/^Requests\/sec/ {print $2}' "$DATA/garbage.out")
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v / 1000; else if (v ~ /ms$/) printf "%.3f", v + 0; else printf "%.3f", v * 1000 }'; }

[ -z "${BENCH_SMOKE:-}" ] || echo "smoke run (debug build, tiny sizes): the figures below only show that the benchmark works"
printf 'OCSP benchmark: %s certificates, wrk -t2 -c%s, %s s per run\n' "$CERTS" "$CONNECTIONS" "$SECONDS_PER_RUN"
printf '%-14s %12s %10s\n' "server" "req/s" "p99"
# cfssl's GET is not measured: Go's ServeMux cleans the path, so base64 with '/' or '//' gets
# a redirect instead of an answer; the goal compares POST.
printf '%-14s %12s %10s\n' "cfssl POST" "$cfssl_post" "$cfssl_p99" \
  "privca POST" "$privca_post" "$privca_post_p99" "privca GET" "$privca_get" "$privca_get_p99"
[ "$OPENBAO" = 1 ] && printf '%-14s %12s %10s\n' "OpenBao POST" "$bao_post" "$bao_post_p99" \
  "OpenBao GET" "$bao_get" "$bao_get_p99"
printf 'valid POST p99 quiet %s, under a garbage flood (%s req/s of garbage) %s\n' "$quiet" "$garbage_rps" "$flood"
awk -v q="$(to_ms "$quiet")" -v f="$(to_ms "$flood")" 'BEGIN { printf "p99 under flood / quiet: %.2f (goal <= 2)\n", f / q }'
awk -v a="$privca_post" -v b="$cfssl_post" -v g="$privca_get" 'BEGIN {
  printf "privca POST / cfssl POST: %.2f (goal >= 6)\nprivca GET / privca POST: %.2f (goal >= 1)\n", a / b, g / a }'
ocsp_result() { # ocsp_result SERIES REQ/S P99
  result ocsp "$1" per_s "$2" req/s
  result ocsp "$1" p99_ms "$(to_ms "$3")" ms
}
ocsp_result cfssl/POST "$cfssl_post" "$cfssl_p99"
ocsp_result privca/POST "$privca_post" "$privca_post_p99"
ocsp_result privca/GET "$privca_get" "$privca_get_p99"
if [ "$OPENBAO" = 1 ]; then
  ocsp_result openbao/POST "$bao_post" "$bao_post_p99"
  ocsp_result openbao/GET "$bao_get" "$bao_get_p99"
fi
result ocsp privca/POST/quiet p99_ms "$(to_ms "$quiet")" ms
result ocsp privca/POST/flood p99_ms "$(to_ms "$flood")" ms
if [ "$OPENBAO" = 1 ]; then
  awk -v a="$privca_post" -v b="$bao_post" -v g="$privca_get" -v h="$bao_get" 'BEGIN {
    printf "privca POST / OpenBao POST: %.2f (goal >= 12)\nprivca GET / OpenBao GET: %.2f (goal >= 12)\n", a / b, g / h }'
fi
