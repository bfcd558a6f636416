#!/usr/bin/env bash
# SCEP (RFC 8894) with certmonger's scep-submit and an independent client codec
# (scep_client.py: pyasn1-alt-modules + cryptography): caps and CA certificates, PKCSReq by
# POST, GET (macOS style) and wrapped GET (Cisco style) with AES-128/256 and 3DES and
# SHA-1/256/512, one-time and static challenges, refusals (wrong, reused challenge, tampered
# signature, garbage, unknown operation), RenewalReq, the approval gate with CertPoll,
# repeated PKCSReqs and RenewalReq, GetCert, GetCRL, a PKCSReq submitted by certmonger, and a CA rollover
# (GetNextCACert checked with openssl cms, then the switch while privca runs). Every certificate
# is checked with openssl verify; the RA key is checked in the token with pkcs11-tool.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
HERE="$ROOT/interop/scep"
PY="$ROOT/.venv-tools/bin/python"
[ -x "$PY" ] || PY=python3
CLIENT=("$PY" "$HERE/scep_client.py")
SUBMIT=/usr/lib/certmonger/scep-submit
fresh_data_dir
export PRIVCA_SCEP_LAB_CHALLENGE=lab-static-challenge-42
start_privca || exit 1
BASE=http://127.0.0.1:8080/scep
W="$DATA/scep"
mkdir -p "$W"

challenge() { privca_cli scep challenge new "$@" | tail -n 1; }
verify() { openssl verify -CAfile "$DATA/root.pem" -untrusted "$W/ca.pem" "$1" 2>&1 | grep -q ': OK$'; }
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
ledger() { sql "SELECT $1 FROM certificates WHERE ltrim(serial, '0') = ltrim('$2', '0')"; }

# repeated DIR URL WHAT [--renewal]: the request of DIR again (same transactionID) gets the
# same certificate, and the transaction still has one certificate. (A static challenge and a
# renewal write nothing before the reservation, which is what finds the transaction again.)
repeated() {
  local dir=$1 url=$2 what=$3 out rc s; shift 3
  out=$(cd "$HERE" && "$PY" checks.py "$url" "$W/$dir" "$@")
  rc=$?
  echo "$out" | sed 's/^/      /'
  s=$(serial "$W/$dir/cert.pem")
  check "$what again (same transactionID): the same certificate" test "$rc" = 0 -a "$(sed -n 's/^SERIAL=//p' <<<"$out")" = "${s##0}"
  check "  one certificate for the transaction" \
    test "$(sql "SELECT COUNT(*) FROM reservations WHERE requester LIKE '%/$(cat "$W/$dir/txid")' AND state = 'committed'")" = 1
}

# enroll NAME EXPECTED-EXIT ARGS...: scep_client.py enroll into $W/NAME; checks the exit code
# (0 SUCCESS, 2 FAILURE, 3 PENDING) and, optionally, the status line.
enroll() {
  local name=$1 expect=$2; shift 2
  "${CLIENT[@]}" enroll "$@" --dir "$W/$name" >"$W/$name.out" 2>&1
  local rc=$?
  cat "$W/$name.out" | sed 's/^/      /'
  [ "$rc" = "$expect" ]
}

check "client codec self-test (openssl cms cross-checks)" "$PY" "$HERE/selftest.py"

echo "# GetCACaps and GetCACert"
caps=$("$SUBMIT" -u "$BASE" -c 2>&1)
check "certmonger scep-submit -c: every capability" bash -c "for c in Renewal SHA-1 SHA-256 SHA-512 AES DES3 GetNextCACert POSTPKIOperation SCEPStandard; do grep -qx \"\$c\" <<<'$caps' || exit 1; done"
"$SUBMIT" -u "$BASE" -C >"$W/certmonger-ca.pem" 2>/dev/null
check "certmonger scep-submit -C: the RA encryption certificate first" \
  bash -c "openssl x509 -in '$W/certmonger-ca.pem' -noout -subject | grep -q 'SCEP RA encryption'"
