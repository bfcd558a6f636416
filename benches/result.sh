# result BENCHMARK SERIES METRIC VALUE UNIT: one machine-readable line next to a benchmark's
# human output, `RESULT <benchmark> <series> <metric> <value> <unit>`, which benches/run.sh
# collects. SERIES is SERVER[/CONDITION...]: privca's servers start with `privca`, any other is a
# peer; run.sh sets privca against every peer with the same METRIC and the same conditions but
# privca's database (`privca/sqlite/c8` against `openbao/c8`), and against every peer series
# without conditions (`raw-hsm`, a baseline for every privca series).
result() { printf 'RESULT %s %s %s %s %s\n' "$@"; }

# load_results BENCHMARK UNIT FILE [PREFIX]: the RESULT lines of the load generator's runs in FILE
# (benches/load's JSON lines; runs that completed nothing left out): per_s in UNIT, p50_ms,
# p99_ms and the server's cpu_ms_per_op, the series being PREFIX and the run's label with
# `privca-` → `privca/`, spaces → `/` and `=` dropped (`privca-sqlite c=8` → `privca/sqlite/c8`).
load_results() {
  jq -r --arg b "$1" --arg u "$2" --arg p "${4:-}" '
    select(.ok > 0) | ($p + (.label | sub("^privca-"; "privca/") | gsub(" "; "/") | gsub("="; ""))) as $s
    | (["per_s", .per_s, $u], ["p50_ms", .p50_ms, "ms"], ["p99_ms", .p99_ms, "ms"],
       ["cpu_ms_per_op", .server_cpu_ms_per_op, "ms"])
    | select(.[1] != null) | "RESULT \($b) \($s) \(.[0]) \(.[1]) \(.[2])"' "$3"
}

# status_kib PID FIELD: a size field of /proc/PID/status (VmRSS, RssAnon, VmHWM...) in KiB, empty
# once the process is gone. rss_mib PID [FIELD]: the same in MiB, VmRSS by default.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
rss_mib() { awk -v k="$(status_kib "$1" "${2:-VmRSS}")" 'BEGIN { printf "%.1f\n", k / 1024 }'; }
