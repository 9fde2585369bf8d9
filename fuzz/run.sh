#!/usr/bin/env bash
# Runs the decode fuzzer on each format's seeds for SECONDS (default 60) each, one job, and
# prints the executions per format. Crashing inputs land in $WORK/artifacts/<format>/.
# Usage: fuzz/run.sh [seconds] [workdir]   (builds the harness first if needed)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
work="${2:-${TMPDIR:-/tmp}/pyimgdir-fuzz}"
mkdir -p "$work"
[ -x "$work/decode_fuzzer" ] || "$root/fuzz/build.sh" "$work"
[ -d "$work/seeds" ] || python "$root/fuzz/make_seeds.py" "$work/seeds"
for fmt in jpeg png gif bmp; do
    mkdir -p "$work/corpus/$fmt" "$work/artifacts/$fmt"
    "$work/decode_fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$fmt/" \
        "$work/corpus/$fmt" "$work/seeds/$fmt" >"$work/$fmt.log" 2>&1 || echo "$fmt: fuzzer stopped (see $work/$fmt.log)"
    execs=$(grep -m1 'stat::number_of_executed_units' "$work/$fmt.log" | awk '{print $2}')
    echo "$fmt: ${execs:-?} executions in ${secs}s, corpus $(ls "$work/corpus/$fmt" | wc -l) files," \
         "artifacts $(ls "$work/artifacts/$fmt" | wc -l)"
done
