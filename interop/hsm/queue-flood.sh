#!/usr/bin/env bash
# The HSM queue under a flood of unauthenticated work: OCSP requests with a nonce (each one a
# signature on demand, up to ocsp.nonce_signatures_per_second) and well-formed SCEP PKCSReqs
# with a wrong challenge (each one an RA decryption and a signed CertRep FAILURE), replayed by
# wrk at c=256 in all, while certbot registers, issues and force-renews a certificate over
# ACME. Checks: certbot completes; privca's RSS stays under 2x its pre-flood value + 100 MB;
# privca_hsm_queue_depth{class}, scraped from /metrics every 0.2 s during the flood, never
# exceeds privca_hsm_queue_capacity{class}; the flood was shed (nonce fallbacks, refusals) and
# answered (OCSP successful or tryLater, SCEP 200 or 503 + Retry-After); OCSP with a nonce still
# works afterwards. QUEUE_FLOOD_SECONDS caps the flood (default 40; it stops when certbot is done).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../acme/lib-acme.sh"
HERE="$ROOT/interop/scep"
PY="${INTEROP_PYTHON:-$ROOT/.venv-tools/bin/python}"
[ -x "$PY" ] || PY=python3
MAX_SECONDS=${QUEUE_FLOOD_SECONDS:-40}
fresh_data_dir
start_challtestsrv
start_privca || exit 1
W="$DATA/flood"
mkdir -p "$W"
METRICS=(curl -sf --cacert "$DATA/root.pem" https://127.0.0.1:9443/metrics)
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVE_PID/status"; }

# The OCSP request: a certificate of ours, openssl's request with a nonce.
make_csr good tls-server ec "$DATA"
privca_cli issue --csr "$DATA/good.csr" --profile tls-server --out "$W/good-chain.pem" >/dev/null 2>&1
openssl x509 -in "$W/good-chain.pem" -out "$W/good.pem"
openssl ocsp -issuer "$DATA/ec.pem" -cert "$W/good.pem" -reqout "$W/ocsp.req" >/dev/null 2>&1
check "OCSP request with a nonce built" bash -c "openssl ocsp -reqin '$W/ocsp.req' -req_text | grep -q 'OCSP Nonce'"

# The SCEP request: a PKCSReq with a wrong challenge, enveloped for the RA, signed (replayed:
# privca decrypts and answers each copy with a signed FAILURE).
(cd "$HERE" && "$PY" - "$W/scep.req" <<'PY'
import sys
import scep_client as scep
_, certs = scep.get_ca_cert("http://127.0.0.1:8080/scep")
ra, _ = scep.pick_ra(certs)
key = scep.new_rsa_key()
csr = scep.make_csr(key, "flood.example.test", ["flood.example.test"], "not-the-challenge")
signer = scep.self_signed(key, csr.subject)
open(sys.argv[1], "wb").write(scep.pkcs_req(csr, ra, signer, key).der)
PY
)
check "SCEP PKCSReq built" test -s "$W/scep.req"
code=$(curl -s -o "$W/scep.resp" -w '%{http_code}' -H 'Content-Type: application/x-pki-message' \
  --data-binary @"$W/scep.req" 'http://127.0.0.1:8080/scep?operation=PKIOperation')
check "  answered alone with a CertRep (HTTP 200)" test "$code" = 200

cat >"$W/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("CTYPE")
codes = {}
response = function(status) codes[status] = (codes[status] or 0) + 1 end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function()
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("codes")) do io.write(string.format("status %d %d\n", status, n)) end
  end
end
LUA
flood() { # flood NAME URL BODY CONTENT-TYPE CONNECTIONS
  BODY=$3 CTYPE=$4 wrk -t1 -c"$5" -d"${MAX_SECONDS}s" --timeout 10s -s "$W/post.lua" "$2" >"$W/$1.wrk" 2>&1 &
  echo $! >"$W/$1.pid"
}

sleep 1
rss_before=$(rss_kb)
"${METRICS[@]}" >"$W/metrics.before"
: >"$W/samples"
(
  while :; do
    "${METRICS[@]}" 2>/dev/null | grep -E '^privca_hsm_queue_(depth|capacity)\{' >>"$W/samples"
    awk '/^VmRSS:/ {print "rss " $2}' "/proc/$SERVE_PID/status" >>"$W/samples" 2>/dev/null
    sleep 0.2
  done
) &
sampler=$!
started=$(date +%s)
flood ocsp http://127.0.0.1:8080/ocsp "$W/ocsp.req" application/ocsp-request 192
flood scep 'http://127.0.0.1:8080/scep?operation=PKIOperation' "$W/scep.req" application/x-pki-message 64
sleep 2