code=$(curl -s -o "$W/ca.der" -w '%{http_code} %{content_type}' "$BASE/pkiclient.exe?operation=GetCACert")
check "GetCACert: application/x-x509-ca-ra-cert" test "$code" = "200 application/x-x509-ca-ra-cert"
openssl pkcs7 -inform DER -in "$W/ca.der" -print_certs -out "$W/all.pem" 2>/dev/null
check "GetCACert: RA encryption, RA signing, issuing CA, root in that order" \
  bash -c "openssl pkcs7 -inform DER -in '$W/ca.der' -print_certs -noout | grep '^subject' | tr '\n' '|' | grep -q 'SCEP RA encryption.*SCEP RA signing.*issuing CA.*root CA'"
awk '/BEGIN/{n++} n>=3' "$W/all.pem" >"$W/ca.pem" # issuing CA + root, for openssl verify
awk '/BEGIN/{n++} n==1' "$W/all.pem" >"$W/ra.pem"
awk '/BEGIN/{n++} n==2' "$W/all.pem" >"$W/ra-signing.pem"
awk '/BEGIN/{n++} n>=2' "$W/all.pem" >"$W/others.pem" # RA signing certificate, issuing CA, root
awk '/BEGIN/{n++} n==3' "$W/all.pem" >"$W/issuing.pem"
check "RA encryption certificate: keyEncipherment only, RSA-2048, verifies" \
  bash -c "openssl x509 -in '$W/ra.pem' -noout -ext keyUsage | grep -qx ' *Key Encipherment' && openssl x509 -in '$W/ra.pem' -noout -text | grep -q '(2048 bit)' && openssl verify -CAfile '$DATA/root.pem' -untrusted '$W/ca.pem' '$W/ra.pem' | grep -q OK"
check "RA signing certificate: digitalSignature only, another RSA-2048 key, verifies" \
  bash -c "openssl x509 -in '$W/ra-signing.pem' -noout -ext keyUsage | grep -qx ' *Digital Signature' && [ \"\$(openssl x509 -in '$W/ra.pem' -noout -pubkey)\" != \"\$(openssl x509 -in '$W/ra-signing.pem' -noout -pubkey)\" ] && openssl verify -CAfile '$DATA/root.pem' -untrusted '$W/ca.pem' '$W/ra-signing.pem' | grep -q OK"
check "GetCACaps over GET is text/plain" \
  test "$(curl -s -o /dev/null -w '%{content_type}' "$BASE?operation=GetCACaps")" = "text/plain; charset=us-ascii"

echo "# PKCSReq"
CH=$(challenge --profile device --owner alice)
check "POST, AES-128, SHA-256, one-time challenge: SUCCESS" \
  enroll p1 0 "$BASE" --cn p1.example.test --san p1.example.test --challenge "$CH"
check "  certificate verifies, SAN kept" \
  bash -c "openssl verify -CAfile '$DATA/root.pem' -untrusted '$W/ca.pem' '$W/p1/cert.pem' | grep -q OK && openssl x509 -in '$W/p1/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:p1.example.test'"
S1=$(serial "$W/p1/cert.pem")
check "  owner from the challenge (alice), tier from the profile" test "$(ledger "owner || ' ' || tier" "$S1")" = "alice network-critical"
check "  the challenge is stored only as a hash" test "$(sql "SELECT COUNT(*) FROM scep_challenges WHERE challenge_hash = '$CH'")" = 0
check "same challenge again: FAILURE badRequest" \
  enroll p2 2 "$BASE" --cn p2.example.test --san p2.example.test --challenge "$CH"
check "  failInfo badRequest" grep -q badRequest "$W/p2.out"
check "wrong challenge: FAILURE badRequest" \
  enroll p3 2 "$BASE" --cn p3.example.test --san p3.example.test --challenge not-the-challenge
check "  failInfo badRequest" grep -q badRequest "$W/p3.out"
CH=$(challenge --profile vpn-gateway)
check "GET (raw + and /), AES-256, SHA-512, /scep/vpn/pkiclient.exe: SUCCESS" \
  enroll p4 0 "$BASE/vpn/pkiclient.exe" --cn vpn1.example.test --san vpn1.example.test --challenge "$CH" --method get --cipher aes256 --digest sha512
