#!/usr/bin/env bash
# `privca backup` and `privca restore` with the CLI, on SQLite or (INTEROP_PG_URL) PostgreSQL:
# issue, back up, revoke and issue more, publish CRLs; then (1) restore over the current ledger,
# (2) lose the whole data directory (ledger and token) and restore from the backup plus an
# auditor's audit export. Each time: the CA keys are the same (an old certificate still
# verifies, a new one is issued), the revocation made after the backup holds (CRL and OCSP),
# the certificate issued after it is recorded and its serial never reused, CRL numbers go on,
# and `privca audit verify` passes. Without any source of later changes the restore refuses.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
fresh_data_dir
B=$(mktemp -d /tmp/privca-backup.XXXXXX)
CLEANUP+=("$B")
privca_cli init >/dev/null
issue() { make_csr "$1" "$1" ec "$DATA"; privca_cli issue --csr "$DATA/$1.csr" --profile tls-server --out "$DATA/$1.pem" 2>&1 | sed -n 's/^issued serial //p'; }
# signs_with_old_keys NAME: a new certificate issues and verifies against the root and issuer
# certificates written before the backup ($KEEP).
signs_with_old_keys() {
  [ -n "$(issue "$1")" ] && openssl verify -CAfile "$KEEP/root.pem" -untrusted "$KEEP/ec.pem" "$DATA/$1.pem"
}
is_revoked() { [ "$(sql "SELECT status FROM certificates WHERE serial = '$1'")" = revoked ]; }
never_reused() { [ "$(sql "SELECT state FROM reservations WHERE serial = '$1'")" = aborted ]; }
KEEP=$(mktemp -d /tmp/privca-keep.XXXXXX)
CLEANUP+=("$KEEP")
cp "$DATA/root.pem" "$DATA/ec.pem" "$KEEP/"
before=$(issue before.example.test)
privca_cli crl publish --issuer ec >/dev/null
privca_cli audit seal
check "backup" privca_cli backup --out "$B/one"
check "  manifest and a copy of the token" test -s "$B/one/manifest.json" -a -d "$B/one/tokens"
privca_cli revoke --serial "$before" --reason keyCompromise >/dev/null
after=$(issue after.example.test)
for _ in 1 2 3; do privca_cli crl publish --issuer ec >/dev/null; done
crl_before=$(privca_cli crl publish --issuer ec | sed -n 's/.*complete CRL number \([0-9]*\).*/\1/p')
privca_cli audit seal
privca_cli audit export --out "$B/audit.json" 2>/dev/null

echo "# restore over the current ledger"
check "restore" privca_cli restore --from "$B/one"
check "  the revocation made after the backup holds" is_revoked "$before"
check "  the certificate issued after it: serial recorded, never reused" never_reused "$after"
n=$(privca_cli crl publish --issuer ec | sed -n 's/.*complete CRL number \([0-9]*\).*/\1/p')
check "  CRL numbers go on ($crl_before, then $n)" test "$n" -gt "$crl_before"
check "  the audit chain verifies" privca_cli audit verify
check "  the same keys sign: a new certificate verifies against the old root" signs_with_old_keys new.example.test

echo "# the data directory is lost: backup + audit export"
if [ -z "${INTEROP_PG_URL:-}" ]; then
  mv "$DATA" "$DATA.lost"
  CLEANUP+=("$DATA.lost")
  mkdir -p "$DATA"
  cp -a "$DATA.lost/secrets" "$DATA/" 2>/dev/null || true
  out=$(privca_cli restore --from "$B/one" 2>&1 || true)
  check "without a source of later changes: refused" grep -q "nothing tells what happened" <<<"$out"
  check "  and nothing written" test ! -e "$DATA/privca.db"
  python3 -c "import json; d=json.load(open('$B/audit.json')); d['rows'][-1]['detail']='{}'; json.dump(d, open('$B/bad.json','w'))"
  tampered=$(privca_cli restore --from "$B/one" --audit-export "$B/bad.json" 2>&1 || true)
  check "a tampered audit export is refused" grep -q "does not verify" <<<"$tampered"
  check "  and nothing written" test ! -e "$DATA/privca.db"
  check "restore with the audit export" privca_cli restore --from "$B/one" --audit-export "$B/audit.json"
  check "  the token came back" test -d "$DATA/tokens"
  check "  the revocation holds" is_revoked "$before"
  check "  the serial issued after the backup is never reused" never_reused "$after"
  n=$(privca_cli crl publish --issuer ec | sed -n 's/.*complete CRL number \([0-9]*\).*/\1/p')
  check "  CRL numbers go on ($crl_before, then $n)" test "$n" -gt "$crl_before"
  check "  the audit chain verifies" privca_cli audit verify
  check "  the same keys sign" signs_with_old_keys again.example.test
fi
finish
