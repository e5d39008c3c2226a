#!/usr/bin/env bash
# bin/api on a partitioned hot tier, through HTTP: REDIS_PARTITIONS=4 on the
# harness's one Redis, then REDIS_CLUSTER on a real Redis Cluster (3
# primaries + 3 replicas, tests/lib/cluster.sh).  Each partition's keys are
# seeded with redis-cli under the names common/keys computes
# (tests/tools/tierkeys), the documents with apiseed; the expected bodies are
# the sums of what was seeded, written out by hand.
#   - /stats = Σ partitions (hot + frozen batches not listed) + MongoDB, a
#     frozen batch already listed counted once; /stats.csv the same cells;
#   - a change in one partition (its hot version bumped) is in the next answer;
#   - /freshness: the greatest clock and archived-through day over partitions;
#   - a binary started with another REDIS_PARTITIONS exits 2 naming it;
#   - on the cluster: /stats in a loop while the primary of a partition is
#     killed: every 200 exact, every other answer a 503 with a detail.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/cluster.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"

TIERKEYS=$TXAGG_TESTBIN/tools/tierkeys
mapfile -t TAGS < <("$TIERKEYS" 4 | awk '{print $3}')
[ "${#TAGS[@]}" = 4 ] || bail_out "tierkeys gave no layout"

CDIR=$PWD/cluster
cleanup() { api_stop; [ -d "$CDIR" ] && cluster_stop "$CDIR"; }
trap cleanup EXIT

# seed_partitions REDIS-CLI…: the same data on either Redis.
#   partition p: 2026-01-15 deposit visa 100+p cents (hot); p2 also a paypal withdrawal of 5;
#   p0: batch b1p0 frozen (2026-01-04 deposit visa 40), not in any document;
#   p3: batch b1p3 frozen (2026-01-03 deposit visa 300), already written to the document;
#   clocks: p1 2026-01-16T10:00:00Z, p3 2026-01-17T01:02:03Z; archived through: p2 2026-01-05, p3 2026-01-03.
seed_partitions() {
    local p t
    for p in 0 1 2 3; do
        t=${TAGS[p]}
        "$@" HINCRBY "agg:2026-01-15:deposit$t" visa $((100 + p)) >/dev/null
        "$@" SADD "system:tracked_days$t" 2026-01-15 >/dev/null
        "$@" INCR "system:hot_version$t" >/dev/null
    done
    t=${TAGS[2]}
    "$@" HINCRBY "agg:2026-01-15:withdrawal$t" paypal 5 >/dev/null
    "$@" SET "system:archived_through$t" 2026-01-05 >/dev/null
    "$@" INCR "system:hot_version$t" >/dev/null
    t=${TAGS[0]}
    "$@" HSET "archive:frozen:b1p0:2026-01-04:deposit$t" visa 40 >/dev/null
    "$@" HSET "archive:batch:b1p0$t" days 2026-01-04 fence 1 state frozen created 0 >/dev/null
    "$@" SADD "system:archive:pending$t" b1p0 >/dev/null
    "$@" INCR "system:archive_version$t" >/dev/null
    t=${TAGS[3]}
    "$@" HSET "archive:frozen:b1p3:2026-01-03:deposit$t" visa 300 >/dev/null
    "$@" HSET "archive:batch:b1p3$t" days 2026-01-03 fence 1 state written created 0 >/dev/null
    "$@" SADD "system:archive:pending$t" b1p3 >/dev/null
    "$@" INCR "system:archive_version$t" >/dev/null
    "$@" SET "system:archived_through$t" 2026-01-03 >/dev/null
    "$@" SET "system:virtual_clock$t" 2026-01-17T01:02:03Z >/dev/null
    "$@" SET "system:virtual_clock${TAGS[1]}" 2026-01-16T10:00:00Z >/dev/null
}
# the document of 2026-01-03: 700 from history + b1p3's 300
printf 'doc 2026-01-03 deposit visa 1000\ndocbatch 2026-01-03 b1p3\ndocbatch 2026-01-03 b0p1\n' | seed ||
    bail_out "seeding MongoDB failed"

