#!/usr/bin/env bash
# bench part 2 — the API under wrk (printed figures, never asserted).
#
# Starts its own redis-server, MongoDB-wire server and bin/api on free
# loopback ports, seeds 7 hot days (Redis) and 23 archived days (MongoDB,
# archived_through), then runs wrk with 32 connections, one after the other:
#   /health                        the server's floor, beside the others
#   /stats over the 7 hot days     target >= 15,000 req/s, p99 <= 5 ms
#   /stats over 30 hot+cold days   target >= 5,000 req/s
# and reports the RSS of bin/api idle (target <= 16 MB) and loaded, the
# Redis time per /stats request (INFO commandstats) and the cold-cache hits.
# Stops everything it started, always.
#
#   BENCH_SECONDS  duration of each wrk run (default 10)
#   API_THREADS    worker threads of bin/api (default 64)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. scripts/lib/common.sh

SECS=${BENCH_SECONDS:-10}
THREADS=${API_THREADS:-64}
make --no-print-directory build/release/tools/apiseed >/dev/null
TMP=$(mktemp -d /tmp/txagg-bench-api.XXXXXX)
API_PID=
cleanup() {
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

API_HOST=127.0.0.1 API_PORT=$aport API_THREADS=$THREADS bin/api >"$TMP/api.log" 2>&1 &
API_PID=$!
URL=http://127.0.0.1:$aport
txagg_wait_http "$URL/health" 20 || { echo "bench api: bin/api did not start" >&2; cat "$TMP/api.log" >&2; exit 1; }
sleep 1
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$API_PID/status"; }
idle_kb=$(rss_kb)

HOT="/stats?from_date=2026-01-24&to_date=2026-01-30"
MIXED="/stats?from_date=2026-01-01&to_date=2026-01-30"
for p in "$HOT" "$MIXED"; do
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$URL$p")
    [ "$code" = 200 ] || { echo "bench api: $p answered $code: $(cat "$TMP/body")" >&2; exit 1; }
done
echo "api: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]; print(len(d), "days,", sum(len(s) for v in d.values() for s in v.values()), "amounts per 30-day answer")' "$TMP/body"), $THREADS worker threads, wrk -t2 -c32 -d${SECS}s"

peak_kb=$idle_kb
# run_wrk NAME PATH — prints one line of figures; samples RSS while it runs.
run_wrk() {
    local name=$1 path=$2 out=$TMP/wrk.out
    wrk -t2 -c32 -d"${SECS}s" --latency "$URL$path" >"$out" 2>&1 &
    local w=$! r
    while kill -0 "$w" 2>/dev/null; do
        r=$(rss_kb)
        [ "$r" -gt "$peak_kb" ] && peak_kb=$r
        sleep 0.5
    done
    wait "$w"
    python3 - "$name" "$out" <<'PY'
import re, sys
name, text = sys.argv[1], open(sys.argv[2]).read()
def lat(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, text, re.M)
    if not m: return "?"
    v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return "%.2f ms" % v
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
rps = float(rps.group(1)) if rps else 0.0
errs = []
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if m: errs.append("non-2xx %s" % m.group(1))
m = re.search(r"Socket errors: (.*)", text)
if m: errs.append("socket errors: " + m.group(1))
print("api: %-26s %9s req/s   p50 %-9s p99 %-9s %s" % (name, format(round(rps), ","), lat(50), lat(99), "; ".join(errs) or "no errors"))
PY
}

redis-cli -p "$rport" CONFIG RESETSTAT >/dev/null
run_wrk "/health" /health
run_wrk "/stats 7 hot days" "$HOT"
cs=$(redis-cli -p "$rport" INFO commandstats)
run_wrk "/stats 30 hot+cold days" "$MIXED"
loaded_kb=$(rss_kb)
metrics=$(curl -s "$URL/metrics")

python3 - "$cs" <<'PY'
import re, sys
cs = sys.argv[1]
def stat(cmd):
    m = re.search(r"cmdstat_%s:calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)" % cmd, cs)
    return (int(m.group(1)), float(m.group(3))) if m else (0, 0.0)
ex, ev = stat("exec"), stat("evalsha")
print("api: Redis time per hot /stats: MULTI/EXEC %.1f us (%d calls), snapshot.lua %.1f us (%d calls)" % (ex[1], ex[0], ev[1], ev[0]))
PY
get() { printf '%s\n' "$metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
echo "api: cold cache hits $(get txagg_api_cold_cache_hits_total), MongoDB reads $(get txagg_api_mongo_reads_total)," \
    "snapshots via MULTI $(get 'txagg_api_snapshots_total{path="multi"}'), via script $(get 'txagg_api_snapshots_total{path="script"}')"
echo "api: RSS idle $((idle_kb / 1024)).$(((idle_kb % 1024) * 10 / 1024)) MB (target <= 16 MB)," \
    "peak under load $((peak_kb / 1024)).$(((peak_kb % 1024) * 10 / 1024)) MB, after load $((loaded_kb / 1024)).$(((loaded_kb % 1024) * 10 / 1024)) MB"
echo "api: targets: 7 hot days >= 15,000 req/s with p99 <= 5 ms; 30 hot+cold days >= 5,000 req/s (2-core machine, wrk on the same cores)"
