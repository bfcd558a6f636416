#!/usr/bin/env bash
# Regenerates the generated part of the seed corpora in fuzz/seeds/<target>/ (checked in; run
# by hand, not by CI). The other part, files named CLIENT-OPERATION (certbot-, lego-, uacme-,
# curl-, openssl-, scepclient-, certmonger-), is traffic of the real clients captured by
# fuzz/capture.sh, which says what each sent; this script leaves those files alone.
#
# Where each generated seed comes from:
#   csr/           PKCS#10 requests from `openssl req` (P-256 with DNS and IP SANs, RSA-2048 with
#                  a challengePassword as SCEP clients send, Ed25519 with an email SAN, no
#                  subject and SANs only as certbot and lego send) and from scep_client.py.
#   ocsp_request/  `openssl ocsp -reqout` (with and without nonce, SHA-1 and SHA-256 CertIDs,
#                  two CertIDs), as interop/revocation/openssl-ocsp.sh sends them.
#   ocsp_get/      the same requests as GET paths: plain base64 (`/` and `+` raw), percent-encoded,
#                  URL-safe without padding, after a double slash.
#   est_body/      the CSRs base64-encoded as curl posts them in interop/est/est.sh (64-column
#                  lines, one line, PEM armour, no padding, CRLF), a Full PKI Request from
#                  interop/est/cmc.py, and an `Authorization: Basic` value.
#   scep_message/  pkiMessages from interop/scep/scep_client.py (PKCSReq AES-128/SHA-256,
#                  3DES/SHA-1, AES-256/SHA-512, RenewalReq, CertPoll, GetCert, GetCRL), a
#                  Cisco-style wrapped GET query, and `content:` plaintexts (see the target).
#   acme_jws/      JWS bodies signed as interop/acme/protocol.py signs them: newAccount with each
#                  accepted algorithm (ES256, ES384, RS256, PS256, EdDSA), with EAB, newOrder,
#                  finalize, POST-as-GET, challenge, keyChange, revokeCert; RFC 7515 A.3 flattened.
# Python: .venv-tools (cryptography, pyasn1-alt-modules), as the interop scripts use it.
set -euo pipefail
cd "$(dirname "$0")"
FUZZ=$PWD
ROOT=$(cd .. && pwd)
PY="${PY:-$ROOT/.venv-tools/bin/python}"
[ -x "$PY" ] || PY=python3
OUT="$FUZZ/seeds"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"/{csr,ocsp_request,ocsp_get,est_body,scep_message,acme_jws}
for f in "$OUT"/*/*; do
  case "$(basename "$f")" in
    certbot-* | lego-* | uacme-* | curl-* | openssl-* | scepclient-* | certmonger-*) ;; # fuzz/capture.sh's
    *) rm -f "$f" ;;
  esac
done

# --- CSRs (openssl req)
csr() { # name keyopts... -- reqopts...
  local name=$1
  shift
  openssl req -new -nodes -keyout "$TMP/$name.key" -outform DER -out "$TMP/$name.der" "$@" 2>/dev/null
  cp "$TMP/$name.der" "$OUT/csr/$name.der"
}
csr p256-sans -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=www.example.test" \
  -addext "subjectAltName=DNS:www.example.test,DNS:example.test,IP:192.0.2.7,IP:2001:db8::7"
# challengePassword comes from a config section (openssl drops attributes when -subj is given).
cnf() { printf '[req]\nprompt=no\ndistinguished_name=dn\nattributes=a\n[dn]\n%s\n[a]\nchallengePassword=lab\n' "$1"; }
cnf $'CN=router1.example.test\nO=Example' >"$TMP/router.cnf"
cnf $'CN=FTX1234W0AB\nserialNumber=FTX1234W0AB' >"$TMP/device.cnf"
openssl req -new -newkey rsa:2048 -nodes -keyout "$TMP/rsa.key" -config "$TMP/router.cnf" \
  -addext "subjectAltName=DNS:router1.example.test" -outform DER -out "$OUT/csr/rsa2048-challenge.der" 2>/dev/null
openssl req -new -key "$TMP/rsa.key" -config "$TMP/device.cnf" -outform DER -out "$OUT/csr/rsa2048-device.der"
csr ed25519-email -newkey ed25519 -subj "/CN=alice/emailAddress=alice@example.test" \
  -addext "subjectAltName=email:alice@example.test,URI:https://example.test/alice"
csr p384-sans-only -newkey ec -pkeyopt ec_paramgen_curve:P-384 -subj "/" \
  -addext "subjectAltName=DNS:a.example.test,DNS:*.b.example.test"

# --- OCSP requests (openssl ocsp)
ISSUER="$TMP/issuer.pem"
openssl x509 -inform DER -in "$ROOT/protocols/scep/tests/vectors/test-p256.crt.der" -out "$ISSUER"
openssl ocsp -issuer "$ISSUER" -serial 0x1a2b3c4d5e6f -reqout "$OUT/ocsp_request/nonce-sha1.der" >/dev/null
openssl ocsp -issuer "$ISSUER" -serial 0x1a2b3c4d5e6f -no_nonce -reqout "$OUT/ocsp_request/no-nonce.der" >/dev/null
openssl ocsp -sha256 -issuer "$ISSUER" -serial 0x00ff -reqout "$OUT/ocsp_request/nonce-sha256.der" >/dev/null
openssl ocsp -issuer "$ISSUER" -serial 1 -serial 0x7fffffffffffffffffff -reqout "$OUT/ocsp_request/two-certids.der" >/dev/null
for f in "$OUT"/ocsp_request/*.der; do
  n=$(basename "$f" .der)
  b=$(base64 -w0 "$f")
  printf '/%s' "$b" >"$OUT/ocsp_get/$n.txt"
  printf '/%s' "$b" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g; s|^%2F|/|' >"$OUT/ocsp_get/$n-pct.txt"
  printf '//%s' "$(printf '%s' "$b" | tr '+/' '-_' | tr -d '=')" >"$OUT/ocsp_get/$n-urlsafe.txt"
done

# --- EST bodies (base64 of the CSRs, as curl --data-binary posts them)
for n in p256-sans rsa2048-challenge; do
  base64 -w64 "$OUT/csr/$n.der" >"$OUT/est_body/$n.b64"
  base64 -w0 "$OUT/csr/$n.der" | tr -d '=' >"$OUT/est_body/$n-unpadded.b64"
done
openssl req -in "$OUT/csr/ed25519-email.der" -inform DER -out "$OUT/est_body/ed25519-pem.b64"
base64 -w76 "$OUT/csr/p384-sans-only.der" | sed 's/$/\r/' >"$OUT/est_body/p384-crlf.b64"
printf 'Basic %s' "$(printf 'router1:s3cr:et' | base64)" >"$OUT/est_body/basic-auth.txt"

# --- SCEP, EST /fullcmc and ACME (Python clients)
"$PY" "$FUZZ/seeds.py" "$OUT" "$OUT/csr"
du -sh "$OUT"/*