WANT='{"data":{"2026-01-03":{"deposits":{"visa":10.0},"withdrawals":{}},"2026-01-04":{"deposits":{"visa":0.4},"withdrawals":{}},"2026-01-15":{"deposits":{"visa":4.06},"withdrawals":{"paypal":0.05}}}}'
WANT2=${WANT/\"visa\":4.06/\"visa\":5.06}
Q='/stats?from_date=2026-01-01&to_date=2026-01-31'

# ---- one Redis, 4 partitions ------------------------------------------------------
R=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
"${R[@]}" FLUSHALL >/dev/null
seed_partitions "${R[@]}"
api_start REDIS_PARTITIONS=4 LOG_LEVEL=INFO
http GET "$Q"
is "$HTTP_STATUS" 200 "one Redis, 4 partitions: /stats answers"
is "$HTTP_BODY" "$WANT" "the sum over the partitions' hot and frozen hashes and MongoDB, a listed batch once"
http GET "${Q/stats/stats.csv}"
like "$HTTP_BODY" "2026-01-15,deposit,visa,4.06" "/stats.csv: the same sums"
"${R[@]}" HINCRBY "agg:2026-01-15:deposit${TAGS[1]}" visa 100 >/dev/null
"${R[@]}" INCR "system:hot_version${TAGS[1]}" >/dev/null
http GET "$Q"
is "$HTTP_BODY" "$WANT2" "a change in one partition is in the next answer (the caches key on every partition)"
http GET /freshness
like "$HTTP_BODY" '"newest_event":"2026-01-17T01:02:03Z"' "/freshness: the greatest clock over the partitions"
like "$HTTP_BODY" '"archived_through":"2026-01-05"' "/freshness: the greatest archived-through day"
http GET /ready
is "$HTTP_STATUS" 200 "/ready on a partitioned tier"
is "$("${R[@]}" GET 'system:partitions{txagg}')" 4 "the layout is recorded in Redis (4 partitions)"
api_stop

for n in 2 1; do
    out=$(REDIS_PARTITIONS=$n API_PORT=$(txagg_free_port) timeout 30 "$TXAGG_BIN/api" 2>&1 </dev/null)
    rc=$?
    is "$rc" 2 "an api started with REDIS_PARTITIONS=$n on data of 4 partitions exits 2"
    like "$out" "REDIS_PARTITIONS" "and names REDIS_PARTITIONS in its log"
done

# ---- a real cluster, 4 partitions ---------------------------------------------------
cluster_start "$CDIR" || bail_out "the cluster did not start"
seeds=$(cluster_seeds "$CDIR")
port1=$(cluster_ports "$CDIR" | head -1)
C=(redis-cli -c -h 127.0.0.1 -p "$port1")
seed_partitions "${C[@]}"
slot1=$("$TIERKEYS" 4 | awk '$1 == 1 {print $2}')
owner=$(cluster_owner "$CDIR" "$slot1")
is "$(cluster_cli "$CDIR" "$owner" WAIT 1 5000)" 1 "the replica of partition 1's primary holds its keys"
api_start REDIS_CLUSTER="$seeds" REDIS_PARTITIONS=4 REDIS_TIMEOUT_MS=1000 LOG_LEVEL=INFO
http GET "$Q"
is "$HTTP_STATUS" 200 "cluster, 4 partitions: /stats answers"
is "$HTTP_BODY" "$WANT" "the same exact sum on the cluster"

cluster_kill_primary "$CDIR" "$slot1" >kill.out 2>&1 &
killer=$!
good=0 unavailable=0 bad=0 after=0
deadline=$((SECONDS + 120))
while [ "$SECONDS" -lt "$deadline" ]; do
    done_before=0
    kill -0 "$killer" 2>/dev/null || done_before=1
    http GET "$Q"
    if [ "$HTTP_STATUS" = 200 ]; then
        if [ "$HTTP_BODY" = "$WANT" ]; then good=$((good + 1)); else bad=$((bad + 1)); echo "# wrong 200: $HTTP_BODY"; fi
        [ "$done_before" = 1 ] && after=$((after + 1))
        [ "$after" -ge 3 ] && break
    elif [ "$HTTP_STATUS" = 503 ] && [[ $HTTP_BODY == *Redis* ]]; then
        unavailable=$((unavailable + 1))
        [ "$unavailable" = 1 ] && echo "# first 503: $HTTP_BODY"
    else
        bad=$((bad + 1))
        echo "# unexpected: $HTTP_STATUS $HTTP_BODY"
    fi
done
wait "$killer"
is "$?" 0 "the primary of partition 1 was killed and its replica promoted ($(cat kill.out))"
echo "# $good exact answers, $unavailable 503s during the failover"
is "$bad" 0 "every 200 exact, every other answer a 503 naming Redis"
check "exact answers again after the failover, without a restart" [ "$after" -ge 3 ]
api_stop_checked

done_testing
