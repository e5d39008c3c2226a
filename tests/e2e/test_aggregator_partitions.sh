#!/usr/bin/env bash
# The aggregator on a partitioned hot tier, one Redis, REDIS_PARTITIONS=4
# (hand-off 2 of the partition contract): partpub writes ≥40k entries (8k
# under TXAGG_TEST_SCALE=small) straight into the four partition streams
# transactions{pI:K} in stripes, with malformed ones mixed in, while three
# aggregator replicas run; one replica is stopped while it holds pending
# entries and killed with SIGKILL, and the others must claim them
# (CLAIM_IDLE_MS=1000) in the partitions they were read from.  At the end: every partition drained, the totals
# summed over the partitions' agg hashes exact to the cent against an
# independent sum (Python over partpub's dump), every partition holding
# hashes, each malformed entry dead-lettered once, the greatest partition
# clock = the greatest timestamp, nothing left under untagged names, a
# replica started with another REDIS_PARTITIONS refused (exit 2, naming the
# variable), an idle replica not spinning, survivors exit 0 on SIGTERM.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/aggpart.sh"

N=$(scaled 40000 8000)
PARTS=4
PUB="$TXAGG_TESTBIN/tools/partpub"
[ -x "$PUB" ] || bail_out "partpub not built ($PUB)"
AP_PORTS=("$REDIS_PORT")
export REDIS_PARTITIONS=$PARTS

declare -a pid
pubpid=
cleanup() {
    local p
    for p in "${pid[@]}" $pubpid; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

start_agg() { # slot
    CONSUMER_NAME="pagg-$1" CLAIM_IDLE_MS=1000 BATCH_SIZE=200 LOG_LEVEL=INFO \
        "$TXAGG_BIN/aggregator" 2>>"agg-$1.log" &
    pid[$1]=$!
}

# SIGSTOP a replica while it holds pending entries in any partition; prints
# how many (0: not caught, and the replica left running).  A backlog is
# drained far too fast to catch with redis-cli, so: stop the idle replica —
# most of its idle time it sits in a blocking read on one partition — and
# publish one stripe into every partition at once: Redis hands the blocked
# read its partition's stripe, which stays pending while it is stopped.
freeze_with_pending() { # slot
    local try n
    for ((try = 0; try < 20; try++)); do
        kill -STOP "${pid[$1]}"
        "$PUB" --count $((PARTS * 50)) --seed $((100 + try)) --stripe 50 --dump dump.txt >/dev/null 2>>pub0.err
        n=$(ap_pending "pagg-$1")
        if [ "$n" -gt 0 ]; then
            echo "$n"
            return
        fi
        kill -CONT "${pid[$1]}"
        sleep 0.3
    done
    echo 0
}

rm -f dump.txt
# the first half before any replica runs; replica 2 alone drains it, then is
# stopped holding entries; the others start and the second half is
# published while they run
"$PUB" --count $((N / 2)) --seed 7 --days 15 --bad-every 97 --stripe 300 --dump dump.txt >pub1.out 2>pub1.err
is "$?" 0 "the first half is published into the partitions"
start_agg 2
check "replica 2 alone drains the first half" wait_until 120 ap_drained $PARTS
held=$(freeze_with_pending 2)
check "replica 2 was stopped holding pending entries ($held)" [ "$held" -gt 0 ]
for s in 0 1; do start_agg $s; done
"$PUB" --count $((N / 2)) --seed 8 --days 15 --bad-every 89 --stripe 300 --rate $((N / 12)) --dump dump.txt \
    >pub2.out 2>pub2.err &
pubpid=$!
kill -KILL "${pid[2]}"
wait "${pid[2]}" 2>/dev/null
unset 'pid[2]'

wait "$pubpid"
is "$?" 0 "the second half is published while the replicas run"
pubpid=

check "every partition drains: everything delivered and acknowledged" wait_until 180 ap_drained $PARTS
is "$(ap_pending pagg-2)" 0 "the killed replica's pending entries were claimed by the others, in every partition"
like "$(cat agg-0.log agg-1.log)" 'msg="entries claimed from idle consumers"' "survivors logged their claims"

ap_check_dump dump.txt $PARTS
is "$(redis-cli -p "$REDIS_PORT" --scan --pattern 'agg:*' | grep -vc '}$')" 0 "no hash under an untagged name"
is "$(redis-cli -p "$REDIS_PORT" EXISTS transactions system:virtual_clock system:tracked_days)" 0 \
    "no untagged stream, clock or tracked set"

# idle: every partition empty, the replicas block in turn instead of polling
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
t0=$(cpu_ticks "${pid[0]}")
sleep 3
used=$(($(cpu_ticks "${pid[0]}") - t0))
check "an idle replica does not spin: $used CPU ticks in 3 s (under 100, i.e. a third of one core)" [ "$used" -lt 100 ]

REDIS_PARTITIONS=8 CONSUMER_NAME=wrong timeout 20 "$TXAGG_BIN/aggregator" 2>wrong.log
is "$?" 2 "a replica started with REDIS_PARTITIONS=8 exits 2"
like "$(cat wrong.log)" 'REDIS_PARTITIONS=8' "its message names the variable"

for s in 0 1; do
    kill -TERM "${pid[$s]}"
    wait "${pid[$s]}"
    is "$?" 0 "replica $s exits 0 on SIGTERM"
    unset "pid[$s]"
done
errors=$(grep -h 'level=error' agg-*.log | head -3)
is "$errors" "" "no errors logged"
done_testing