check "  vpn-gateway profile (ipsecIKE)" bash -c "openssl x509 -in '$W/p4/cert.pem' -noout -ext extendedKeyUsage | grep -q '1.3.6.1.5.5.7.3.17\|ipsec Internet Key Exchange'"
CH=$(challenge --profile device --uses 2)
check "GET wrapped with %0A (Cisco), 3DES, SHA-1: SUCCESS" \
  enroll p5 0 "$BASE/pkiclient.exe" --cn p5.example.test --san p5.example.test --challenge "$CH" --method get-wrapped --cipher 3des --digest sha1
check "--uses 2: a second enrollment with the same challenge: SUCCESS" \
  enroll p6 0 "$BASE" --cn p6.example.test --san p6.example.test --challenge "$CH" --sig-oid withDigest
check "static challenge of the lab name: SUCCESS, owner lab" \
  enroll p7 0 "$BASE/lab/pkiclient.exe" --cn p7.example.test --san p7.example.test --challenge "$PRIVCA_SCEP_LAB_CHALLENGE"
check "  owner lab in the ledger" test "$(ledger owner "$(serial "$W/p7/cert.pem")")" = lab
repeated p7 "$BASE/lab/pkiclient.exe" "PKCSReq with the static challenge"
# A copy of a transaction whose first copy is still being signed (a `reserved` reservation,
# written here as the first copy's would be): PENDING; ten minutes later it counts as
# interrupted, and the copy is issued.
"${CLIENT[@]}" pkcsreq --ca-certs "$W/all.pem" --cn p9.example.test --san p9.example.test \
  --challenge "$PRIVCA_SCEP_LAB_CHALLENGE" --dir "$W/p9" >/dev/null 2>&1
now=$(date +%s)
sql "INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, created_at, updated_at) \
  SELECT '0f0f0f0f', issuer_id, profile, 'scep:lab/$(cat "$W/p9/txid")', '00', 'reserved', $now, $now \
  FROM certificates WHERE ltrim(serial, '0') = ltrim('$(serial "$W/p7/cert.pem")', '0')" >/dev/null
out=$(cd "$HERE" && "$PY" checks.py "$BASE/lab/pkiclient.exe" "$W/p9" --pending)
check "a copy of a transaction in flight: PENDING" test $? = 0
sql "UPDATE reservations SET created_at = created_at - 601 WHERE serial = '0f0f0f0f'" >/dev/null
out=$(cd "$HERE" && "$PY" checks.py "$BASE/lab/pkiclient.exe" "$W/p9")
check "  the same after its reservation was left for ten minutes (interrupted): SUCCESS" test $? = 0
CH=$(challenge --profile device --ttl 1s)
sleep 2
check "expired challenge: FAILURE badRequest" \
  enroll p8 2 "$BASE" --cn p8.example.test --san p8.example.test --challenge "$CH"
check "  failInfo badRequest" grep -q badRequest "$W/p8.out"
out=$(cd "$HERE" && "$PY" checks.py "$BASE" "$W/p1")
rc=$?
echo "$out" | sed 's/^/      /'
check "repeated PKCSReq (same transactionID): the same certificate, no second one" \
  test "$rc" = 0 -a "$(sed -n 's/^SERIAL=//p' <<<"$out")" = "${S1##0}"
check "  and a tampered signature: signed CertRep FAILURE badMessageCheck (checks.py)" test "$rc" = 0
check "garbage PKIOperation: HTTP 400" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-pki-message' --data-binary 'garbage' "$BASE?operation=PKIOperation")" = 400
check "unknown operation: HTTP 400" test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE?operation=Frobnicate")" = 400

echo "# RenewalReq"
check "RenewalReq signed by the certificate being renewed: SUCCESS" \
  enroll r1 0 "$BASE" --cn p1.example.test --san p1.example.test --renew-cert "$W/p1/cert.pem" --renew-key "$W/p1/key.pem"
check "  the new certificate renews the old one in the ledger" \
  test "$(ledger "ltrim(renews_serial, '0')" "$(serial "$W/r1/cert.pem")")" = "${S1##0}"
