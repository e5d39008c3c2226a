#!/usr/bin/env bash
# bench part 1 — ingestion end to end (issue 3): CSV → stream → daily hashes.
#
#   1. BENCH_INGEST_ROWS (default 1,000,000) rows from bin/txgen (30 days, out
#      of order), IMPORT_SPEED=0, ONE aggregator, on a redis-server of its own:
#      rows/s from the importer's start (first byte read) to the last entry
#      acknowledged by the group; the totals are checked against txgen's
#      --expect file (a fast wrong answer is not a figure); Redis used_memory
#      before and after; Redis's cost per row by command (INFO commandstats:
#      XADD, XREADGROUP, EVALSHA and what runs inside the script); the CPU per
#      row of redis-server, the importer and the aggregator (from /proc).
#   2. redis-benchmark -P 64 XADD of a same-shaped entry on the same Redis in
#      the same run: the ceiling of the one Redis thread for XADD alone.
#   3. BENCH_MEMORY_ROWS (default 5,000,000) rows imported the same way while
#      used_memory is sampled every 0.5 s: Redis memory stays flat because the
#      aggregator trims the stream behind the group (BENCH_MEMORY_ROWS=0 skips).
#   4. Idle RSS of the importer-side binaries.
# Printed, never asserted.  BENCH_AOF=1 runs Redis with appendonly yes
# (everysec), as deployed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/common.sh

ROWS=${BENCH_INGEST_ROWS:-1000000}
MEMROWS=${BENCH_MEMORY_ROWS:-5000000}
BIN=${TXAGG_BIN:-bin}
TMP=$(mktemp -d /tmp/txagg-bench-ingest.XXXXXX)
apid=
cleanup() {
    [ -n "$apid" ] && kill -TERM "$apid" 2>/dev/null && wait "$apid" 2>/dev/null
    txagg_stop_pid "${TXAGG_REDIS_PID:-}"
    rm -rf "$TMP"
}
trap cleanup EXIT

port=$(txagg_free_port)
aof=()
[ "${BENCH_AOF:-0}" = 1 ] && aof=(--appendonly yes --appendfsync everysec)
txagg_start_redis "$TMP/redis" "$port" "${aof[@]}" >/dev/null
R=(redis-cli -p "$port")
export REDIS_HOST=127.0.0.1 REDIS_PORT=$port METRICS_PORT=0 LOG_LEVEL=WARNING IMPORT_SPEED=0

now() { date +%s.%N; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
used_memory() { "${R[@]}" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1048576}'; }
group_field() { # XINFO GROUPS value of $1 for group aggregators
    "${R[@]}" XINFO GROUPS transactions 2>/dev/null | awk -v f="$1" 'want {print; exit} $0 == f {want = 1}'
}
drained() { # every published entry delivered and acknowledged
    [ "$(group_field lag)" = 0 ] && [ "$(group_field pending)" = 0 ]
}
start_aggregator() {
    CONSUMER_NAME=bench-agg "$BIN/aggregator" 2>"$TMP/agg.log" &
    apid=$!
}
stop_aggregator() {
    kill -TERM "$apid" 2>/dev/null
    wait "$apid" 2>/dev/null || true
    apid=
}

"$BIN/txgen" --rows "$ROWS" --days 30 --seed 11 --expect "$TMP/expect.tsv" >"$TMP/rows.csv"
echo "ingest: $ROWS rows ($(du -h "$TMP/rows.csv" | cut -f1)) over 30 days out of order, IMPORT_SPEED=0," \
    "BATCH_SIZE=${BATCH_SIZE:-1000}, one aggregator, redis $([ ${#aof[@]} -gt 0 ] && echo "AOF everysec" || echo "no AOF")," \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1. end to end --------------------------------------------------------------
"${R[@]}" FLUSHALL >/dev/null
start_aggregator
until [ "$("${R[@]}" EXISTS transactions)" = 1 ]; do sleep 0.05; done # the group exists
"${R[@]}" CONFIG RESETSTAT >/dev/null
mem0=$(used_memory)
rcpu0=$(ticks "$TXAGG_REDIS_PID")
acpu0=$(ticks "$apid")
t0=$(now)
MAX_BACKLOG=1000000 /usr/bin/time -f "%U %S %M" -o "$TMP/imp.time" "$BIN/importer" "$TMP/rows.csv" 2>"$TMP/imp.log"
t_imp=$(now)
until drained; do sleep 0.01; done
t1=$(now)
rcpu1=$(ticks "$TXAGG_REDIS_PID")
acpu1=$(ticks "$apid")
for _ in $(seq 30); do [ "$("${R[@]}" XLEN transactions)" -lt 2000 ] && break; sleep 0.1; done # the trim runs every second
mem1=$(used_memory)
read -r iu is irss <"$TMP/imp.time"
hz=$(getconf CLK_TCK)
awk -v n="$ROWS" -v t0="$t0" -v ti="$t_imp" -v t1="$t1" -v iu="$iu" -v is="$is" -v hz="$hz" \
    -v r="$((rcpu1 - rcpu0))" -v a="$((acpu1 - acpu0))" 'BEGIN {
    printf "ingest: %d rows in %.2f s = %d rows/s end to end (importer done after %.2f s, last ack %.2f s later)\n",
        n, t1 - t0, n / (t1 - t0), ti - t0, t1 - ti
    printf "ingest: CPU per row: redis-server %.2f us, importer %.2f us, aggregator %.2f us\n",
        r / hz * 1e6 / n, (iu + is) * 1e6 / n, a / hz * 1e6 / n }'
echo "ingest: importer peak RSS ${irss} kB" 
echo "ingest: redis used_memory before $(mb "$mem0"), after $(mb "$mem1") (stream trimmed to $("${R[@]}" XLEN transactions) entries)"
echo "ingest: redis time per row by command (INFO commandstats usec / rows; exec includes the XADDs it ran," \
    "evalsha the commands inside the script):"
"${R[@]}" INFO commandstats | tr -d '\r' | awk -F'[:,=]' -v rows="$ROWS" '
    $1 ~ /^cmdstat_/ { c = $1; sub("cmdstat_", "", c); if ($5 / rows >= 0.005) {
        printf "  %-12s %6.3f us/row  (%d calls)\n", c, $5 / rows, $3 }
        if (c ~ /^(exec|multi|watch|evalsha|xreadgroup|xtrim|xinfo|xautoclaim)$/) top += $5 }
    END { printf "  %-12s %6.3f us/row  (top-level commands only: the whole protocol)\n", "total", top / rows }'

# exactness: every hash against txgen's expectation
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
print("ingest: totals %s (%d day/type/method cells checked against txgen --expect)"
      % ("EXACT" if got == want else "WRONG", len(want)))
PY
stop_aggregator

# ---- 2. the Redis ceiling for XADD ------------------------------------------------
xadd=$(redis-benchmark -p "$port" -P 64 -n 1000000 -q XADD bench:xadd '*' ts 2026-01-05T03:33:58Z type deposit \
    method apple_pay cents 168786 src transactions_1_month.csv:2 2>/dev/null | tr '\r' '\n' | grep -E 'requests per second' | tail -1)
"${R[@]}" DEL bench:xadd >/dev/null
echo "ingest: redis-benchmark -P 64 XADD (same entry shape, same Redis): $xadd"

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
echo "ingest: idle RSS: aggregator $(awk '/VmRSS/ {print $2, $3}' "/proc/$apid/status")"
stop_aggregator
