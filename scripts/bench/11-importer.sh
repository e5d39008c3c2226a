#!/usr/bin/env bash
# bench part: the importer alone — BENCH_IMPORTER_ROWS (default 1,000,000)
# generated rows, IMPORT_SPEED=0, into its own redis-server (started like the
# test harness's, stopped on exit), no aggregator (MAX_BACKLOG above the row
# count).  Prints rows/s from the importer's own summary, the importer's and
# Redis's CPU per row, and Redis used_memory — from the file, and from a pipe
# (batches held until Redis's replicas have them), in turn.  Figures only,
# never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/common.sh

ROWS=${BENCH_IMPORTER_ROWS:-1000000}
RUNS=${BENCH_IMPORTER_RUNS:-3}
dir=$(mktemp -d /tmp/txagg-bench-importer.XXXXXX)
TXAGG_REDIS_PID=
cleanup() {
    txagg_stop_pid "$TXAGG_REDIS_PID"
    rm -rf "$dir"
}
trap cleanup EXIT
port=$(txagg_free_port)
txagg_start_redis "$dir/redis" "$port" >/dev/null
bin/txgen --rows "$ROWS" --seed 1 >"$dir/rows.csv"
rcli() { redis-cli -p "$port" "$@"; }
redis_cpu() { rcli INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.3f", s}'; }

echo "importer alone: $ROWS rows ($(du -h "$dir/rows.csv" | cut -f1)), IMPORT_SPEED=0, BATCH_SIZE=${BATCH_SIZE:-1000}, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# one_run LABEL INPUT: INPUT is a path, or "-" for the same rows through a
# pipe (an input that cannot be read again: each batch waits for Redis's
# replicas, here none — one ROLE per batch).
one_run() {
    local label=$1 input=$2 c0 c1 line secs rate user sys rss
    rcli FLUSHALL >/dev/null
    c0=$(redis_cpu)
    if [ "$input" = - ]; then
        cat "$dir/rows.csv" | REDIS_PORT=$port IMPORT_SPEED=0 METRICS_PORT=0 MAX_BACKLOG=$((ROWS * 2)) \
            LOG_LEVEL=INFO /usr/bin/time -f "%U %S %M" -o "$dir/time" bin/importer - 2>"$dir/log"
    else
        REDIS_PORT=$port IMPORT_SPEED=0 METRICS_PORT=0 MAX_BACKLOG=$((ROWS * 2)) LOG_LEVEL=INFO \
            /usr/bin/time -f "%U %S %M" -o "$dir/time" bin/importer "$input" 2>"$dir/log"
    fi
    c1=$(redis_cpu)
    line=$(grep 'msg="file summary"' "$dir/log")
    secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")
    rate=$(sed -n 's/.* rows_per_s=\([0-9]*\).*/\1/p' <<<"$line")
    read -r user sys rss <"$dir/time"
    awk -v l="$label" -v n="$ROWS" -v s="$secs" -v r="$rate" -v u="$user" -v y="$sys" -v m="$rss" -v c0="$c0" \
        -v c1="$c1" -v mem="$(rcli INFO memory | tr -d '\r' | sed -n 's/^used_memory_human://p')" 'BEGIN {
        printf "%s: %d rows in %.2f s = %d rows/s; importer CPU %.2f us/row (RSS %d KB), redis CPU %.2f us/row, redis used_memory %s\n",
            l, n, s, r, (u + y) * 1e6 / n, m, (c1 - c0) * 1e6 / n, mem }'
}
for i in $(seq 1 "$RUNS"); do
    one_run importer "$dir/rows.csv"
    one_run "importer (pipe)" -
done
