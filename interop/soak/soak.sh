#!/usr/bin/env bash
# Soak: `privca serve` under a steady mixed load for SOAK_SECONDS (default 1800) at a fixed rate,
# not flat out (load.py; SOAK_RATES, default acme=0.5,est=1,scep=0.5,ocsp_get=4,ocsp_post=4,
# crl=0.5,revoke=0.2 requests/s): ACME orders with http-01, EST simpleenroll, SCEP PKCSReq,
# OCSP GET and POST, CRL fetches, revocations over ACME and the admin API; every answer is
# checked (orders valid, certificates issued with the request's key and verifying under their
# issuer, OCSP good or revoked as the run's own revocations say, every revocation on the CRL).
# Every 10 s: privca's RSS (VmRSS, RssAnon, RssFile), open descriptors, ledger size (SQLite file
# + WAL, or pg_database_size) and per-kind p99 latency and errors, into SOAK_OUT/soak.tsv; then
# report.py prints the figures, draws SOAK_OUT/soak.png and judges: zero errors, every kind at
# >= 80 % of its rate, anonymous RSS and descriptors flat after warm-up (last third vs middle
# third; see report.py). SQLite, or PostgreSQL with INTEROP_PG_URL.
#
#   bash interop/soak/soak.sh                              30 minutes, release build
#   SOAK_SECONDS=300 PRIVCA_BIN=.../debug/privca bash interop/soak/soak.sh    the test command's
set -uo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/privca-target}"
if [ -z "${PRIVCA_BIN:-}" ]; then
  (cd "$(dirname "$0")/../.." && cargo build -q --release --bin privca) || exit 1
  PRIVCA_BIN="$CARGO_TARGET_DIR/release/privca"
fi
source "$(dirname "$0")/../lib.sh"
source "$ROOT/interop/acme/lib-acme.sh"
SECS="${SOAK_SECONDS:-1800}"
OUT="${SOAK_OUT:-$INTEROP_OUT/soak${INTEROP_PG_URL:+-postgres}}"
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT"
fresh_data_dir
if [ "$CONFIG" = "$ROOT/conf/privca.dev.toml" ]; then
  sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$CONFIG" >"$DATA/privca.toml"
  CONFIG="$DATA/privca.toml"
fi
# Logs at warn: a 30-minute run at info writes every request.
sed -i 's/^filter = .*/filter = "warn"/' "$CONFIG"
export PRIVCA_SCEP_LAB_CHALLENGE=soak-lab-challenge
privca_cli init >/dev/null || { fail "privca init"; finish; exit 1; }
PW=$(privca_cli est user add soak1 --label default | tail -n 1)
TOKEN=$(privca_cli admin token new --role operator --expires 1d --note soak 2>/dev/null)
start_challtestsrv || exit 1
start_privca || exit 1
LEDGER="sqlite:$DATA/privca.db"
[ -n "$DB_URL" ] && LEDGER=$DB_URL
echo "# $SECS s of mixed load on $PRIVCA_BIN (pid $SERVE_PID, ${INTEROP_PG_URL:+PostgreSQL}${INTEROP_PG_URL:-SQLite})"
"$PY" "$ROOT/interop/soak/load.py" --pid "$SERVE_PID" --root "$DATA/root.pem" --seconds "$SECS" \
  --out "$OUT/soak.tsv" --summary "$OUT/summary.json" --ledger "$LEDGER" --est-user soak1 --est-password "$PW" \
  --scep-challenge "$PRIVCA_SCEP_LAB_CHALLENGE" --admin-token "$TOKEN" ${SOAK_RATES:+--rates "$SOAK_RATES"}
rc=$?
check "load generator ran to the end (exit $rc)" test "$rc" = 0
if [ -s "$OUT/summary.json" ]; then
  verdict=$("$PY" "$ROOT/interop/soak/report.py" "$OUT/soak.tsv" "$OUT/summary.json" "$OUT/soak.png")
  echo "$verdict"
  PASSED=$((PASSED + $(grep -c '^  ok ' <<<"$verdict")))
  FAILED=$((FAILED + $(grep -c '^  FAIL ' <<<"$verdict")))
fi
check "privca still serves /healthz" curl -skf https://127.0.0.1:8443/healthz
stop_privca
privca_cli audit seal >/dev/null 2>&1
check "audit chain verifies" privca_cli audit verify
finish
