#!/usr/bin/env bash
# CRL benchmark: build and sign a complete CRL with N revoked entries (default 1,000,000) with
# privca (entries streamed from the SQLite ledger, signature in SoftHSM2), cfssl gencrl and
# `openssl ca -gencrl` on the same serials, printing time, peak RSS and size and the ratio to
# cfssl (goal <= 0.3); then a delta CRL after 1,000 new revocations (goal < 100 ms).
#
#   bash benches/crl.sh                               full run (release build, 1,000,000 entries)
#   BENCH_ENTRIES=2000 PRIVCA_BIN=... bash benches/crl.sh   smoke run (test command)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/privca-target}"
N="${BENCH_ENTRIES:-1000000}"
if [ -z "${PRIVCA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin privca >/dev/null)
  PRIVCA_BIN="$CARGO_TARGET_DIR/release/privca"
fi
for tool in cfssl sqlite3 openssl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install golang-cfssl sqlite3 time)" >&2; exit 1; }
done
DATA=$(mktemp -d /tmp/privca-bench-crl.XXXXXX)
trap 'rm -rf "$DATA"' EXIT
cli() { "$PRIVCA_BIN" --config "$ROOT/conf/privca.dev.toml" --data-dir "$DATA" "$@"; }
cli init >/dev/null
BASE=1152921504606846976 # 0x1000000000000000: 8-byte serials with a non-zero first octet

# N revoked certificates straight into the ledger, as revoking them through privca leaves them
# (status, reason, time, revocation sequence and the DER CRL entry computed at revocation).
revoke_rows() { # revoke_rows FIRST LAST
  python3 - "$DATA/privca.db" "$1" "$2" "$BASE" <<'PY'
import datetime, sqlite3, sys
db, first, last, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
reasons = [("keyCompromise", 1), ("superseded", 4), ("cessationOfOperation", 5)]
def rows():
    for i in range(first, last + 1):
        name, code = reasons[i % 3]
        at = 1764000000 + i % 86400
        utc = datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%y%m%d%H%M%SZ").encode()
        body = b"\x02\x08" + (base + i).to_bytes(8, "big") + b"\x17\x0d" + utc \
            + b"\x30\x0c\x30\x0a\x06\x03\x55\x1d\x15\x04\x03\x0a\x01" + bytes([code])
        entry = b"\x30" + bytes([len(body)]) + body
        yield (f"{base + i:016x}", f"{i:064x}", name, at, i, entry)
c = sqlite3.connect(db)
c.executemany(
    "INSERT INTO certificates (serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, profile, "
    "requester, owner, tier, status, revocation_reason, revoked_at, revocation_seq, der, created_at, crl_entry) "
    "VALUES (?, 'ec', 'CN=bench', '[]', ?, 0, 4102444800, 'tls-server', 'bench', 'bench', 'internal', 'revoked', "
    "?, ?, ?, x'00', 0, ?)", rows())
c.execute("UPDATE counters SET value = ? WHERE name = 'revocation'", (last,))
c.commit()
PY
}
revoke_rows 1 "$N"

measure() { # measure OUTFILE command... -> prints "seconds peak_kib"
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$DATA/time.txt" "$@" >"$out" 2>"$DATA/err.txt" || { cat "$DATA/err.txt" >&2; exit 1; }
  cat "$DATA/time.txt"
}

read -r privca_s privca_kib < <(measure "$DATA/privca.out" "$PRIVCA_BIN" --config "$ROOT/conf/privca.dev.toml" --data-dir "$DATA" crl publish --issuer ec)
privca_ms=$(awk '/complete CRL/ {print $(NF-1)}' "$DATA/privca.out")
sqlite3 "$DATA/privca.db" "SELECT hex(der) FROM crls WHERE issuer_id = 'ec' AND kind = 'full' ORDER BY crl_number DESC LIMIT 1" | xxd -r -p >"$DATA/privca.crl"
entries=$(openssl crl -inform DER -in "$DATA/privca.crl" -noout -text | grep -c "Serial Number" || true)
[ "$entries" = "$N" ] || { echo "privca CRL has $entries entries, expected $N" >&2; exit 1; }
openssl crl -inform DER -in "$DATA/privca.crl" -CAfile "$DATA/ec-chain.pem" -noout -verify 2>&1 | grep -q "verify OK" || { echo "privca CRL does not verify" >&2; exit 1; }