export REQUESTS_CA_BUNDLE="$DATA/root.pem"
CB=(timeout "$MAX_SECONDS" certbot --server "$DIR_URL" --config-dir "$DATA/cb" --work-dir "$DATA/cb" --logs-dir "$DATA/cb/logs" -n)
HTTP=(--standalone --http-01-address 127.0.0.1 --http-01-port 5002)
check "during the flood: certbot registers" "${CB[@]}" register --agree-tos -m flood@privca.test
check "during the flood: certbot issues (http-01)" "${CB[@]}" certonly "${HTTP[@]}" --cert-name flood -d flood.privca.test
before=$(serial_of "$DATA/cb/live/flood/cert.pem" 2>/dev/null)
check "during the flood: certbot renews (forced)" "${CB[@]}" renew --force-renewal --cert-name flood --no-random-sleep-on-renew
after=$(serial_of "$DATA/cb/live/flood/cert.pem" 2>/dev/null)
check "  a new certificate, chain verifies" bash -c "[ -n '$after' ] && [ '$before' != '$after' ] && \
  openssl verify -CAfile '$DATA/root.pem' -untrusted '$DATA/cb/live/flood/chain.pem' '$DATA/cb/live/flood/cert.pem'"
certbot_took=$(($(date +%s) - started))

# Stop the flood (wrk prints its statistics on SIGINT) and the sampler.
for n in ocsp scep; do
  pid=$(cat "$W/$n.pid")
  kill -INT "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
rss_after=$(rss_kb)
echo "    flood ran $(($(date +%s) - started)) s, certbot $certbot_took s; RSS ${rss_before} kB before, ${rss_after} kB after"
for n in ocsp scep; do
  echo "    $n: $(grep -E 'Requests/sec|requests in' "$W/$n.wrk" | tr -s ' ' | tr '\n' ' ')$(grep '^status' "$W/$n.wrk" | tr '\n' ' ')"
done

rss_peak=$(awk '$1 == "rss" && $2 > m {m = $2} END {print m + 0}' "$W/samples")
limit=$((2 * rss_before + 100 * 1024))
check "RSS bounded: peak ${rss_peak} kB, after ${rss_after} kB < 2 x ${rss_before} + 100 MB" \
  test "$rss_peak" -lt "$limit" -a "$rss_after" -lt "$limit"
report=$(awk -F'[{}" ]+' '
  /^privca_hsm_queue_capacity/ {cap[$3] = $NF}
  /^privca_hsm_queue_depth/ {n[$3]++; if ($NF + 0 > max[$3]) max[$3] = $NF + 0}
  END {for (c in cap) printf "%s %d %d %d\n", c, n[c], max[c] + 0, cap[c]}' "$W/samples")
echo "$report" | awk '{printf "    queue %-9s %3d samples, max depth %3d, capacity %d\n", $1, $2, $3, $4}'
check "queue depth sampled during the flood" test "$(awk '{s += $2} END {print s + 0}' <<<"$report")" -gt 20
check "queue depth never above its capacity (every class)" \
  bash -c "[ -n \"\$1\" ] && awk '\$3 > \$4 {bad = 1} END {exit bad}' <<<\"\$1\"" _ "$report"
check "the protocol queue was in use during the flood" test "$(awk '$1 == "protocol" {print $3}' <<<"$report")" -gt 0

"${METRICS[@]}" >"$W/metrics.after" || echo "    cannot read /metrics"
metric() { awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}' "$W/metrics.after"; }
fallbacks=$(metric 'privca_ocsp_nonce_fallback_total')
rejected=$(metric 'privca_hsm_queue_rejected_total')
echo "    nonce fallbacks $fallbacks, queue refusals $rejected, jobs skipped $(metric privca_hsm_jobs_skipped_total)"
check "nonce signing was capped (privca_ocsp_nonce_fallback_total > 0)" test "$fallbacks" -gt 0
check "issuance was never refused" test "$(metric 'privca_hsm_queue_rejected_total{class="issuance"}')" = 0
check "OCSP answered: only HTTP 200 (successful or tryLater)" \
  bash -c "grep -q '^status 200 ' '$W/ocsp.wrk' && ! grep '^status' '$W/ocsp.wrk' | grep -vq '^status 200 '"
check "SCEP answered: HTTP 200 (CertRep) or 503 (busy)" \
  bash -c "grep -q '^status 200 ' '$W/scep.wrk' && ! grep '^status' '$W/scep.wrk' | grep -Evq '^status (200|503) '"
if grep -q '^status 503 ' "$W/scep.wrk"; then
  hdr=$(curl -s -D - -o /dev/null -H 'Content-Type: application/x-pki-message' --data-binary @"$W/scep.req" \
    'http://127.0.0.1:8080/scep?operation=PKIOperation')
  echo "    (SCEP refusals seen; one request alone now: $(head -1 <<<"$hdr" | tr -d '\r'))"
fi
out=$(openssl ocsp -issuer "$DATA/ec.pem" -cert "$W/good.pem" -url http://127.0.0.1:8080/ocsp -CAfile "$DATA/root.pem" 2>&1)
check "after the flood: OCSP with a nonce, verified, nonce echoed" \
  bash -c "grep -q 'good.pem: good' <<<\"\$1\" && grep -q 'Response verify OK' <<<\"\$1\" && ! grep -q 'WARNING: no nonce' <<<\"\$1\"" _ "$out"
check "privca still running" kill -0 "$SERVE_PID"
finish
