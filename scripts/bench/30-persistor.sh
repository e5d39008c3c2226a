#!/usr/bin/env bash
# bench part: archival throughput of one persistor — days moved from Redis to
# the MongoDB-wire server per second (10 methods × 2 types per day, batches
# of 64 days, one guarded upsert per day), and its idle RSS.  Starts its own
# redis-server and MongoDB-wire server on free loopback ports; prints figures,
# asserts nothing.  BENCH_PERSISTOR_DAYS (default 730).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/common.sh

days=${BENCH_PERSISTOR_DAYS:-730}
tmp=$(mktemp -d /tmp/txagg-bench-persistor.XXXXXX)
pst=
cleanup() {
    [ -n "$pst" ] && kill -9 "$pst" 2>/dev/null
    txagg_stop_pid "${TXAGG_REDIS_PID:-}"
    txagg_stop_pid "${TXAGG_MONGO_PID:-}"
    rm -rf "$tmp"
}
trap cleanup EXIT

rport=$(txagg_free_port)
mport=$(txagg_free_port)
txagg_start_redis "$tmp/redis" "$rport" >/dev/null
txagg_start_mongo "$tmp/mongo" "$mport"
export REDIS_PORT=$rport MONGODB_URI="mongodb://127.0.0.1:$mport" MONGODB_DATABASE=bench
export RETENTION_DAYS=7 PERSIST_INTERVAL_MS=100 LOG_LEVEL=WARNING METRICS_PORT=0

# The hot tier as the aggregator leaves it: days × 2 types × 10 methods.
python3 - "$days" >"$tmp/seed.txt" <<'EOF'
import datetime, sys
n = int(sys.argv[1])
d0 = datetime.date(2024, 1, 1)
for i in range(n):
    d = (d0 + datetime.timedelta(days=i)).isoformat()
    for t in ("deposit", "withdrawal"):
        for m in range(10):
            print(f"HINCRBY agg:{d}:{t} method{m} {1000 + i + m}")
    print(f"SADD system:tracked_days {d}")
print(f"SET system:virtual_clock {(d0 + datetime.timedelta(days=n - 1)).isoformat()}T12:00:00Z")
EOF
redis-cli -p "$rport" <"$tmp/seed.txt" >/dev/null

eligible=$((days - RETENTION_DAYS))
start=$(date +%s%N)
bin/persistor 2>"$tmp/persistor.log" &
pst=$!
while [ "$(redis-cli -p "$rport" SCARD system:tracked_days)" != "$RETENTION_DAYS" ] ||
    [ "$(redis-cli -p "$rport" SCARD system:archive:pending)" != 0 ]; do
    sleep 0.05
done
ms=$((($(date +%s%N) - start) / 1000000))
sleep 2 # idle now: nothing left to archive
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pst/status")
kill -TERM "$pst"
wait "$pst" || true
pst=

echo "persistor: $eligible days archived in $ms ms = $((eligible * 1000 / (ms > 0 ? ms : 1))) days/s" \
    "($(basename "$(txagg_mongo_server)"), 20 fields/day, batches of 64 days, start-up included)"
echo "persistor: idle RSS ${rss} kB"
