#!/usr/bin/env bash
# bench part 4 — ingestion on a Redis Cluster (issue 14): 1, 2 and 3 primaries.
#
# For P = 1, 2, 3 (BENCH_CLUSTER_PRIMARIES): a Redis Cluster of P primaries
# without replicas on this machine (tests/lib/cluster.sh, AOF everysec as its
# nodes run), the hot tier in BENCH_CLUSTER_PARTITIONS partitions (default
# 12: an even share for 1, 2 and 3 primaries); and first, side by side in the
# same run, P = 0: one Redis (AOF everysec too) with one untagged partition,
# today's default mode, as the baseline.  BENCH_CLUSTER_ROWS rows
# (default 500,000) from bin/txgen imported by ONE importer from one file
# (IMPORT_SPEED=0) with P aggregators.  For each P: rows/s from the
# importer's start to the last entry acknowledged in every partition, the
# totals checked against txgen's --expect (a fast wrong answer is not a
# figure), and the CPU per row of the redis-servers (all, and the busiest),
# the importer and the aggregators (from /proc).  Then, on the same data (all
# 30 days hot, in the partitions), bin/api under wrk -t2 -c32 for
# BENCH_SECONDS (default 6): /stats over the 30 days — one answer first
# checked against txgen's --expect (tests/lib/oracle.py compare) — with its
# req/s, p99 and the Redis CPU per request over all nodes, and /health
# beside it as the floor.
#
# This machine has 2 cores, so past one primary every process shares them:
# the measured rows/s cannot grow much.  The per-row CPU costs can be read
# off, and the last lines compute from them what N primaries give on a
# machine with enough cores (each process on a core of its own): the ceiling
# is the smallest of N primaries ÷ Redis CPU per row, A aggregators ÷
# aggregator CPU per row and one importer ÷ importer CPU per row.  Printed,
# never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/common.sh
. tests/lib/cluster.sh
. tests/lib/stream.sh

ROWS=${BENCH_CLUSTER_ROWS:-500000}
SECS=${BENCH_SECONDS:-6}
NPART=${BENCH_CLUSTER_PARTITIONS:-12}
PRIMARIES=${BENCH_CLUSTER_PRIMARIES:-0 1 2 3}
BIN=${TXAGG_BIN:-bin}
TOOLS=${TXAGG_TESTBIN:-build/release}/tools
TMP=$(mktemp -d /tmp/txagg-bench-cluster.XXXXXX)
apids=()
cleanup() {
    local p
    for p in "${apids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${apids[@]}"; do wait "$p" 2>/dev/null; done
    [ -d "$TMP/cl" ] && cluster_stop "$TMP/cl" >/dev/null 2>&1
    txagg_stop_pid "${TXAGG_REDIS_PID:-}"
    txagg_stop_pid "${TXAGG_MONGO_PID:-}"
    rm -rf "$TMP"
}
trap cleanup EXIT
[ -x "$TOOLS/tierkeys" ] || { echo "cluster: $TOOLS/tierkeys is missing (make build-tests)" >&2; exit 1; }

export METRICS_PORT=0 LOG_LEVEL=WARNING IMPORT_SPEED=0
mapfile -t TAGGED_STREAMS < <("$TOOLS/tierkeys" "$NPART" | cut -d' ' -f4)

