#!/usr/bin/env bash
# scripts/bench/12-aggregator.sh — `make bench` part: the aggregator alone
# (stream → daily hashes), one replica, on a redis-server of its own.
#
#   1. drain: BENCH_AGG_ROWS (default 1,000,000) entries over BENCH_AGG_DAYS
#      (30) days published first (tests/tools/txpub, pipelined XADD), then one
#      aggregator drains them: rows/s from its start to the last entry
#      acknowledged;
#   2. live: the same number published while the aggregator runs: rows/s
#      from the first XADD to the last entry acknowledged.
# For each: the CPU time per row of redis-server and of the aggregator (from
# /proc, so the figures mean something on a shared machine) and Redis's own
# per-row cost by command (INFO commandstats usec / rows: XADD, XREADGROUP,
# EVALSHA and, inside the script, XPENDING, XACK, HMGET, HSET, HINCRBY).
# commandstats measure wall time inside a command, so they grow when the
# machine is busy; the CPU figures do not.  Printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/common.sh
. tests/lib/stream.sh

ROWS=${BENCH_AGG_ROWS:-1000000}
DAYS=${BENCH_AGG_DAYS:-30}
make -s --no-print-directory all build/release/tools/txpub >/dev/null
PUB=build/release/tools/txpub
BIN=${TXAGG_BIN:-bin}
TMP=$(mktemp -d /tmp/txagg-bench-agg.XXXXXX)
port=$(txagg_free_port)
apid=
cleanup() {
    [ "$BASHPID" = "$$" ] || return 0 # not in a background subshell
    [ -n "$apid" ] && kill -KILL "$apid" 2>/dev/null
    txagg_stop_pid "${TXAGG_REDIS_PID:-}"
    rm -rf "$TMP"
}
trap cleanup EXIT
txagg_start_redis "$TMP/redis" "$port" >/dev/null
R=(redis-cli -p "$port")
export REDIS_PORT=$port REDIS_HOST=127.0.0.1 METRICS_PORT=0 LOG_LEVEL=WARNING

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now() { date +%s.%N; }
drained() { stream_drained "${R[@]}"; } # tests/lib/stream.sh: never the group's lag
stats() { # per-row usec of the commands that matter
    "${R[@]}" INFO commandstats | tr -d '\r' | awk -F'[:,=]' -v rows="$ROWS" '
        $1 ~ /^cmdstat_(xadd|xreadgroup|evalsha|xpending|xack|hmget|hset|hincrby)$/ {
            sub("cmdstat_", "", $1); printf "  %-10s %6.3f us/row  (%d calls)\n", $1, $5 / rows, $3 }'
}

run() { # mode
    local mode=$1 t0 t1 r0 r1 a1 pubpid=
    "${R[@]}" FLUSHALL >/dev/null
    "${R[@]}" XGROUP CREATE transactions aggregators 0 MKSTREAM >/dev/null
    if [ "$mode" = drain ]; then
        "$PUB" --count "$ROWS" --days "$DAYS" --seed 3 >/dev/null 2>&1
        local used
        used=$("${R[@]}" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory_human" {print $2}')
        echo "drain: $ROWS entries published first (redis used_memory $used)"
    fi
    "${R[@]}" CONFIG RESETSTAT >/dev/null
    r0=$(cpu_ticks "$TXAGG_REDIS_PID")
    t0=$(now)
    CONSUMER_NAME=bench "$BIN/aggregator" 2>"$TMP/agg.log" &
    apid=$!
    if [ "$mode" = live ]; then
        "$PUB" --count "$ROWS" --days "$DAYS" --seed 3 >/dev/null 2>&1 &
        pubpid=$!
    fi
    [ -n "$pubpid" ] && wait "$pubpid"
    while ! drained; do sleep 0.01; done
    t1=$(now)
    a1=$(cpu_ticks "$apid")
    r1=$(cpu_ticks "$TXAGG_REDIS_PID")
    sleep 1.5 # one more trim
    local mem xlen
    mem=$("${R[@]}" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory_human" {print $2}')
    xlen=$("${R[@]}" XLEN transactions)
    kill -TERM "$apid"
    wait "$apid" || true
    apid=
    local hz
    hz=$(getconf CLK_TCK)
    python3 - "$mode" "$ROWS" "$t0" "$t1" "$r0" "$r1" "$a1" "$hz" <<'EOF'
import sys
mode, rows, t0, t1, r0, r1, a1, hz = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
wall = t1 - t0
print("%s: %s rows/s (%d rows in %.2f s); cpu per row: redis %.2f us, aggregator %.2f us%s" % (
    mode, format(int(rows / wall), ","), rows, wall, (r1 - r0) / hz / rows * 1e6, a1 / hz / rows * 1e6,
    " (redis also serves the XADDs)" if mode == "live" else ""))
EOF
    echo "  after: stream length $xlen, redis used_memory $mem"
    stats
}

echo "aggregator: one replica, BATCH_SIZE=${BATCH_SIZE:-1000}, $DAYS days of event time, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# the machine's state, for comparing runs: plain pipelined XADD on the same Redis
ref=$(redis-benchmark -p "$port" -n 200000 -P 64 -q XADD benchref '*' tx \
    "2026-01-05T03:33:58Z withdrawal apple_pay 1687.86 transactions_1_month.csv:2" 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1)
"${R[@]}" DEL benchref >/dev/null
echo "reference: redis-benchmark XADD -P 64 of the one-field entry: ${ref:-?}"
run drain
run live
