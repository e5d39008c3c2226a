#!/usr/bin/env bash
# Hand-offs 1 and 2 together, with the real importer: a generated file of
# ≥100k rows (20k under TXAGG_TEST_SCALE=small) out of time order, with bad
# rows, is imported while three aggregator replicas run; the importer AND the
# aggregators are killed with SIGKILL again and again and restarted (the
# importer resumes from its checkpoint, aggregators come back under new
# consumer names), and a fourth replica is killed for good while it holds
# pending entries, which the others must claim.  At the end every daily hash
# is exact to the cent against txgen's --expect (its own integers, not our
# code), each bad row is a dead letter exactly once (by reason), nothing is
# pending, the stream is trimmed and the importer's checkpoint is done.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/system.sh" # with aggregator_e2e.sh
trap sys_cleanup EXIT

ROWS=$(scaled 120000 20000)
# txgen's sleep_ms averages 10 ms, so IMPORT_SPEED=ROWS/2000 replays the
# file in ~20 s whatever the machine's speed: the kills below land while it
# imports.  MAX_BACKLOG bounds what piles up while aggregators are down.
SPEED=$((ROWS / 2000))
IMP_ENV=(IMPORT_SPEED="$SPEED" BATCH_SIZE=250 MAX_BACKLOG=5000)
AGG_ENV=(CLAIM_IDLE_MS=1000 BATCH_SIZE=200)

"$TXAGG_BIN/txgen" --rows "$ROWS" --days 60 --seed 31 --bad-every 89 --expect exp.txt >in.csv ||
    bail_out "txgen failed"

for s in 0 1 2 3; do sys_agg_start $s "${AGG_ENV[@]}"; done
sys_imp_start in.csv "${IMP_ENV[@]}"

# Rounds of 0.3–0.7 s until the import is finished: each round kills one
# aggregator replica (every other time while it holds pending entries, which
# the next generations must claim), and the importer.
# From round 3 on, replica 3 is killed for good as soon as it is caught
# holding pending entries.
imp_kills=0 agg_kills=0 kills_pending=0 dead_name= dead_pending=0
RANDOM=17
t0=$SECONDS
for ((round = 0; round < 400; round++)); do
    sleep "0.$((3 + RANDOM % 5))"
    sys_imp_exited && break
    if [ -z "$dead_name" ] && [ $round -ge 3 ]; then
        dead_pending=$(sys_agg_freeze_with_pending 3)
        if [ "$dead_pending" -gt 0 ]; then
            dead_name=${SYS_AGG_NAME[3]}
            sys_agg_kill 3
            continue
        fi
    fi
    s=$((RANDOM % 3))
    if [ $((round % 4)) -ge 2 ] && kill -0 "$SYS_IMP" 2>/dev/null && [ "$(sys_agg_freeze_with_pending $s)" -gt 0 ]; then
        kills_pending=$((kills_pending + 1))
    fi
    sys_agg_kill $s
    agg_kills=$((agg_kills + 1))
    sys_agg_start $s "${AGG_ENV[@]}"
    sys_imp_kill
    imp_kills=$((imp_kills + 1))
    sys_imp_start in.csv "${IMP_ENV[@]}"
done
is "$SYS_IMP_WHY" "" "the importer is only ever stopped by the kills"
is "$SYS_IMP_RC" 0 "the import finishes (exit 0) after $imp_kills kill -9 of the importer"
check "the importer was killed with SIGKILL at least 10 times ($imp_kills)" [ "$imp_kills" -ge 10 ]
resumed=$(grep -c 'msg="resuming after the checkpoint"' importer.log)
check "restarted importers resumed from the checkpoint ($resumed times)" [ "$resumed" -ge $((imp_kills / 2)) ]
check "aggregator replicas were killed with SIGKILL at least 10 times ($agg_kills)" [ "$agg_kills" -ge 10 ]
check "at least 3 of those kills left pending entries behind ($kills_pending)" [ "$kills_pending" -ge 3 ]
check "a replica was killed for good while holding pending entries ($dead_pending)" test -n "$dead_name" 
echo "# $((SECONDS - t0)) s of kills: $imp_kills importer kills ($resumed resumes), $agg_kills aggregator kills" \
    "($kills_pending holding pending entries), $dead_pending entries pending in the replica killed for good"

ck=$("${R[@]}" --scan --pattern 'import:checkpoint:*')
is "$("${R[@]}" HGET "$ck" rows)/$("${R[@]}" HGET "$ck" done)" "$ROWS/1" "the importer's checkpoint counts every record, done"
check "the group drains: everything delivered and acknowledged" agg_wait_drained 180
is "$(agg_consumer_pending "${dead_name:-agg-3-1}")" 0 "the dead replica's pending entries were claimed by the others"
like "$(cat agg-*.log)" 'msg="entries claimed from idle consumers"' "survivors logged their claims"

sys_check_exact exp.txt 500
lines=$(syscheck rejected "$REDIS_PORT" | cut -f2,3 | sort | uniq -d | wc -l)
is "$lines" 0 "no source line is dead-lettered twice"
is "$("${R[@]}" SMEMBERS system:tracked_days | sort | tr '\n' ' ')" "$(sys_expect_days exp.txt | tr '\n' ' ')" \
    "system:tracked_days holds exactly the days of accepted rows"
is "$("${R[@]}" GET system:virtual_clock)" "$(syscheck maxts in.csv)" "the clock is the greatest accepted timestamp"
is "$("${R[@]}" XPENDING transactions aggregators | head -1)" 0 "nothing is pending in the group"
trimmed() { [ "$("${R[@]}" XLEN transactions)" -le 1 ]; }
check "the stream is trimmed behind the group (XLEN <= 1)" wait_until 30 trimmed

# Running the finished file again publishes nothing.
len_before=$("${R[@]}" XINFO STREAM transactions | awk 'want {print; exit} $0 == "entries-added" {want = 1}')
env "${IMP_ENV[@]}" LOG_LEVEL=INFO "$TXAGG_BIN/importer" in.csv 2>again.log
is "$?" 0 "re-running the finished file exits 0"
like "$(cat again.log)" 'already imported' "and says it was already imported"
is "$("${R[@]}" XINFO STREAM transactions | awk 'want {print; exit} $0 == "entries-added" {want = 1}')" "$len_before" \
    "and adds nothing to the stream"

for s in 0 1 2; do
    sys_agg_stop $s
    is "$?" 0 "replica $s exits 0 on SIGTERM"
done
errors=$(grep -h 'level=error' agg-*.log importer.log | grep -v 'dependency unreachable' | head -3)
is "$errors" "" "no errors logged besides lost connections"
if grep -Eq 'Sanitizer|runtime error:' agg-*.log importer.log; then
    not_ok "no sanitizer report" "$(grep -Eh -m3 'Sanitizer|runtime error:' agg-*.log importer.log)"
else
    ok "no sanitizer report"
fi
done_testing
