#!/usr/bin/env bash
# `privca audit verify` with the CLI and the sqlite3 tool: a clean ledger verifies; an edited
# row, deleted newest rows and a chain recomputed without the HSM each make it exit non-zero
# and name where.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
privca_cli init >/dev/null
for i in 1 2 3; do
  make_csr "leaf$i" tls-server ec "$DATA"
  privca_cli issue --csr "$DATA/leaf$i.csr" --profile tls-server >/dev/null 2>&1
done
check "clean ledger verifies" privca_cli audit verify
DB="$DATA/privca.db"
sqlite3 "$DB" ".backup '$DATA/clean.db'" # the database with whatever its write-ahead log holds
restore() { rm -f "$DB-wal" "$DB-shm"; cp "$DATA/clean.db" "$DB"; }

sqlite3 "$DB" "UPDATE audit_events SET actor = 'mallory' WHERE seq = 4"
out=$(privca_cli audit verify || true)
if grep -q "seq 4.*edited" <<<"$out"; then ok "edited row detected: $(grep FAIL <<<"$out" | head -1)"; else fail "edit not detected: $out"; fi

restore
sqlite3 "$DB" "DELETE FROM audit_events WHERE seq > (SELECT MAX(seq) - 3 FROM audit_events)"
out=$(privca_cli audit verify || true)
if grep -q "deleted" <<<"$out"; then ok "deleted newest rows detected: $(grep FAIL <<<"$out" | head -1)"; else fail "deletion not detected: $out"; fi

restore
sqlite3 "$DB" "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"
python3 - "$DB" <<'PY'
# Recompute the whole chain the way privca does, without the HSM (no new checkpoints).
import hashlib, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
prev = "0" * 64
rows = db.execute("SELECT id, occurred_at, event, actor, serial, profile, issuer_id, detail, seq FROM audit_events WHERE seq IS NOT NULL ORDER BY seq").fetchall()
for (id_, at, event, actor, serial, profile, issuer, detail, seq) in rows:
    body = json.dumps({"seq": seq, "id": id_, "occurred_at": at, "event": event, "actor": actor, "serial": serial,
                       "profile": profile, "issuer_id": issuer, "detail": detail}, separators=(",", ":"), ensure_ascii=False)
    h = hashlib.sha256((prev + "\n" + body).encode()).hexdigest()
    db.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
    prev = h
db.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))
db.commit()
PY
out=$(privca_cli audit verify || true)
if grep -q "rewritten" <<<"$out" && ! grep -q "edited" <<<"$out"; then
  ok "recomputed chain detected by the signed checkpoints: $(grep FAIL <<<"$out" | head -1)"
else
  fail "recomputed chain not detected (or the recomputation was wrong): $out"
fi
finish
