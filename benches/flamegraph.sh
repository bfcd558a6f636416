#!/usr/bin/env bash
# Flame graph (SVG) of a perf profile recorded by a benchmark run, e.g.
#   BENCH_PERF=/tmp/prof BENCH_CONCURRENCY=8 bash benches/acme.sh    # /tmp/prof/privca-sqlite-c8.data
#   bash benches/flamegraph.sh /tmp/prof/privca-sqlite-c8.data [out.svg]
# Stacks are folded and drawn by inferno (installed with cargo into ~/.cache/privca-tools on
# first use). Widths are the share of the server's CPU samples.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PERF_DATA [OUT.svg]" >&2; exit 2; }
data=$1
out=${2:-${data%.data}.svg}
tools="${PRIVCA_TOOLS:-$HOME/.cache/privca-tools}"
export PATH="$tools/bin:$PATH"
if ! command -v inferno-flamegraph >/dev/null; then
  cargo install --quiet --locked --root "$tools" inferno >&2
fi
perf script -i "$data" 2>/dev/null | inferno-collapse-perf --all | inferno-flamegraph --title "$(basename "$data" .data)" >"$out"
echo "$out"