repeated r1 "$BASE" "RenewalReq" --renewal
privca_cli revoke --serial "$(serial "$W/p5/cert.pem")" --reason superseded >/dev/null
check "RenewalReq signed by a revoked certificate: FAILURE badRequest" \
  enroll r2 2 "$BASE" --cn p5.example.test --san p5.example.test --renew-cert "$W/p5/cert.pem" --renew-key "$W/p5/key.pem"

echo "# approval gate (name gated): PENDING, CertPoll, approve, CertPoll"
CH=$(challenge --profile device-gated)
check "PKCSReq on an approval profile: PENDING" \
  enroll g1 3 "$BASE/gated" --cn g1.example.test --san g1.example.test --challenge "$CH"
"${CLIENT[@]}" poll "$BASE/gated" --dir "$W/g1" >/dev/null 2>&1
check "CertPoll before approval: PENDING" test $? = 3
id=$(sql "SELECT id FROM approvals WHERE status = 'pending'")
check "an approver approves through the admin API" api_approve "$id"
"${CLIENT[@]}" poll "$BASE/gated" --dir "$W/g1" >/dev/null 2>&1
check "CertPoll once approved: SUCCESS" test $? = 0
check "  certificate verifies" verify "$W/g1/cert.pem"

echo "# GetCert and GetCRL"
check "GetCert by issuer and serial: SUCCESS, the same certificate" \
  bash -c "'${CLIENT[0]}' '${CLIENT[1]}' getcert '$BASE' --cert '$W/p1/cert.pem' --key '$W/p1/key.pem' --serial '$S1' --dir '$W/gc' >/dev/null && cmp -s <(openssl x509 -in '$W/gc/cert.pem' -outform DER) <(openssl x509 -in '$W/p1/cert.pem' -outform DER)"
"${CLIENT[@]}" getcert "$BASE" --cert "$W/p1/cert.pem" --key "$W/p1/key.pem" --serial 0badc0de --dir "$W/gc2" >"$W/gc2.out" 2>&1
rc=$?
check "GetCert of an unknown serial: FAILURE badCertId" bash -c "[ $rc = 2 ] && grep -q badCertId '$W/gc2.out'"
privca_cli crl publish >/dev/null 2>&1
check "GetCRL: SUCCESS with the issuing CA's CRL" \
  bash -c "'${CLIENT[0]}' '${CLIENT[1]}' getcrl '$BASE' --cert '$W/p1/cert.pem' --key '$W/p1/key.pem' --dir '$W/crl' >/dev/null && openssl crl -in '$W/crl/crl.pem' -noout -CAfile '$W/issuing.pem' 2>&1 | grep -q 'verify OK'"
check "  the CRL lists the revoked certificate" \
  bash -c "openssl crl -in '$W/crl/crl.pem' -noout -text | grep -qi \"$(serial "$W/p5/cert.pem")\""

echo "# certmonger submits a PKCSReq built by the independent codec"
# scep-submit verifies the CertRep with PKCS7_verify: the RA certificate (-r) chains to the
# issuing CA and the root, so -N gets both.
CH=$(challenge --profile device)
"${CLIENT[@]}" pkcsreq --ca-certs "$W/all.pem" --cn cm1.example.test --san cm1.example.test --challenge "$CH" --dir "$W/cm" >/dev/null 2>&1
"$SUBMIT" -u "$BASE" -r "$W/ra.pem" -N "$W/others.pem" -p "$W/cm/pkcsreq.pem" >"$W/cm.out" 2>&1
check "scep-submit -p: SUCCESS (exit 0)" test $? = 0
"${CLIENT[@]}" decrypt --dir "$W/cm" "$W/cm.out" >/dev/null 2>&1
check "  its certificate opens with the requester's key and verifies" verify "$W/cm/cert.pem"
"$SUBMIT" -u "$BASE" -r "$W/ra.pem" -N "$W/others.pem" -p "$W/cm/pkcsreq.pem" >"$W/cm2.out" 2>&1
check "scep-submit -p again (same transaction): SUCCESS, no second certificate" \
  test "$(sql "SELECT COUNT(*) FROM certificates WHERE requester LIKE 'scep:default/%' AND subject LIKE '%cm1.example.test%'")" = 1
