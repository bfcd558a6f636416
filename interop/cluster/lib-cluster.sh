# Shared setup of the cluster scripts (sourced after ../lib.sh and ../acme/lib-acme.sh): three
# privca instances on one PostgreSQL database and one SoftHSM2 token directory, behind HAProxy
# (TCP mode, round robin per connection) on the dev ports 8443 (HTTPS) and 8080 (HTTP).
# Instance N (1–3) listens on 1844N (HTTPS), 1808N (HTTP) and 1944N (admin); the URLs in its
# configuration name the load balancer, as in a deployment.

INTEROP_PG_URL="${INTEROP_PG_URL:-${PRIVCA_TEST_PG_URL:-}}"
if [ -z "$INTEROP_PG_URL" ]; then
  [ "${CI:-}" = true ] && { echo "CI=true but no PostgreSQL URL" >&2; exit 1; }
  echo "$(basename "$0" .sh): no PostgreSQL (INTEROP_PG_URL): skipped"
  exit 0
fi
export INTEROP_PG_URL
LEASE=${LEASE:-6}
PIDS=(0 0 0 0)
HAPROXY_PID=""

# cluster_data_dir [SED-EXPRESSION...]: a fresh data directory and database, the dev config with
# six connections per instance, a job lease of $LEASE s and the given changes, and `privca init`.
cluster_data_dir() {
  fresh_data_dir
  sed -i -e "s/^max_connections = .*/max_connections = 6\njob_lease = \"${LEASE}s\"/" "$@" "$CONFIG"
  privca_cli init >/dev/null
}

# start_instance N: instance N with the shared data directory (token, TLS files) and ledger.
start_instance() {
  local n=$1 cfg="$DATA/instance$1.toml"
  sed -e "s/^https_listen = .*/https_listen = \"127.0.0.1:1844$n\"/" \
    -e "s/^http_listen = .*/http_listen = \"127.0.0.1:1808$n\"/" \
    -e "s/^admin_listen = .*/admin_listen = \"127.0.0.1:1944$n\"/" "$CONFIG" >"$cfg"
  "$PRIVCA_BIN" --config "$cfg" --data-dir "$DATA" serve >>"$DATA/instance$n.log" 2>&1 &
  PIDS[$n]=$!
  for _ in $(seq 1 120); do
    curl -skf "https://127.0.0.1:1844$n/healthz" >/dev/null 2>&1 && return 0
    kill -0 "${PIDS[$n]}" 2>/dev/null || break
    sleep 0.5
  done
  echo "instance $n did not come up:" >&2
  tail -n 30 "$DATA/instance$n.log" >&2
  return 1
}

# kill_instance N [SIGNAL]: stops instance N (default SIGTERM) and waits for it.
kill_instance() {
  local n=$1
  [ "${PIDS[$n]}" = 0 ] && return 0
  kill "-${2:-TERM}" "${PIDS[$n]}" 2>/dev/null || true
  wait "${PIDS[$n]}" 2>/dev/null || true
  PIDS[$n]=0
}

cluster_cleanup() {
  [ -n "${CLUSTER_LOGS:-}" ] && mkdir -p "$CLUSTER_LOGS" && cp "$DATA"/*.log "$CLUSTER_LOGS/" 2>/dev/null
  [ -n "$HAPROXY_PID" ] && kill "$HAPROXY_PID" 2>/dev/null
  for n in 1 2 3; do
    [ "${PIDS[$n]}" != 0 ] && kill -TERM "${PIDS[$n]}" 2>/dev/null
  done
  for n in 1 2 3; do
    [ "${PIDS[$n]}" != 0 ] && wait "${PIDS[$n]}" 2>/dev/null
  done
  acme_cleanup
}

# start_cluster: the three instances, then HAProxy in front of them: every 500 ms a health check
# GET /healthz on each instance's HTTP listener (an instance whose ledger does not answer is
# taken out of both backends after two failures, back after two successes); a connection
# refused by a dead instance goes to another one. HAProxy logs each connection (client port,
# backend server) to $DATA/haproxy.log.
start_cluster() {
  cat >"$DATA/haproxy.cfg" <<CFG
global
  maxconn 1000
  log stdout format raw local0
defaults
  mode tcp
  log global
  option tcplog
  option redispatch
  retries 2
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check 2s
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 500ms fall 2 rise 2
frontend https
  bind 127.0.0.1:8443
  default_backend https
backend https
  balance roundrobin
  server p1 127.0.0.1:18441 check port 18081
  server p2 127.0.0.1:18442 check port 18082
  server p3 127.0.0.1:18443 check port 18083
frontend http
  bind 127.0.0.1:8080
  default_backend http
backend http
  balance roundrobin
  server p1 127.0.0.1:18081 check
  server p2 127.0.0.1:18082 check
  server p3 127.0.0.1:18083 check
CFG
  for n in 1 2 3; do start_instance "$n" || return 1; done
  haproxy -f "$DATA/haproxy.cfg" -db >"$DATA/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  for _ in $(seq 1 50); do curl -skf https://127.0.0.1:8443/healthz >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "HAProxy did not come up" >&2
  return 1
}

# holder_of JOB: the live holder of JOB's lease (host/pid/random); pid_of_holder JOB: its pid;
# instance_of_pid PID: the instance number (1–3) of that process, 0 for none of them.
holder_of() { sql "SELECT holder FROM job_leases WHERE job = '$1' AND expires_at > $(date +%s)"; }
pid_of_holder() { local h; h=$(holder_of "$1"); echo "${h#*/}" | cut -d/ -f1; }
instance_of_pid() {
  local n
  for n in 1 2 3; do [ "${PIDS[$n]}" = "$1" ] && { echo "$n"; return; }; done
  echo 0
}

# served_by FROM-LINE: the backend servers (p1…p3) HAProxy logged connections to from line
# FROM-LINE of its log on, one per line, sorted and unique.
served_by() {
  tail -n "+$1" "$DATA/haproxy.log" | grep -oE ' (https|http)/p[123] ' | cut -d/ -f2 | tr -d ' ' | sort -u
}
haproxy_lines() { wc -l <"$DATA/haproxy.log"; }

# report_instance_errors: ERROR lines of each instance's log, shown (not failed on).
report_instance_errors() {
  for n in 1 2 3; do
    if grep -qE '"level":"ERROR"| ERROR ' "$DATA/instance$n.log"; then
      echo "privca warnings (instance $n):"
      grep -E '"level":"ERROR"| ERROR ' "$DATA/instance$n.log" | tail -n 5
    fi
  done
}
