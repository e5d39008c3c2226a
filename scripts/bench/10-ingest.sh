#!/usr/bin/env bash
# bench part 1 — ingestion end to end (issues 3 and 15): CSV → stream → daily hashes.
#
#   1. BENCH_ROWS (default 1,000,000; BENCH_INGEST_ROWS is the older name)
#      rows from bin/txgen (30 days, out of order), IMPORT_SPEED=0, on a
#      redis-server of its own, side by side in one run: the importer with ONE
#      aggregator, then with TWO, once on a Redis without AOF and once with
#      AOF everysec (as deployed; BENCH_AOF_MODES="no" or "everysec" for one).
#      For each: rows/s from the importer's start (first byte read) to the
#      last entry acknowledged (tests/lib/stream.sh's stream_drained); the
#      totals checked against txgen's --expect file (a fast wrong answer is
#      not a figure); the CPU per row of redis-server, the importer and the
#      aggregators (from /proc); Redis's time per row by command (INFO
#      commandstats: EXEC of the importer's XADDs, XREADGROUP, EVALSHA and
#      what runs inside the script).  Then, per Redis mode: 2 aggregators ÷
#      1, and 1 aggregator ÷ redis-benchmark -P 64 XADD of the same one-field
#      entry on the same Redis (the ceiling of the one Redis thread for XADD
#      alone).
#   3. BENCH_MEMORY_ROWS (default 5,000,000) rows imported the same way (no
#      AOF) while used_memory is sampled every 0.5 s: Redis memory stays flat
#      because the aggregator trims the stream behind the group
#      (BENCH_MEMORY_ROWS=0 skips).
#   4. Idle RSS of the aggregator.
# Printed, never asserted.  BENCH_AOF=1 (older knob) = BENCH_AOF_MODES=everysec.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/common.sh
. tests/lib/stream.sh

ROWS=${BENCH_ROWS:-${BENCH_INGEST_ROWS:-1000000}}
MEMROWS=${BENCH_MEMORY_ROWS:-5000000}
MODES=${BENCH_AOF_MODES:-$([ "${BENCH_AOF:-0}" = 1 ] && echo everysec || echo "no everysec")}
BIN=${TXAGG_BIN:-bin}
TMP=$(mktemp -d /tmp/txagg-bench-ingest.XXXXXX)
apids=()
cleanup() {
    local p
    for p in "${apids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${apids[@]}"; do wait "$p" 2>/dev/null; done
    txagg_stop_pid "${TXAGG_REDIS_PID:-}"
    rm -rf "$TMP"
}
trap cleanup EXIT

export METRICS_PORT=0 LOG_LEVEL=WARNING IMPORT_SPEED=0
port=
R=()
start_redis() { # MODE: no | everysec
    txagg_stop_pid "${TXAGG_REDIS_PID:-}"
    rm -rf "$TMP/redis"
    port=$(txagg_free_port)
    local aof=()
    [ "$1" = everysec ] && aof=(--appendonly yes --appendfsync everysec)
    txagg_start_redis "$TMP/redis" "$port" "${aof[@]}" >/dev/null
    R=(redis-cli -p "$port")
    export REDIS_HOST=127.0.0.1 REDIS_PORT=$port
}