CH=$(challenge --profile device-gated)
"${CLIENT[@]}" pkcsreq --ca-certs "$W/all.pem" --cn cm2.example.test --san cm2.example.test --challenge "$CH" --dir "$W/cm2" >/dev/null 2>&1
"$SUBMIT" -u "$BASE/gated" -r "$W/ra.pem" -N "$W/others.pem" -p "$W/cm2/pkcsreq.pem" >/dev/null 2>&1
check "scep-submit on an approval profile: PENDING (exit 1)" test $? = 1

echo "# CA rollover: GetNextCACert announces the successor, which signs from active_from on"
# A successor of issuer `ec` that takes over 20 s after the restart: enough for the checks
# before the switch, which then happens while privca runs (no restart).
stop_privca
[ "$CONFIG" = "$ROOT/conf/privca.dev.toml" ] &&
  sed -e "s#^dir = \"profiles\"#dir = \"$ROOT/conf/profiles\"#" "$CONFIG" >"$DATA/privca.toml" && CONFIG="$DATA/privca.toml"
SWITCH=$(($(date +%s) + 20))
cat >>"$CONFIG" <<TOML

[[issuer]]
id = "ec-next"
key = "ecdsa-p256"
subject = "CN=privca dev issuing CA EC next,O=privca development"
validity = "5y"
replaces = "ec"
active_from = "$(date -u -d "@$SWITCH" +%Y-%m-%dT%H:%M:%SZ)"
TOML
start_privca || exit 1
code=$(curl -s -o "$W/next.der" -w '%{http_code} %{content_type}' "$BASE/pkiclient.exe?operation=GetNextCACert")
check "GetNextCACert: 200 application/x-x509-next-ca-cert" test "$code" = "200 application/x-x509-next-ca-cert"
check "  signed by the RA key, whose certificate chains to the current CA (openssl cms -verify)" \
  openssl cms -verify -purpose any -inform DER -in "$W/next.der" -CAfile "$W/ca.pem" -out "$W/next-inner.der"
openssl pkcs7 -inform DER -in "$W/next-inner.der" -print_certs -out "$W/next-all.pem" 2>/dev/null
awk '/BEGIN/{n++} n==3' "$W/next-all.pem" >"$W/next-issuing.pem"
check "  holds the RA certificates, then the new issuing CA, which chains to the root" \
  bash -c "openssl x509 -in '$W/next-issuing.pem' -noout -subject | grep -q 'EC next' && openssl verify -CAfile '$DATA/root.pem' '$W/next-issuing.pem' | grep -q OK"
CH=$(challenge --profile device)
check "before active_from: PKCSReq SUCCESS" \
  enroll r1 0 "$BASE" --cn r1.example.test --san r1.example.test --challenge "$CH"
check "  signed by the current CA" bash -c "openssl x509 -in '$W/r1/cert.pem' -noout -issuer | grep -q 'issuing CA EC$'"
while [ "$(date +%s)" -le "$SWITCH" ]; do sleep 1; done
check "after active_from: GetNextCACert 404 (no rollover in progress)" \
  test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/pkiclient.exe?operation=GetNextCACert")" = 404
curl -s -o "$W/ca2.der" "$BASE/pkiclient.exe?operation=GetCACert"
check "  GetCACert: RA encryption and signing, new issuing CA, the RA's issuer (old CA), root" \
  bash -c "openssl pkcs7 -inform DER -in '$W/ca2.der' -print_certs -noout | grep '^subject' | tr '\n' '|' | grep -q 'SCEP RA encryption[^|]*|[^|]*SCEP RA signing[^|]*|[^|]*EC next|[^|]*issuing CA EC|[^|]*root CA|$'"
CH=$(challenge --profile device)
check "  PKCSReq SUCCESS" enroll r2 0 "$BASE" --cn r2.example.test --san r2.example.test --challenge "$CH"
check "  signed by the new CA, verifies to the root" \
  bash -c "openssl x509 -in '$W/r2/cert.pem' -noout -issuer | grep -q 'EC next' && openssl verify -CAfile '$DATA/root.pem' -untrusted '$W/next-issuing.pem' '$W/r2/cert.pem' | grep -q OK"
