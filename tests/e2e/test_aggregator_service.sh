#!/usr/bin/env bash
# The aggregator as a service: /health, /ready and /metrics on METRICS_PORT;
# a port already in use stops it at start (exit 1, the port named: its probes
# could never answer); SIGTERM applies the batches in
# hand and exits 0 (everything the group delivered is counted, nothing more);
# a Redis outage (kill -9, restart from its AOF with an empty script cache)
# is waited out with one log line per change of state and loses nothing.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/scripts/lib/common.sh"
. "$TXAGG_ROOT/tests/lib/aggregator_e2e.sh"

PUB="$TXAGG_TESTBIN/tools/txpub"
N=$(scaled 200000 20000)
pids=()
own_redis=
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    [ -n "$own_redis" ] && kill -KILL "$own_redis" 2>/dev/null
    wait 2>/dev/null
}
trap cleanup EXIT

mport=$(txagg_free_port)
URL="http://127.0.0.1:$mport"

# --- probes, then SIGTERM in the middle of a busy stream -------------------
CONSUMER_NAME=svc-a METRICS_PORT=$mport LOG_LEVEL=INFO "$TXAGG_BIN/aggregator" 2>a.log &
apid=$!
pids+=("$apid")
check "/health answers 200" txagg_wait_http "$URL/health" 20
check "/ready answers 200 once the group is set up" txagg_wait_http "$URL/ready" 20
metrics=$(curl -fsS "$URL/metrics")
for m in entries_applied_total batches_total claimed_entries_total stale_batches_total trims_total \
    entries_trimmed_total rejected_total consumers_reaped_total lag pending virtual_clock_timestamp_seconds dead_letters_added_total; do
    like "$metrics" "^txagg_aggregator_${m} " "/metrics exports txagg_aggregator_$m"
done

# a second replica on the same metrics port cannot start its listener: a
# start-up error, not a replica running without probes
CONSUMER_NAME=svc-b METRICS_PORT=$mport LOG_LEVEL=INFO timeout 60 "$TXAGG_BIN/aggregator" 2>b.log
is "$?" 1 "a metrics port in use stops the aggregator at start with exit 1"
like "$(cat b.log)" "level=error .*msg=\"cannot start\".*listen 127\.0\.0\.1:$mport" "the error names the address"
check "it never says it started" bash -c "! grep -q 'msg=\"started\"' b.log"

rm -f dump.txt
"$PUB" --count "$N" --seed 5 --days 9 --bad-every 50 --dump dump.txt >/dev/null 2>pub.err &
pubpid=$!
pids+=("$pubpid")
reading() { r=$(agg_group_field entries-read); [ -n "$r" ] && [ "$r" -gt 0 ]; }
check "the aggregator starts reading the stream" wait_until 30 reading
kill -TERM "$apid"
wait "$apid"
is "$?" 0 "SIGTERM while busy: exit 0"
wait "$pubpid"
like "$(cat a.log)" 'msg="stopped"' "the stop is logged"
read_n=$(agg_group_field entries-read)
check "it had read part of the stream ($read_n of $N)" [ "$read_n" -gt 0 ]
is "$("${R[@]}" XPENDING transactions aggregators | head -1)" 0 "every entry it read was applied and acknowledged"
agg_oracle dump.txt "$read_n" >want.txt
agg_redis_totals >got.txt
if cmp -s want.txt got.txt; then ok "totals are exactly those of the entries it read"; else
    not_ok "totals are exactly those of the entries it read" "$(diff want.txt got.txt | head -6)"
fi

# --- a Redis outage ------------------------------------------------------------
rport=$(txagg_free_port)
start_own_redis() {
    txagg_start_redis "$PWD/own-redis" "$rport" --appendonly yes --appendfsync always >/dev/null &&
        own_redis=$TXAGG_REDIS_PID
}
start_own_redis || bail_out "cannot start a redis-server of our own"
R=(redis-cli -p "$rport")
oport=$(txagg_free_port)
REDIS_PORT=$rport CONSUMER_NAME=svc-o METRICS_PORT=$oport LOG_LEVEL=INFO REDIS_TIMEOUT_MS=500 \
    "$TXAGG_BIN/aggregator" 2>o.log &
opid=$!
pids+=("$opid")
rm -f dump2.txt
REDIS_PORT=$rport "$PUB" --count 5000 --seed 9 --days 3 --dump dump2.txt >/dev/null 2>&1
check "before the outage: drained" agg_wait_drained 60
kill -KILL "$own_redis"
wait "$own_redis" 2>/dev/null
not_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$oport/ready")" = 503 ]; }
check "/ready answers 503 while Redis is down" wait_until 20 not_ready
sleep 2 # several reconnection attempts
start_own_redis || bail_out "cannot restart our redis-server"
REDIS_PORT=$rport "$PUB" --from 5000 --count 5000 --seed 9 --days 3 --dump dump2.txt >/dev/null 2>&1
check "after the outage: drained" agg_wait_drained 60
check "/ready answers 200 again" txagg_wait_http "http://127.0.0.1:$oport/ready" 20
agg_oracle dump2.txt >want2.txt
agg_redis_totals >got2.txt
if cmp -s want2.txt got2.txt; then ok "totals across the outage are exact"; else
    not_ok "totals across the outage are exact" "$(diff want2.txt got2.txt | head -6)"
fi
is "$(grep -c 'msg="dependency unreachable, retrying"' o.log)" 1 "the outage is logged once"
is "$(grep -c 'msg="dependency reachable again"' o.log)" 1 "the recovery is logged once"
kill -TERM "$opid"
wait "$opid"
is "$?" 0 "exit 0 after the outage"
like "$(tail -1 o.log)" 'entries_applied=10000$' "every entry applied is counted once in the metrics"
done_testing