now() { date +%s.%N; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
used_memory() { "${R[@]}" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1048576}'; }
start_aggregators() { # N
    local i
    for ((i = 1; i <= $1; i++)); do
        CONSUMER_NAME=bench-agg-$i "$BIN/aggregator" 2>>"$TMP/agg.log" &
        apids+=($!)
    done
}
stop_aggregators() {
    local p
    for p in "${apids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${apids[@]}"; do wait "$p" 2>/dev/null || true; done
    apids=()
}
agg_ticks() {
    local p t=0
    for p in "${apids[@]}"; do t=$((t + $(ticks "$p"))); done
    echo "$t"
}
start_aggregator() { start_aggregators 1; }
stop_aggregator() { stop_aggregators; }
drained() { stream_drained "${R[@]}"; }

"$BIN/txgen" --rows "$ROWS" --days 30 --seed 11 --expect "$TMP/expect.tsv" >"$TMP/rows.csv"
echo "ingest: $ROWS rows ($(du -h "$TMP/rows.csv" | cut -f1)) over 30 days out of order, IMPORT_SPEED=0," \
    "BATCH_SIZE=${BATCH_SIZE:-1000}, Redis AOF modes: $MODES, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# "EXACT n" or "WRONG n": every hash against txgen's expectation (n cells)
check_totals() {
    python3 - "$TMP/expect.tsv" "$port" <<'PY'
import subprocess, sys
want = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) == 4 and f[0][:1].isdigit():
        want[(f[0], f[1], f[2])] = int(f[3])
got = {}
cli = ["redis-cli", "-p", sys.argv[2]]
keys = subprocess.run(cli + ["--scan", "--pattern", "agg:*"], capture_output=True, text=True).stdout.split()
for k in keys:
    _, day, typ = k.split(":")
    vals = subprocess.run(cli + ["HGETALL", k], capture_output=True, text=True).stdout.split()
    for m, c in zip(vals[0::2], vals[1::2]):
        got[(day, typ, m)] = int(c)
print("EXACT" if got == want else "WRONG", len(want))
PY
}

# ---- 1. end to end: 1 and 2 aggregators, without and with AOF -----------------------
declare -A RATE
run_e2e() { # MODE AGGREGATORS
    local mode=$1 n=$2 t0 t1 t_imp rcpu0 rcpu1 acpu0 acpu1 mem0 mem1 iu is irss hz totals label
    label="ingest [AOF $mode, $n aggregator$([ "$n" -gt 1 ] && echo s || true)]"
    "${R[@]}" FLUSHALL >/dev/null
    start_aggregators "$n"
    until [ "$("${R[@]}" EXISTS transactions)" = 1 ]; do sleep 0.05; done # the group exists
    "${R[@]}" CONFIG RESETSTAT >/dev/null
    mem0=$(used_memory)
    rcpu0=$(ticks "$TXAGG_REDIS_PID")
    acpu0=$(agg_ticks)
    t0=$(now)
    MAX_BACKLOG=1000000 /usr/bin/time -f "%U %S %M" -o "$TMP/imp.time" "$BIN/importer" "$TMP/rows.csv" 2>"$TMP/imp.log"
    t_imp=$(now)
    until stream_drained "${R[@]}"; do sleep 0.01; done
    t1=$(now)
    rcpu1=$(ticks "$TXAGG_REDIS_PID")
    acpu1=$(agg_ticks)
    "${R[@]}" INFO commandstats | tr -d '\r' >"$TMP/cs"
    for _ in $(seq 30); do [ "$("${R[@]}" XLEN transactions)" -lt 2000 ] && break; sleep 0.1; done # the trim runs every second
    mem1=$(used_memory)
    stop_aggregators
    read -r iu is irss <"$TMP/imp.time"
    hz=$(getconf CLK_TCK)
    totals=$(check_totals)
    RATE[$mode.$n]=$(awk -v n="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
    awk -v n="$ROWS" -v t0="$t0" -v ti="$t_imp" -v t1="$t1" -v iu="$iu" -v is="$is" -v hz="$hz" -v k="$n" \
        -v r="$((rcpu1 - rcpu0))" -v a="$((acpu1 - acpu0))" -v label="$label" -v tot="$totals" 'BEGIN {
        split(tot, x, " ")
        printf "%s: %d rows/s end to end (%.2f s; importer done after %.2f s); totals %s (%d cells)\n",
            label, n / (t1 - t0), t1 - t0, ti - t0, x[1], x[2]
        printf "%s: CPU per row: redis-server %.2f us, importer %.2f us, aggregator%s %.2f us\n",
            label, r / hz * 1e6 / n, (iu + is) * 1e6 / n, (k > 1 ? "s (sum)" : ""), a / hz * 1e6 / n }'
    echo "$label: importer peak RSS ${irss} kB; redis used_memory before $(mb "$mem0")," \
        "after $(mb "$mem1") (stream trimmed to $("${R[@]}" XLEN transactions) entries)"
    awk -F'[:,=]' -v rows="$ROWS" -v label="$label" '
        $1 ~ /^cmdstat_/ { c = $1; sub("cmdstat_", "", c); if ($5 / rows >= 0.005) line = line sprintf(" %s %.3f", c, $5 / rows)
            if (c ~ /^(exec|multi|watch|evalsha|xreadgroup|xtrim|xinfo|xautoclaim|xgroup|xpending)$/) top += $5 }
        END { printf "%s: redis us/row by command (exec includes its XADDs, evalsha what runs inside):%s; top level %.3f\n",
            label, line, top / rows }' "$TMP/cs"
}