# Peers: a software P-256 CA (they cannot use the HSM), the same serials and reasons.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DATA/ca.key" -out "$DATA/ca.pem" \
  -subj "/CN=bench CA" -days 30 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
python3 - "$DATA" "$N" "$BASE" <<'PY'
import sys
d, n, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
reasons = ["keyCompromise", "superseded", "cessationOfOperation"]
with open(f"{d}/serials.txt", "w") as s, open(f"{d}/index.txt", "w") as idx:
    for i in range(1, n + 1):
        s.write(f"{base + i}\n")
        idx.write(f"R\t491231235959Z\t251125000000Z,{reasons[i % 3]}\t{base + i:016X}\tunknown\t/CN=bench\n")
PY
read -r cfssl_s cfssl_kib < <(measure "$DATA/cfssl.b64" cfssl gencrl "$DATA/serials.txt" "$DATA/ca.pem" "$DATA/ca.key")
base64 -d "$DATA/cfssl.b64" >"$DATA/cfssl.crl"
cat >"$DATA/ca.cnf" <<CNF
[ ca ]
default_ca = bench
[ bench ]
database = $DATA/index.txt
crlnumber = $DATA/crlnumber
certificate = $DATA/ca.pem
private_key = $DATA/ca.key
default_md = sha256
default_crl_days = 7
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
CNF
echo 01 >"$DATA/crlnumber"
read -r openssl_s openssl_kib < <(measure "$DATA/openssl.out" openssl ca -config "$DATA/ca.cnf" -gencrl -out "$DATA/openssl.pem")
openssl crl -in "$DATA/openssl.pem" -outform DER -out "$DATA/openssl.crl"

# Delta after 1,000 new revocations.
revoke_rows "$((N + 1))" "$((N + 1000))"
cli crl publish --issuer ec --delta >"$DATA/delta.out"
delta_ms=$(awk '/delta CRL/ {print $(NF-1)}' "$DATA/delta.out")
delta_entries=$(awk '/delta CRL/ {print $6}' "$DATA/delta.out")

size() { stat -c %s "$1"; }
[ -z "${BENCH_SMOKE:-}" ] || echo "smoke run (debug build, tiny sizes): the figures below only show that the benchmark works"
printf 'CRL benchmark: %s revoked entries (P-256 issuer)\n' "$N"
printf '%-22s %10s %12s %14s\n' "tool" "time (s)" "peak RSS" "size (bytes)"
printf '%-22s %10s %9s MiB %14s\n' "privca (SoftHSM2)" "$privca_s" "$((privca_kib / 1024))" "$(size "$DATA/privca.crl")"
printf '%-22s %10s %9s MiB %14s\n' "cfssl gencrl" "$cfssl_s" "$((cfssl_kib / 1024))" "$(size "$DATA/cfssl.crl")"
printf '%-22s %10s %9s MiB %14s\n' "openssl ca -gencrl" "$openssl_s" "$((openssl_kib / 1024))" "$(size "$DATA/openssl.crl")"
printf 'privca build+sign inside the process: %s ms\n' "$privca_ms"
awk -v p="$privca_s" -v c="$cfssl_s" 'BEGIN { if (c > 0) printf "privca / cfssl time: %.2f (goal <= 0.3)\n", p / c }'
printf 'delta CRL after 1,000 revocations: %s entries in %s ms (goal < 100 ms)\n' "$delta_entries" "$delta_ms"
