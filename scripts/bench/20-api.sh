#!/usr/bin/env bash
# bench part 2 — the API under wrk (printed figures, never asserted).
#
# Starts its own redis-server, MongoDB-wire server and bin/api on free
# loopback ports, seeds 7 hot days (Redis, 2026-01-24..30) and 23 archived
# days (MongoDB, archived_through 2026-01-23), then runs wrk -t2 -c32, one
# window of BENCH_SECONDS after the other, in this order:
#   1. /stats over 30 hot+cold days — the first window after the api started
#      (nothing warm: no MongoDB connection, no cold cache, no layout hint);
#   2. /health — the server's floor, side by side with
#   3. /stats over the 7 hot days (nothing changes: a repeated query is
#      answered from the answer cache after one MGET of the versions), and
#      3b. the same while system:hot_version is INCRed every 10 ms, as a live
#      aggregator does with each batch it applies (each bump makes the next
#      requests compute their answer again);
#   4. /stats 30 days again, warm;
#   5. /stats 30 days while bin/persistor archives 2026-01-24 (the virtual
#      clock is set so that exactly that day is eligible with
#      RETENTION_DAYS=7): a freeze and a clean-up bump the archive version
#      during the window, the real way;
#   6. /stats 30 days after the archival.
# Per window: req/s, p50, p99, max, errors, the MongoDB reads it made
# (txagg_api_mongo_reads_total), the archive version before and after, and
# the Redis time per request: "cmd" from INFO commandstats (usec of the
# api's top-level commands — MULTI/EXEC, EVALSHA, MGET, PING — during the
# window ÷ the requests wrk completed) and "CPU" from /proc (redis-server's
# CPU time during the window ÷ the same requests: socket I/O included), and
# bin/api's own CPU time per request (/proc), all in microseconds.  Then the ratio
# /stats 7 hot ÷ /health, the RSS of bin/api idle and under load, and the
# issue-15 targets beside the figures.  Stops everything it started, always.
#
#   BENCH_SECONDS  duration of each window (default 6)
#   API_THREADS    worker threads of bin/api (default 64)
#   TXAGG_BIN      where bin/api and bin/persistor are (default bin)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/common.sh