check "  the ledger records the new issuer" test "$(ledger issuer_id "$(serial "$W/r2/cert.pem")")" = ec-next

echo "# CN-only requests on the default name (profile device: san.from_cn = \"dns-if-hostname\")"
# What devices send: a subject CN and no subjectAltName. A host-name CN also becomes a DNS SAN, an
# IP address an IP SAN; a serial number stays a CN-only identity. The issuer is ec-next by now.
curl -s -o "$W/cn-ca.der" "$BASE/pkiclient.exe?operation=GetCACert"
openssl pkcs7 -inform DER -in "$W/cn-ca.der" -print_certs -out "$W/cn-all.pem" 2>/dev/null
awk '/BEGIN/{n++} n==1' "$W/cn-all.pem" >"$W/cn-ra.pem"
awk '/BEGIN/{n++} n>=2' "$W/cn-all.pem" >"$W/cn-others.pem" # RA signing, issuing CAs, root
cnverify() { openssl verify -CAfile "$DATA/root.pem" -untrusted "$W/cn-others.pem" "$1" 2>&1 | grep -q ': OK$'; }
# cn_cert CERT SUBJECT SAN: verifies; subject (RFC 2253) and subjectAltName (as openssl prints
# it, spaces removed; "" for none) as given.
cn_cert() {
  cnverify "$1" &&
    [ "$(openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')" = "$2" ] &&
    [ "$(openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ')" = "$3" ]
}
CH=$(challenge --profile device)
"${CLIENT[@]}" pkcsreq --ca-certs "$W/cn-all.pem" --style certmonger --cn cmcn.example.test --challenge "$CH" \
  --dir "$W/cmcn" >/dev/null 2>&1
openssl req -inform DER -in "$W/cmcn/csr.der" -noout -text >"$W/cmcn-csr.txt" 2>&1
check "certmonger-style CSR: subject CN only, challengePassword, extensionRequest without subjectAltName" \
  bash -c "grep -q 'Subject: CN *= *cmcn.example.test$' '$W/cmcn-csr.txt' && grep -q challengePassword '$W/cmcn-csr.txt' && grep -q 'Basic Constraints' '$W/cmcn-csr.txt' && ! grep -q 'Alternative Name' '$W/cmcn-csr.txt'"
"$SUBMIT" -u "$BASE" -r "$W/cn-ra.pem" -N "$W/cn-others.pem" -p "$W/cmcn/pkcsreq.pem" >"$W/cmcn.out" 2>&1
check "  certmonger scep-submit -p with it: SUCCESS (exit 0)" test $? = 0
"${CLIENT[@]}" decrypt --dir "$W/cmcn" "$W/cmcn.out" >/dev/null 2>&1
check "  certificate verifies; subjectAltName DNS:cmcn.example.test copied from the CN" \
  cn_cert "$W/cmcn/cert.pem" CN=cmcn.example.test DNS:cmcn.example.test
CH=$(challenge --profile device)
check "sscep-style CN-only request (serial number), 3DES, SHA-1: SUCCESS" \
  enroll sscep1 0 "$BASE" --style sscep --cn FTX1234W0AB --challenge "$CH" --cipher 3des --digest sha1
check "  certificate verifies, CN=FTX1234W0AB, no subjectAltName" cn_cert "$W/sscep1/cert.pem" CN=FTX1234W0AB ""
CH=$(challenge --profile device)
check "sscep-style CN-only request (IP address), 3DES, SHA-1: SUCCESS" \
  enroll sscep2 0 "$BASE" --style sscep --cn 192.0.2.10 --challenge "$CH" --cipher 3des --digest sha1
check "  certificate verifies, subjectAltName IP Address:192.0.2.10" \
  cn_cert "$W/sscep2/cert.pem" CN=192.0.2.10 IPAddress:192.0.2.10
