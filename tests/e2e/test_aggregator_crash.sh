#!/usr/bin/env bash
# Exactly once through crashes: ≥100k entries (12k under TXAGG_TEST_SCALE=small)
# published out of time order, with malformed ones mixed in, while three
# aggregator replicas run; replicas are killed with SIGKILL again and again
# and restarted under new names; one is killed for good while it holds
# pending entries, which the others must claim (CLAIM_IDLE_MS=1000).  At the
# end: every total exact to the cent against an independent sum (Python over
# the publisher's dump), each malformed entry dead-lettered exactly once,
# nothing pending, the stream trimmed, survivors exit 0 on SIGTERM.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/aggregator_e2e.sh"

N=$(scaled 120000 12000)
RATE=$((N / 8)) # publishing lasts ~8 s, under the kills
PUB="$TXAGG_TESTBIN/tools/txpub"
[ -x "$PUB" ] || bail_out "txpub not built ($PUB)"

declare -a pid gen
pubpid=
cleanup() {
    local p
    for p in "${pid[@]}" $pubpid; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

start_agg() { # slot
    local s=$1
    gen[$s]=$((${gen[$s]:-0} + 1))
    CONSUMER_NAME="agg-$s-${gen[$s]}" CLAIM_IDLE_MS=1000 BATCH_SIZE=500 LOG_LEVEL=INFO \
        "$TXAGG_BIN/aggregator" 2>>"agg-$s.log" &
    pid[$s]=$!
}

consumer_pending() { agg_consumer_pending "$1"; }

rm -f dump.txt
for s in 0 1 2; do start_agg $s; done
"$PUB" --count "$N" --seed 42 --days 20 --start 2026-01-01 --bad-every 97 --rate "$RATE" --batch 500 \
    --dump dump.txt >pub.out 2>pub.err &
pubpid=$!

freeze_with_pending() { agg_freeze_with_pending "${pid[$1]}" "agg-$1-${gen[$1]}"; }

# Kill slots 0 and 1 again and again while entries flow — while holding
# pending entries (which the next generations must claim) until three such
# kills happened, then every other time, else at a random moment; early on,
# kill slot 2 for good while it holds pending entries.  (Pending kills come
# first so that a slow machine, where the publisher ends sooner in rounds,
# still exercises them.)
kills=0 kills_pending=0 dead_name= dead_pending=0
RANDOM=7
for ((round = 0; round < 40; round++)); do
    sleep "0.$((3 + RANDOM % 5))"
    if [ $round = 4 ]; then
        dead_name="agg-2-${gen[2]}"
        dead_pending=$(freeze_with_pending 2)
        kill -KILL "${pid[2]}"
        wait "${pid[2]}" 2>/dev/null
        unset 'pid[2]'
        continue
    fi
    s=$((RANDOM % 2))
    if { [ $((round % 2)) = 1 ] || [ "$kills_pending" -lt 3 ]; } && [ "$(freeze_with_pending $s)" -gt 0 ]; then
        kills_pending=$((kills_pending + 1))
    fi
    kill -KILL "${pid[$s]}" 2>/dev/null
    wait "${pid[$s]}" 2>/dev/null
    kills=$((kills + 1))
    start_agg $s
    kill -0 "$pubpid" 2>/dev/null || [ $round -lt 10 ] || break
done
wait "$pubpid"
pub_rc=$?
pubpid=
is "$pub_rc" 0 "the publisher published all $N entries"
check "replicas were killed with SIGKILL at least 8 times ($kills)" [ "$kills" -ge 8 ]
check "at least 3 of those kills left pending entries behind ($kills_pending)" [ "$kills_pending" -ge 3 ]
check "the replica killed for good held pending entries ($dead_pending)" [ "$dead_pending" -gt 0 ]

check "the group drains: everything delivered and acknowledged" agg_wait_drained 180
is "$(consumer_pending "$dead_name")" 0 "the dead replica's pending entries were claimed by the others"
like "$(cat agg-0.log agg-1.log)" 'msg="entries claimed from idle consumers"' "survivors logged their claims"

agg_check_dump dump.txt
is "$("${R[@]}" SMEMBERS system:tracked_days | sort | tr '\n' ' ')" "$(agg_oracle_days dump.txt | tr '\n' ' ')" \
    "system:tracked_days holds exactly the days seen"
is "$("${R[@]}" GET system:virtual_clock)" "$(agg_oracle_max_ts dump.txt)" "the clock is the greatest timestamp"
is "$("${R[@]}" XLEN transactions:rejected)" "$(agg_oracle_bad dump.txt)" \
    "each malformed entry is dead-lettered exactly once"

trimmed() { [ "$("${R[@]}" XLEN transactions)" -le 1 ]; }
check "the stream is trimmed behind the group (XLEN <= 1)" wait_until 30 trimmed

for s in 0 1; do
    kill -TERM "${pid[$s]}"
    wait "${pid[$s]}"
    is "$?" 0 "replica $s exits 0 on SIGTERM"
    unset "pid[$s]"
done
unlike_errors=$(grep -h 'level=error' agg-*.log | grep -v 'dependency unreachable' | head -3)
is "$unlike_errors" "" "no errors logged besides lost connections"
done_testing