SECS=${BENCH_SECONDS:-6}
THREADS=${API_THREADS:-64}
BIN=${TXAGG_BIN:-bin}
make --no-print-directory build/release/tools/apiseed >/dev/null
TMP=$(mktemp -d /tmp/txagg-bench-api.XXXXXX)
API_PID= PST_PID= WRK_PID=
cleanup() {
    [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
    [ -n "${BUMP_PID:-}" ] && kill "$BUMP_PID" 2>/dev/null
    txagg_stop_pid "$PST_PID"
    txagg_stop_pid "$API_PID"
    txagg_stop_pid "${TXAGG_REDIS_PID:-}"
    txagg_stop_pid "${TXAGG_MONGO_PID:-}"
    rm -rf "$TMP"
}
trap cleanup EXIT

rport=$(txagg_free_port)
mport=$(txagg_free_port)
aport=$(txagg_free_port)
txagg_start_redis "$TMP/redis" "$rport" >/dev/null
txagg_start_mongo "$TMP/mongo" "$mport"
R=(redis-cli -p "$rport")
export REDIS_HOST=127.0.0.1 REDIS_PORT=$rport MONGODB_URI="mongodb://127.0.0.1:$mport" MONGODB_DATABASE=bench_api
export LOG_LEVEL=WARNING

# 30 days of January 2026, 5 methods per side: 01-01..01-23 archived, 01-24..01-30 hot.
python3 - >"$TMP/seed" <<'PY'
import datetime, random
rnd = random.Random(1)
print("version 1")
print("through 2026-01-23")
for i in range(30):
    day = (datetime.date(2026, 1, 1) + datetime.timedelta(days=i)).isoformat()
    for t in ("deposit", "withdrawal"):
        for m in ("visa", "paypal", "crypto", "apple_pay", "bank_transfer"):
            print("%s %s %s %s %d" % ("doc" if day <= "2026-01-23" else "hot", day, t, m, rnd.randint(10**5, 10**9)))
    if day <= "2026-01-23":
        print("docbatch %s b0" % day)
PY
build/release/tools/apiseed <"$TMP/seed" 2>/dev/null
# With RETENTION_DAYS=7 the persistor of the archival window finds exactly 2026-01-24 eligible.
"${R[@]}" SET system:virtual_clock 2026-01-31T00:00:00Z >/dev/null

API_HOST=127.0.0.1 API_PORT=$aport API_PROBE_PORT=0 API_THREADS=$THREADS "$BIN/api" >"$TMP/api.log" 2>&1 &
API_PID=$!
URL=http://127.0.0.1:$aport
txagg_wait_http "$URL/health" 20 || { echo "bench api: bin/api did not start" >&2; cat "$TMP/api.log" >&2; exit 1; }
sleep 1
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$API_PID/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
idle_kb=$(rss_kb)
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
version() { "${R[@]}" GET system:archive_version; }
redis_ticks() { awk '{ print $14 + $15 }' "/proc/$TXAGG_REDIS_PID/stat"; }
api_ticks() { awk '{ print $14 + $15 }' "/proc/$API_PID/stat"; }

HOT="/stats?from_date=2026-01-24&to_date=2026-01-30"
MIXED="/stats?from_date=2026-01-01&to_date=2026-01-30"
# The answers are checked once the windows are over (curl here would warm the api).
echo "api: 7 hot days (Redis) + 23 archived days (MongoDB), $THREADS worker threads, wrk -t2 -c32 -d${SECS}s per window," \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'api: %-44s %9s %9s %9s %9s %7s %7s %11s %7s  %s\n' window req/s p50 p99 max "Mongo" archive "Redis/req" "api/req" errors
printf 'api: %-44s %9s %9s %9s %9s %7s %7s %11s %7s\n' "" "" "" "" "" reads version "cmd   CPU" CPU

peak_kb=$idle_kb
declare -A RPS P99
# window KEY NAME PATH [during-command] — one wrk window, one line of figures.
window() {
    local key=$1 name=$2 path=$3 during=${4:-} out=$TMP/wrk.$1 r reads0 v0
    "${R[@]}" CONFIG RESETSTAT >/dev/null
    reads0=$(metric txagg_api_mongo_reads_total)
    v0=$(version)
    ticks0=$(redis_ticks)
    aticks0=$(api_ticks)
    wrk -t2 -c32 -d"${SECS}s" --latency "$URL$path" >"$out" 2>&1 &
    WRK_PID=$!
    [ -n "$during" ] && $during
    while kill -0 "$WRK_PID" 2>/dev/null; do
        r=$(rss_kb)
        [ "$r" -gt "$peak_kb" ] && peak_kb=$r
        sleep 0.5
    done
    wait "$WRK_PID" || true
    WRK_PID=
    "${R[@]}" INFO commandstats | tr -d '\r' >"$TMP/cs.$key"
    local line
    line=$(python3 - "$name" "$out" "$TMP/cs.$key" "$(($(metric txagg_api_mongo_reads_total) - reads0))" \
        "$v0→$(version)" "$(($(redis_ticks) - ticks0))" "$(getconf CLK_TCK)" "$(($(api_ticks) - aticks0))" <<'PY'
import re, sys
name, text, cs, reads, ver = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read(), sys.argv[4], sys.argv[5]
rticks, hz, aticks = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
def lat(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
    return ms(*m.groups()) if m else float("nan")
m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text, re.M)
mx = ms(*m.groups()) if m else float("nan")
m = re.search(r"Requests/sec:\s+([\d.]+)", text)
rps = float(m.group(1)) if m else 0.0
m = re.search(r"(\d+) requests in", text)
reqs = int(m.group(1)) if m else 0
# the api's top-level commands only: what runs inside EXEC or a script is in their usec already
usec = sum(int(u) for c, u in re.findall(r"^cmdstat_([^:]+):calls=\d+,usec=(\d+),", cs, re.M)
           if c in ("multi", "exec", "evalsha", "eval", "mget", "ping"))
errs = []
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if m: errs.append("non-2xx %s" % m.group(1))
m = re.search(r"Socket errors: (.*)", text)
if m: errs.append("socket errors: " + m.group(1))
print("%-44s %9s %6.2f ms %6.2f ms %6.1f ms %7s %7s %5.1f %5.1f %7.1f  %s|%.0f|%.2f" % (
    name, format(round(rps), ","), lat(50), lat(99), mx, reads, ver, usec / reqs if reqs else float("nan"),
    rticks / hz * 1e6 / reqs if reqs else float("nan"), aticks / hz * 1e6 / reqs if reqs else float("nan"),
    "; ".join(errs) or "none", rps, lat(99)))
PY
)
    echo "api: ${line%%|*}"
    local rest=${line#*|}
    RPS[$key]=${rest%%|*}
    P99[$key]=${rest#*|}
}

# During the archival window: the persistor archives 2026-01-24 (freeze, MongoDB write, clean-up).
archive_one_day() {
    sleep 0.5
    RETENTION_DAYS=7 PERSIST_INTERVAL_MS=500 METRICS_PORT=0 LOG_LEVEL=INFO "$BIN/persistor" >"$TMP/persistor.log" 2>&1 &
    PST_PID=$!
    local t0 i
    t0=$(date +%s.%N)
    for ((i = 0; i < (SECS - 1) * 20; i++)); do
        [ "$("${R[@]}" GET system:archived_through)" = 2026-01-24 ] && break
        sleep 0.05
    done
    ARCHIVED_AFTER=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
    txagg_stop_pid "$PST_PID"
    PST_PID=
}

window first "/stats 30 hot+cold, first window after start" "$MIXED"
window health "/health" /health
window hot "/stats 7 hot days" "$HOT"
bump_hot_version() {
    "${R[@]}" -r -1 -i 0.01 INCR system:hot_version >/dev/null &
    BUMP_PID=$!
}
BUMP_PID=
window hotbump "/stats 7 hot days, hot version +100/s" "$HOT" bump_hot_version
kill "$BUMP_PID" 2>/dev/null || true
wait "$BUMP_PID" 2>/dev/null || true
BUMP_PID=
window warm "/stats 30 hot+cold, warm" "$MIXED"
ARCHIVED_AFTER=
window archive "/stats 30 hot+cold, persistor archives a day" "$MIXED" archive_one_day
window after "/stats 30 hot+cold, after the archival" "$MIXED"
loaded_kb=$(rss_kb)

through=$("${R[@]}" GET system:archived_through)
echo "api: archival window: the persistor archived 2026-01-24 ${ARCHIVED_AFTER}s after it started (archived_through now $through," \
    "archive version $(version)); $(grep -c 'batch archived' "$TMP/persistor.log" || true) batch archived"
# Exactness after all that: the 30-day answer against the seed (the archived day included).
curl -s "$URL$MIXED" >"$TMP/body"
python3 - "$TMP/seed" "$TMP/body" <<'PY'
import json, sys
want = {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] in ("doc", "hot"):
        want.setdefault(f[1], {}).setdefault(f[2] + "s", {})[f[3]] = int(f[4])
got = json.load(open(sys.argv[2]))["data"]
cents = {d: {s: {m: round(v * 100) for m, v in ms.items()} for s, ms in sides.items()} for d, sides in got.items()}
print("api: 30-day answer after the windows: %s (%d days, %d amounts, against the seed)" % (
    "EXACT" if cents == want else "WRONG", len(cents), sum(len(m) for s in cents.values() for m in s.values())))
PY
grep -E 'cmdstat_(exec|evalsha|mget):' "$TMP/cs.hot" | tr -d '\r' | awk -F'[:,=]' '
    { printf "%s%s %d calls %.1f us/call", sep, $1, $3, $7; sep = "; " } END { print "" }' |
    sed 's/cmdstat_//g; s/^/api: Redis during \/stats 7 hot: /'
awk -v s="${RPS[hot]}" -v h="${RPS[health]}" 'BEGIN {
    printf "api: /stats 7 hot ÷ /health = %.2f (target >= 0.5)\n", (h > 0 ? s / h : 0) }'
worst=$(printf '%s\n' "${P99[first]}" "${P99[warm]}" "${P99[archive]}" "${P99[after]}" | sort -g | tail -1)
echo "api: worst p99 of the /stats 30 hot+cold windows: $worst ms (target <= 5 ms in every window);" \
    "/stats 7 hot p99 ${P99[hot]} ms (target <= 5 ms)"
echo "api: RSS idle $(mb "$idle_kb") (target <= 16 MB), peak under load $(mb "$peak_kb"), after load $(mb "$loaded_kb")"
