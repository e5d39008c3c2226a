#!/usr/bin/env bash
# A Redis failover under the api: replication is asynchronous, so the
# promoted replica can lack a write the old primary acknowledged — and then
# reach the same hot version again with other amounts.  The api's answer
# cache is keyed by the versions; it must not serve the body it computed from
# the lost write once the replica serves the address.
#
# A primary + replica (tests/lib/cluster.sh); the api reads the primary's
# address.  The replica is stopped (SIGSTOP) while 40 MB of filler and then
# one more batch land on
# the primary (HINCRBY + INCR of the hot version, as apply.lua does) and the
# api caches its answer; the primary is killed, the replica promoted and the
# address handed to it (cluster_pair_failover); a different batch then lands
# on it, bringing the hot version back to the same number.  Every 200 the api
# gives must be the new primary's amount.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/cluster.sh"

dir=$PWD/pair
cluster_pair_for_test "$dir"
replica=$PAIR_REPLICA
. "$TXAGG_ROOT/tests/lib/apitest.sh"
R=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")

echo "hot 2026-01-15 deposit visa 10000" | seed || bail_out "seeding failed"
# One applied batch: the amount and the hot version in one atomic step.
batch() { "${R[@]}" EVAL "redis.call('HINCRBY', KEYS[1], 'visa', ARGV[1]); return redis.call('INCR', KEYS[2])" \
    2 agg:2026-01-15:deposit system:hot_version "$1"; }
visa() { # the visa deposit of 2026-01-15 as /stats gives it, or the status
    http GET '/stats?from_date=2026-01-15&to_date=2026-01-15'
    if [ "$HTTP_STATUS" = 200 ]; then
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["2026-01-15"]["deposits"]["visa"])' <http.body
    else echo "status $HTTP_STATUS"; fi
}

api_start LOG_LEVEL=INFO REDIS_TIMEOUT_MS=1000
is "$(visa)" 100.0 "the api answers from the primary"
kill -STOP "$(cluster_pid "$dir" "$replica")"
# 40 MB the stopped replica cannot take in: more than the sockets between
# them buffer, so the batch written after it stays in the primary's output
# buffer and dies with it (within the replica output-buffer limit, 64 MB).
"${R[@]}" EVAL "for i = 1, 20 do redis.call('SET', 'filler:' .. i, string.rep('x', 2000000)) end" 0 >/dev/null
lost=$(batch 5000)
is "$(visa)" 150.0 "a batch the replica never received is in the answer"
cached=$(curl -s "$API_URL/metrics" | sed -n 's/^txagg_api_snapshots_total{path="answer_cache"} //p')
is "$(visa)" 150.0 "and the same answer again"
is "$(curl -s "$API_URL/metrics" | sed -n 's/^txagg_api_snapshots_total{path="answer_cache"} //p')" \
    "$((cached + 1))" "the second answer came from the answer cache"

cluster_pair_failover "$dir" || bail_out "the failover did not complete"
is "$("${R[@]}" HGET agg:2026-01-15:deposit visa)" 10000 "the promoted replica lacks the batch"
again=$(batch 700)
is "$again" "$lost" "a new batch brings the hot version back to the same number ($again)"

answers() { [ "$(visa)" != "status 503" ]; }
check "the api answers again after the failover" wait_until 60 answers
is "$(visa)" 107.0 "its answer is the new primary's amount, not the cached one of the lost batch"
is "$(visa)" 107.0 "and stays so"
api_stop_checked
done_testing