now() { date +%s.%N; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The Redis of the run: P = 0 one redis-server (ONE_PORT), else the cluster.
ONE_PORT=
node_ports() { if [ -n "$ONE_PORT" ]; then echo "$ONE_PORT"; else cluster_ports "$TMP/cl"; fi; }
node_pids() {
    local p
    if [ -n "$ONE_PORT" ]; then echo "$TXAGG_REDIS_PID"; return; fi
    for p in $(cluster_ports "$TMP/cl"); do cluster_pid "$TMP/cl" "$p"; done
}
ccli() { redis-cli -c -h 127.0.0.1 -p "$(node_ports | head -1)" "$@"; }
# redis_up P: start the Redis of run P and point the binaries at it.
redis_up() {
    if [ "$1" = 0 ]; then
        ONE_PORT=$(txagg_free_port)
        txagg_start_redis "$TMP/one" "$ONE_PORT" --appendonly yes --appendfsync everysec >/dev/null || return 1
        unset REDIS_CLUSTER
        export REDIS_HOST=127.0.0.1 REDIS_PORT=$ONE_PORT REDIS_PARTITIONS=1
        STREAMS=(transactions)
    else
        ONE_PORT=
        cluster_start "$TMP/cl" "$1" 0 >"$TMP/cluster.log" 2>&1 || return 1
        export REDIS_CLUSTER REDIS_PARTITIONS=$NPART
        REDIS_CLUSTER=$(cluster_seeds "$TMP/cl")
        STREAMS=("${TAGGED_STREAMS[@]}")
    fi
}
redis_down() {
    if [ -n "$ONE_PORT" ]; then
        txagg_stop_pid "$TXAGG_REDIS_PID"
        TXAGG_REDIS_PID=
        rm -rf "$TMP/one"
    else
        cluster_stop "$TMP/cl" >/dev/null 2>&1
    fi
}
drained() {
    local s
    for s in "${STREAMS[@]}"; do STREAM_KEY=$s stream_drained ccli || return 1; done
}
# "EXACT n" or "WRONG n": the sum over partitions of every daily hash against txgen's expectation
check_totals() {
    python3 - "$TMP/expect.tsv" $(node_ports) <<'PY'
import subprocess, sys
from collections import defaultdict
want = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) == 4 and f[0][:1].isdigit():
        want[(f[0], f[1], f[2])] = int(f[3])
got = defaultdict(int)
for port in sys.argv[2:]:
    cli = ["redis-cli", "-p", port]
    for k in subprocess.run(cli + ["--scan", "--pattern", "agg:*"], capture_output=True, text=True).stdout.split():
        _, day, typ = k.split("{")[0].split(":")
        vals = subprocess.run(cli + ["HGETALL", k], capture_output=True, text=True).stdout.split()
        for m, c in zip(vals[0::2], vals[1::2]):
            got[(day, typ, m)] += int(c)
print("EXACT" if dict(got) == want else "WRONG", len(want))
PY
}

"$BIN/txgen" --rows "$ROWS" --days 30 --seed 11 --expect "$TMP/expect.tsv" >"$TMP/rows.csv"
mport=$(txagg_free_port)
txagg_start_mongo "$TMP/mongo" "$mport"
export MONGODB_URI="mongodb://127.0.0.1:$mport" MONGODB_DATABASE=bench_cluster
read -r FROM TO < <(/usr/bin/python3 tests/lib/oracle.py range "$TMP/expect.tsv")
STATS="/stats?from_date=$FROM&to_date=$TO"

# api_bench LABEL — bin/api on the cluster: one /stats answer checked, then a
# wrk window on /stats and one on /health, each with the Redis CPU per request.
api_bench() {
    local label=$1 aport url pid out path r0 r1 pidn hz
    aport=$(txagg_free_port)
    url=http://127.0.0.1:$aport
    API_HOST=127.0.0.1 API_PORT=$aport API_PROBE_PORT=0 "$BIN/api" >"$TMP/api.log" 2>&1 &
    pid=$!
    apids+=("$pid")
    txagg_wait_http "$url/health" 20 || { echo "$label: bin/api did not start: $(tail -3 "$TMP/api.log")"; return 0; }
    if out=$(/usr/bin/python3 tests/lib/oracle.py compare "$url" "$FROM" "$TO" "$TMP/expect.tsv" 2>&1); then
        echo "$label: /stats $FROM..$TO answered exactly (checked before the window)"
    else
        echo "$label: /stats $FROM..$TO is WRONG, no figure: $(head -3 <<<"$out" | tr '\n' ' ')"
        return 0
    fi
    hz=$(getconf CLK_TCK)
    for path in "$STATS" /health; do
        r0=0
        for pidn in $(node_pids); do r0=$((r0 + $(ticks "$pidn"))); done
        wrk -t2 -c32 -d"${SECS}s" --latency "$url$path" >"$TMP/wrk.out" 2>&1 || true
        r1=0
        for pidn in $(node_pids); do r1=$((r1 + $(ticks "$pidn"))); done
        awk -v label="$label" -v path="${path%%\?*}" -v d="$((r1 - r0))" -v hz="$hz" -v secs="$SECS" '
            $1 == "Requests/sec:" { rps = $2 }
            $1 == "99%" { p99 = $2 }
            /Non-2xx/ { bad = $NF }
            END { printf "%s: api %s: %d req/s, p99 %s, non-2xx %d, Redis CPU per request (all nodes) %.1f us\n",
                  label, (path == "/stats" ? "/stats 30 days" : path), rps, p99, bad + 0,
                  (rps > 0 ? d / hz * 1e6 / (rps * secs) : 0) }' "$TMP/wrk.out"
    done
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    apids=()
}
echo "cluster: $ROWS rows over 30 days out of order, one importer, IMPORT_SPEED=0; on a cluster $NPART partitions," \
    "primaries without replicas (AOF everysec), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A RATE RCPU ICPU ACPU
