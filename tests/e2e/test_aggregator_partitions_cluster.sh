#!/usr/bin/env bash
# The aggregator on a real Redis Cluster (3 primaries + 3 replicas, AOF on,
# tests/lib/cluster.sh), REDIS_PARTITIONS=6: partpub writes ≥30k entries (6k
# under TXAGG_TEST_SCALE=small) into the six partition streams, waiting for
# each shard's replica, then three aggregator replicas consume them.  Mid-run
# the primary serving partition 0 is killed with SIGKILL (its replica is
# promoted: the aggregators must follow without a restart, re-reading every
# state — a promoted replica may lack applies its primary acknowledged), and
# one aggregator replica is stopped holding pending entries and killed (the
# others claim them, per partition).  More entries are published after the
# failover.  At the end: every partition drained, totals summed over the
# partitions exact to the cent against Python over partpub's dump, each
# malformed entry dead-lettered once, the greatest clock right, survivors
# exit 0 on SIGTERM.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/cluster.sh"
. "$TXAGG_ROOT/tests/lib/aggpart.sh"

N=$(scaled 100000 20000)
PARTS=6
PUB="$TXAGG_TESTBIN/tools/partpub"
[ -x "$PUB" ] || bail_out "partpub not built ($PUB)"
declare -a pid
ap_cluster_up aggcluster
export REDIS_PARTITIONS=$PARTS

start_agg() { # slot
    CONSUMER_NAME="cagg-$1" CLAIM_IDLE_MS=3000 BATCH_SIZE=20 LOG_LEVEL=INFO \
        "$TXAGG_BIN/aggregator" 2>>"agg-$1.log" &
    pid[$1]=$!
}

freeze_with_pending() { # slot — as in test_aggregator_partitions.sh
    local try k n
    for ((try = 0; try < 30; try++)); do
        kill -STOP "${pid[$1]}"
        for ((k = 0; k < 5; k++)); do
            n=$(ap_pending_fast "cagg-$1")
            if [ "$n" -gt 0 ]; then
                echo "$n"
                return
            fi
            sleep 0.1
        done
        kill -CONT "${pid[$1]}"
        sleep "0.0$((RANDOM % 5 + 1))"
    done
    echo 0
}

rm -f dump.txt
"$PUB" --count "$N" --seed 11 --days 12 --bad-every 97 --stripe 200 --dump dump.txt >pub1.out 2>pub1.err
is "$?" 0 "entries published into the partitions, each stripe on its shard's replica too"
stream0=$(for p in "${AP_PORTS[@]}"; do ap_streams "$p"; done | grep -F '{p0:' | head -1)
slot0=$(redis-cli -p "${AP_PORTS[0]}" CLUSTER KEYSLOT "$stream0")
check "partition 0's stream is found ($stream0, slot $slot0)" [ -n "$stream0" ] && [ -n "$slot0" ]

# a backlog the failover lands in: small batches keep the replicas busy for a while
ap_pairs_load
owner0=$(cluster_owner "$CL" "$slot0")
for s in 0 1 2; do start_agg $s; done
applying() { [ "$(redis-cli -p "$owner0" XPENDING "$stream0" aggregators | head -1)" -gt 0 ]; }
check "the replicas are applying partition 0" wait_until 60 applying
held=$(freeze_with_pending 2)
check "aggregator replica 2 stopped holding pending entries ($held)" [ "$held" -gt 0 ]
left=$(redis-cli -p "$owner0" XLEN "$stream0")
moved=$(cluster_kill_primary "$CL" "$slot0")
check "partition 0's primary killed with SIGKILL mid-run ($left entries in its stream) and its replica promoted ($moved)" \
    [ -n "$moved" ] && [ "$left" -gt 0 ]
kill -KILL "${pid[2]}"
wait "${pid[2]}" 2>/dev/null
unset 'pid[2]'

# more entries after the failover, into every partition (partition 0 now on the promoted replica)
"$PUB" --count $((N / 3)) --seed 12 --days 12 --bad-every 89 --stripe 200 --dump dump.txt >pub2.out 2>pub2.err
is "$?" 0 "entries published after the failover"

check "every partition drains on the new topology" wait_until 240 ap_drained $PARTS
is "$(ap_pending cagg-2)" 0 "the killed replica's pending entries were claimed, in every partition"

ap_check_dump dump.txt $PARTS
like "$(cat agg-0.log agg-1.log)" 'partition served by another node now|partition redirected' \
    "the survivors followed the failover"

for s in 0 1; do
    kill -TERM "${pid[$s]}"
    wait "${pid[$s]}"
    is "$?" 0 "replica $s exits 0 on SIGTERM"
    unset "pid[$s]"
done
done_testing