for mode in $MODES; do
    start_redis "$mode"
    for n in 1 2; do run_e2e "$mode" "$n"; done
    # the Redis ceiling for XADD of the same one-field entry, same Redis, same run
    xadd=$(redis-benchmark -p "$port" -P 64 -n 1000000 -q XADD bench:xadd '*' tx \
        "2026-01-05T03:33:58Z withdrawal apple_pay 1687.86 transactions_1_month.csv:2" 2>/dev/null |
        tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1)
    "${R[@]}" DEL bench:xadd >/dev/null
    awk -v one="${RATE[$mode.1]}" -v two="${RATE[$mode.2]}" -v x="${xadd:-0}" -v mode="$mode" 'BEGIN {
        printf "ingest [AOF %s]: 1 aggregator %d rows/s, 2 aggregators %d rows/s: 2 / 1 = %.2f; redis-benchmark -P 64 XADD of the same entry %d req/s: 1 aggregator / XADD = %.2f\n",
            mode, one, two, (one > 0 ? two / one : 0), x, (x > 0 ? one / x : 0) }'
done
echo "ingest: targets (issue 15, no AOF): redis-server CPU <= 2.5 us/row; 1 aggregator >= 250,000 rows/s; 2 / 1 >= 1.1; importer CPU <= 1.0 us/row"
case " $MODES " in *" no "*) [ "$mode" = no ] || start_redis no ;; *) start_redis no ;; esac # the rest runs without AOF

# ---- 3. memory during a long import ------------------------------------------------
if [ "$MEMROWS" -gt 0 ]; then
    "$BIN/txgen" --rows "$MEMROWS" --days 60 --seed 12 >"$TMP/mem.csv"
    "${R[@]}" FLUSHALL >/dev/null
    start_aggregator
    until [ "$("${R[@]}" EXISTS transactions)" = 1 ]; do sleep 0.05; done
    base=$(used_memory)
    t0=$(now)
    "$BIN/importer" "$TMP/mem.csv" 2>"$TMP/imp2.log" &
    ipid=$!
    peak=0 samples=0 last=0
    while kill -0 "$ipid" 2>/dev/null || ! drained; do
        m=$(used_memory)
        [ "$m" -gt "$peak" ] && peak=$m
        samples=$((samples + 1))
        if [ $((samples % 10)) = 0 ]; then
            printf 'ingest:   t=%5.1fs used_memory %s, stream %s entries\n' "$(awk -v a="$(now)" -v b="$t0" 'BEGIN{print a-b}')" \
                "$(mb "$m")" "$("${R[@]}" XLEN transactions)"
        fi
        sleep 0.5
    done
    wait "$ipid" || true
    t1=$(now)
    echo "ingest: $MEMROWS rows in $(awk -v a="$t1" -v b="$t0" 'BEGIN{printf "%.1f", a-b}') s;" \
        "redis used_memory at start $(mb "$base"), peak $(mb "$peak") over $samples samples, end $(mb "$(used_memory)")"
    stop_aggregator
fi

# ---- 4. idle RSS ---------------------------------------------------------------------
start_aggregator
sleep 2
echo "ingest: idle RSS: aggregator $(awk '/VmRSS/ {print $2, $3}' "/proc/${apids[0]}/status")"
stop_aggregator