for P in $PRIMARIES; do
    label="cluster [$P primar$([ "$P" = 1 ] && echo y || echo ies), $P aggregator$([ "$P" = 1 ] || echo s)]"
    [ "$P" = 0 ] && label="one Redis [1 untagged partition, 1 aggregator]"
    redis_up "$P" || { echo "$label: no Redis: $(tail -3 "$TMP/cluster.log" 2>/dev/null)"; continue; }
    for ((i = 1; i <= (P > 0 ? P : 1); i++)); do
        CONSUMER_NAME=bench-agg-$i "$BIN/aggregator" 2>>"$TMP/agg.log" &
        apids+=($!)
    done
    until [ "$(ccli EXISTS "${STREAMS[0]}")" = 1 ]; do sleep 0.05; done # the groups exist
    declare -A r0=()
    for pid in $(node_pids); do r0[$pid]=$(ticks "$pid"); done
    a0=0
    for p in "${apids[@]}"; do a0=$((a0 + $(ticks "$p"))); done
    t0=$(now)
    MAX_BACKLOG=1000000 /usr/bin/time -f "%U %S" -o "$TMP/imp.time" "$BIN/importer" "$TMP/rows.csv" 2>"$TMP/imp.log" ||
        { echo "$label: the importer failed: $(tail -3 "$TMP/imp.log")"; }
    until drained; do sleep 0.02; done
    t1=$(now)
    rsum=0 rmax=0
    for pid in $(node_pids); do
        d=$(($(ticks "$pid") - ${r0[$pid]:-0}))
        rsum=$((rsum + d))
        [ "$d" -gt "$rmax" ] && rmax=$d
    done
    a1=0
    for p in "${apids[@]}"; do a1=$((a1 + $(ticks "$p"))); done
    for p in "${apids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${apids[@]}"; do wait "$p" 2>/dev/null || true; done
    apids=()
    totals=$(check_totals)
    api_bench "$label" >"$TMP/api-bench.out"
    redis_down
    read -r iu is <"$TMP/imp.time"
    hz=$(getconf CLK_TCK)
    RATE[$P]=$(awk -v n="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
    RCPU[$P]=$(awk -v t="$rsum" -v hz="$hz" -v n="$ROWS" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    ICPU[$P]=$(awk -v u="$iu" -v s="$is" -v n="$ROWS" 'BEGIN { printf "%.2f", (u + s) * 1e6 / n }')
    ACPU[$P]=$(awk -v t="$((a1 - a0))" -v hz="$hz" -v n="$ROWS" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    awk -v n="$ROWS" -v t0="$t0" -v t1="$t1" -v label="$label" -v tot="$totals" -v r="${RCPU[$P]}" \
        -v rmax="$rmax" -v hz="$hz" -v i="${ICPU[$P]}" -v a="${ACPU[$P]}" 'BEGIN {
        split(tot, x, " ")
        printf "%s: %d rows/s end to end (%.2f s); totals %s (%d cells)\n", label, n / (t1 - t0), t1 - t0, x[1], x[2]
        printf "%s: CPU per row: redis-servers %.2f us (busiest primary %.2f us), importer %.2f us, aggregators %.2f us\n",
            label, r, rmax / hz * 1e6 / n, i, a }'
    cat "$TMP/api-bench.out"
done

# What N primaries give with a core for each process, from the per-row costs measured with the most primaries.
last=
for P in $PRIMARIES; do [ "$P" != 0 ] && [ -n "${RCPU[$P]:-}" ] && last=$P; done
if [ -n "$last" ]; then
    awk -v r="${RCPU[$last]}" -v i="${ICPU[$last]}" -v a="${ACPU[$last]}" -v P="$last" 'BEGIN {
        printf "cluster: per-row CPU with %d primaries: Redis %.2f us (all primaries together), importer %.2f us, aggregators %.2f us\n", P, r, i, a
        for (n = 1; n <= 12; n *= 2) {
            redis = n * 1e6 / r; agg = n * 1e6 / a; imp = 1e6 / i
            m = redis; lim = "Redis"; if (agg < m) { m = agg; lim = "aggregators" } if (imp < m) { m = imp; lim = "one importer" }
            printf "cluster: with enough cores, %d primaries + %d aggregators + 1 importer: ~%d rows/s (Redis %d, aggregators %d, one importer %d; bound by %s)\n",
                n, n, m, redis, agg, imp, lim
        }
    }'
fi
