#!/usr/bin/env bash
# SCEP with the certmonger daemon itself (not only its scep-submit helper): `getcert
# add-scep-ca` and `getcert request` against privca's default SCEP name, as an operator tracks a
# certificate with certmonger. The daemon builds its own PKCSReq (signed by a throw-away
# self-signed certificate with a long serial) and verifies the CertRep against the root that
# GetCACert returns. The request must reach MONITORING with the certificate on disk, verified to
# the root and recorded in the ledger. `getcert resubmit` sends the same key again, so the same
# transactionID (RFC 8894 §3.2.1.1: a hash of the public key), and gets the certificate already
# issued, not a second one; `getcert rekey` with a new one-time challenge gets a second
# certificate for a new key.
#
# The daemon runs on a session bus of its own (dbus-run-session), its store under $DATA, so the
# machine's certmonger and /var/lib/certmonger are left alone; `certmonger -c` runs the getcert
# commands and exits when they are done.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
command -v certmonger >/dev/null && command -v dbus-run-session >/dev/null ||
  { fail "certmonger and dbus-run-session are installed (.ci/packages.sh installs certmonger)"; finish; exit 1; }
fresh_data_dir
start_privca || exit 1
SCEP=http://127.0.0.1:8080/scep
W="$DATA/certmonger"
CMS="$W/store"
mkdir -p "$CMS"/{cas,requests,local,tmp,config}
CH1=$(privca_cli scep challenge new --profile device | tail -n 1)
CH2=$(privca_cli scep challenge new --profile device | tail -n 1)

# What the daemon runs: add the CA, request, list, resubmit, rekey, list again. Each step's exit
# status and output go to files checked below.
cat >"$W/steps.sh" <<STEPS
#!/bin/sh
cd '$W'
getcert add-scep-ca -s -c privca -u '$SCEP' >add.txt 2>&1; echo \$? >add.rc
getcert request -s -c privca -I cm -f '$W/cert.pem' -k '$W/key.pem' -N CN=cm.example.test \
  -D cm.example.test -L '$CH1' -w -v >request.txt 2>&1; echo \$? >request.rc
cp '$W/cert.pem' '$W/first.pem' 2>/dev/null
getcert list -s -i cm >list.txt 2>&1
cp '$W/key.pem' '$W/first-key.pem'
getcert resubmit -s -i cm -w -v >resubmit.txt 2>&1; echo \$? >resubmit.rc
sleep 1
cp '$W/cert.pem' '$W/resubmitted.pem' 2>/dev/null
getcert rekey -s -i cm -L '$CH2' -w -v >rekey.txt 2>&1; echo \$? >rekey.rc
getcert list -s -i cm >list2.txt 2>&1
STEPS
chmod +x "$W/steps.sh"
env HOME="$CMS" CERTMONGER_CONFIG_DIR="$CMS/config" CERTMONGER_CAS_DIR="$CMS/cas" \
  CERTMONGER_REQUESTS_DIR="$CMS/requests" CERTMONGER_LOCAL_CA_DIR="$CMS/local" CERTMONGER_TMPDIR="$CMS/tmp" \
  CERTMONGER_SYSTEM_LOCK_FILE="$CMS/lock" timeout 120 dbus-run-session -- certmonger -s -n -c "$W/steps.sh" \
  >"$W/daemon.txt" 2>&1

echo "# getcert request"
check "getcert add-scep-ca: exit 0" test "$(cat "$W/add.rc" 2>/dev/null)" = 0
check "getcert request -w: exit 0" test "$(cat "$W/request.rc" 2>/dev/null)" = 0
sed 's/^/      /' "$W/request.txt" 2>/dev/null | tail -n 3
check "  the tracked request is MONITORING, not stuck" \
  bash -c "grep -q 'status: MONITORING' '$W/list.txt' && grep -q 'stuck: no' '$W/list.txt'"
check "  the certificate it wrote verifies to the root through the issuing CA" \
  bash -c "openssl verify -CAfile '$DATA/root.pem' -untrusted '$DATA/ec.pem' '$W/first.pem' | grep -q ': OK$'"
check "  its key is the one certmonger generated" \
  test "$(openssl x509 -in "$W/first.pem" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$W/first-key.pem" -pubout 2>/dev/null)"
check "  its DNS SAN is the one requested" \
  bash -c "openssl x509 -in '$W/first.pem' -noout -ext subjectAltName | grep -q 'DNS:cm.example.test'"
serial1=$(openssl x509 -in "$W/first.pem" -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f')
check "  the ledger has it: profile device, requester scep:…" \
  test "$(sql "SELECT profile || ' ' || substr(requester, 1, 5) FROM certificates WHERE ltrim(serial, '0') = ltrim('${serial1:-none}', '0')")" = "device scep:"

echo "# getcert resubmit: the same key, so the same transaction"
check "getcert resubmit -w: exit 0" test "$(cat "$W/resubmit.rc" 2>/dev/null)" = 0
check "  the certificate already issued" cmp -s "$W/first.pem" "$W/resubmitted.pem"

echo "# getcert rekey with a new one-time challenge"
check "getcert rekey -w: exit 0" test "$(cat "$W/rekey.rc" 2>/dev/null)" = 0
check "  MONITORING again" grep -q 'status: MONITORING' "$W/list2.txt"
serial2=$(openssl x509 -in "$W/cert.pem" -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f')
check "  a second certificate, for certmonger's new key" bash -c "[ -n '$serial2' ] && [ '$serial2' != '$serial1' ] &&
  [ \"\$(openssl x509 -in '$W/cert.pem' -noout -pubkey)\" = \"\$(openssl pkey -in '$W/key.pem' -pubout)\" ] &&
  ! cmp -s '$W/key.pem' '$W/first-key.pem'"
check "  it verifies to the root" \
  bash -c "openssl verify -CAfile '$DATA/root.pem' -untrusted '$DATA/ec.pem' '$W/cert.pem' | grep -q ': OK$'"
check "  the ledger has two SCEP certificates: the resubmission made none" \
  test "$(sql "SELECT count(*) FROM certificates WHERE requester LIKE 'scep:%'")" = 2
if [ "$FAILED" != 0 ]; then
  echo "  certmonger's output:"
  tail -n 20 "$W/daemon.txt" "$W/request.txt" "$W/list.txt" "$W/resubmit.txt" "$W/rekey.txt" "$W/list2.txt" 2>/dev/null | sed 's/^/      /'
fi
finish