CH=$(challenge --profile device)
check "Cisco-IOS-style request (CN + unstructuredName), GET wrapped, 3DES, SHA-1: SUCCESS" \
  enroll ios1 0 "$BASE/pkiclient.exe" --style ios --cn ios1.example.test --challenge "$CH" --method get-wrapped \
  --cipher 3des --digest sha1
check "  certificate verifies, subject CN only, subjectAltName DNS:ios1.example.test" \
  cn_cert "$W/ios1/cert.pem" CN=ios1.example.test DNS:ios1.example.test
CH=$(challenge --profile device)
check "Cisco-IOS-style request with a MAC address as CN (001a.2b3c.4d5e): SUCCESS" \
  enroll ios2 0 "$BASE/pkiclient.exe" --style ios --cn 001a.2b3c.4d5e --challenge "$CH" --method get-wrapped \
  --cipher 3des --digest sha1
check "  certificate verifies, no subjectAltName" cn_cert "$W/ios2/cert.pem" CN=001a.2b3c.4d5e ""
# A name on tls-server, which still requires a SAN: the refusal names the rule and the way out.
stop_privca
cat >>"$CONFIG" <<'TOML'

[scep.names.servers]
profile = "tls-server"
TOML
start_privca || exit 1
CH=$(challenge --profile tls-server)
check "CN-only request on a tls-server name: FAILURE badRequest" \
  enroll srv1 2 "$BASE/servers" --style sscep --cn www.example.test --challenge "$CH"
check "  failInfoText: profile tls-server requires at least one subjectAltName (dns or ip) (san.required): add one" \
  grep -q "failInfo=badRequest text='profile tls-server requires at least one subjectAltName (dns or ip) (san.required): add one to the request'" "$W/srv1.out"

echo "# the RA decryption key is no padding oracle; envelope failures are limited per address"
# Last of the SCEP requests: the address stays limited for the rest of the minute.
(cd "$HERE" && "$PY" oracle.py "$BASE/lab" "$PRIVCA_SCEP_LAB_CHALLENGE" 20) >"$W/oracle.out" 2>&1
check "oracle.py: (b)-(e) answered alike, (a) served, the limit applies" test $? = 0
sed 's/^/    /' "$W/oracle.out"
check "  metrics: privca_scep_envelope_failures_total and privca_scep_limited_total count them" \
  bash -c "m=\$(curl -sk https://127.0.0.1:9443/metrics); grep -Eq '^privca_scep_envelope_failures_total (1[2-9]|[2-9][0-9])' <<<\"\$m\" && grep -Eq '^privca_scep_limited_total [1-9]' <<<\"\$m\""

echo "# keys"
label=$(sed -n 's/^token_label *= *"\(.*\)"/\1/p' "$ROOT/conf/privca.dev.toml")
objects=$(SOFTHSM2_CONF="$DATA/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label "$label" \
  --login --pin "$(cat "$DATA/secrets/user.pin")" --list-objects --type privkey 2>/dev/null)
check "pkcs11-tool: the RA signing key is in the token, sensitive, never extractable, signs only" \
  bash -c "grep -A3 'label: *privca-scep-ra\$' <<<'$objects' | grep -q 'always sensitive, never extractable' && grep -A3 'label: *privca-scep-ra\$' <<<'$objects' | grep 'Usage:' | grep -q sign && ! grep -A3 'label: *privca-scep-ra\$' <<<'$objects' | grep 'Usage:' | grep -q decrypt"
check "pkcs11-tool: the RA decryption key is in the token, sensitive, never extractable, decrypts only" \
  bash -c "grep -A3 'label: *privca-scep-ra-encryption' <<<'$objects' | grep -q 'always sensitive, never extractable' && grep -A3 'label: *privca-scep-ra-encryption' <<<'$objects' | grep 'Usage:' | grep -q decrypt && ! grep -A3 'label: *privca-scep-ra-encryption' <<<'$objects' | grep 'Usage:' | grep -q sign"
check "no RA or CA private key outside the token" bash -c "! grep -rl 'PRIVATE KEY' '$DATA' --exclude-dir=tokens --exclude-dir=scep"
[ -n "${SCEP_KEEP:-}" ] && trap - EXIT
finish
