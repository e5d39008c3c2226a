#!/usr/bin/env bash
# The whole pipeline under fire: importer, three aggregators, two persistors
# (short interval and lease, RETENTION_DAYS=3) and the api run on a generated
# file spanning far more days than the retention window (out of time order,
# with bad rows), so days are archived while late rows for them keep arriving.
# The importer, aggregators and persistor lease holders are killed with
# SIGKILL in a loop and restarted.  Meanwhile a reader polls /stats over the
# whole range: no amount may ever go down and none may exceed its final value.
# Once everything settles (nothing pending in the group, no archive batch
# pending, nothing eligible) GET /stats over the whole range equals txgen's
# --expect totals exactly, the days up to the retention boundary are in
# MongoDB and the rest hot, nothing frozen is left, and the virtual clock is
# the greatest accepted timestamp.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/system.sh" # with aggregator_e2e.sh, persistor.sh, apitest.sh
sys_setup 'touch stop' # pst_setup; the EXIT trap stops the readers, then sys_teardown

ROWS=$(scaled 100000 20000)
DAYS=$(scaled 100 40)
FROM=2025-09-01
TO=$(sys_date_add "$FROM" $((DAYS - 1)))
SPEED=$((ROWS / 2000)) # ~20 s of replay (sleep_ms averages 10 ms)
IMP_ENV=(IMPORT_SPEED="$SPEED" BATCH_SIZE=250 MAX_BACKLOG=5000)
AGG_ENV=(CLAIM_IDLE_MS=1000 BATCH_SIZE=200)
PST_ENV=(PERSIST_INTERVAL_MS=200 PERSIST_LEASE_MS=1000 MONGODB_TIMEOUT_MS=3000)

"$TXAGG_BIN/txgen" --rows "$ROWS" --days "$DAYS" --start "$FROM" --seed 23 --bad-every 101 --expect exp.txt >in.csv ||
    bail_out "txgen failed"
syscheck truth exp.txt >truth.json
maxts=$(syscheck maxts in.csv)
boundary=$(sys_date_add "${maxts:0:10}" -"$RETENTION_DAYS")
sys_expect_days exp.txt | awk -v b="$boundary" '$1 <= b' >cold_days.txt
sys_expect_days exp.txt | awk -v b="$boundary" '$1 > b' >hot_days.txt
echo "# $ROWS rows over $FROM..$TO, greatest accepted time $maxts, retention boundary $boundary:" \
    "$(wc -l <cold_days.txt) days to archive, $(wc -l <hot_days.txt) to stay hot"

api_start API_THREADS=4
rm -f stop
syscheck watch "$API_URL" "$FROM" "$TO" stop watch.json >watch.out 2>watch.err &
watcher=$!
sys_register "$watcher"

declare -A PST PST_PORT
pst_slot_start() {
    PST_PORT[$1]=$(txagg_free_port)
    sys_pst_start "pst-$1" "${PST_ENV[@]}" METRICS_PORT="${PST_PORT[$1]}"
    PST[$1]=$PST_PID
}
is_leader() {
    [ "$(curl -fsS --max-time 2 "http://127.0.0.1:${PST_PORT[$1]}/metrics" 2>/dev/null |
        sed -n 's/^txagg_persistor_leader //p')" = 1 ]
}
for s in 0 1 2; do sys_agg_start $s "${AGG_ENV[@]}"; done
pst_slot_start 0
pst_slot_start 1
sys_imp_start in.csv "${IMP_ENV[@]}"

# Rounds of 0.4–0.8 s until the import is finished, killing in turn the
# importer, an aggregator replica and the persistor holding the lease (its
# standby takes over once the lease lapses, recovering the batch in flight).
imp_kills=0 agg_kills=0 pst_kills=0 pst_kills_pending=0
RANDOM=29
t0=$SECONDS
for ((round = 0; round < 600; round++)); do
    sleep "0.$((4 + RANDOM % 5))"
    sys_imp_exited && break
    case $((round % 3)) in
    0)
        sys_imp_kill
        imp_kills=$((imp_kills + 1))
        sys_imp_start in.csv "${IMP_ENV[@]}"
        ;;
    1)
        s=$((RANDOM % 3))
        sys_agg_kill $s
        agg_kills=$((agg_kills + 1))
        sys_agg_start $s "${AGG_ENV[@]}"
        ;;
    2)
        s=$((RANDOM % 2))
        is_leader $s || s=$((1 - s))
        [ "$(rcli SCARD system:archive:pending)" = 1 ] && pst_kills_pending=$((pst_kills_pending + 1))
        sys_pst_kill "${PST[$s]}"
        pst_kills=$((pst_kills + 1))
        pst_slot_start $s
        ;;
    esac
done
echo "# $((SECONDS - t0)) s of kills: importer $imp_kills, aggregators $agg_kills," \
    "persistors $pst_kills ($pst_kills_pending with a batch pending)"
is "$SYS_IMP_WHY" "" "the importer is only ever stopped by the kills"
is "$SYS_IMP_RC" 0 "the import finishes (exit 0)"
check "the importer was killed with SIGKILL at least 5 times ($imp_kills)" [ "$imp_kills" -ge 5 ]
check "aggregators were killed with SIGKILL at least 5 times ($agg_kills)" [ "$agg_kills" -ge 5 ]
check "persistors were killed with SIGKILL at least 5 times ($pst_kills)" [ "$pst_kills" -ge 5 ]

t1=$SECONDS
check "the group drains: everything delivered and acknowledged" agg_wait_drained 180
check "the archive settles: no batch pending, nothing eligible" wait_until 240 pst_all_archived
echo "# settled $((SECONDS - t1)) s after the import finished"
touch stop
wait "$watcher"
watch_rc=$?
sys_forget "$watcher"

if syscheck compare "$API_URL" "$FROM" "$TO" truth.json 2>compare.err; then
    ok "GET /stats over the whole range equals txgen's totals exactly"
else
    not_ok "GET /stats over the whole range equals txgen's totals exactly" "$(head -5 compare.err)"
fi
echo "# $(cat watch.out)"
is "$watch_rc" 0 "while everything ran, no amount read from /stats ever went down$(head -3 watch.err | tr '\n' ' ')"
if syscheck bounded watch.json truth.json 2>bounded.err; then
    ok "no amount read from /stats ever exceeded its final value"
else
    not_ok "no amount read from /stats ever exceeded its final value" "$(head -5 bounded.err)"
fi

state=$(probe state)
echo "# $state"
st() { tr ' ' '\n' <<<"$state" | sed -n "s/^$1=//p"; }
check "both tiers are used ($(wc -l <cold_days.txt) cold days, $(wc -l <hot_days.txt) hot)" \
    test -s cold_days.txt -a -s hot_days.txt
is "$(st docs)" "$(wc -l <cold_days.txt)" "every day up to the retention boundary has its MongoDB document"
is "$(st archived_through)" "$(tail -1 cold_days.txt)" "archived_through is the newest archived day"
is "$(rcli SMEMBERS system:tracked_days | sort | tr '\n' ' ')" "$(tr '\n' ' ' <hot_days.txt)" \
    "the days after the boundary, and only they, are hot"
is "$(st pending)/$(st frozen_keys)/$(st batch_records)" "0/0/0" "nothing frozen or pending is left"
is "$(rcli GET system:virtual_clock)" "$maxts" "the clock is the greatest accepted timestamp"
is "$(sys_rejected_counts)" "$(grep '^# bad_' exp.txt)" "each bad row is dead-lettered exactly once, by reason"
ck=$(rcli --scan --pattern 'import:checkpoint:*')
is "$(rcli HGET "$ck" rows)/$(rcli HGET "$ck" done)" "$ROWS/1" "the importer's checkpoint counts every record, done"

archived=$(cat pst-*.log | grep -c 'msg="batch archived"')
recovered=$(cat pst-*.log | grep -c 'msg="recovering archive batch"')
# A batch completed by a holder killed before its log line is in neither
# count; one that a holder began and another finished is in both: count the
# distinct batch ids any holder logged.
batches=$(cat pst-*.log | grep -E 'msg="(batch archived|recovering archive batch)"' |
    sed -n 's/.* id=\([^ ]*\).*/\1/p' | sort -u | wc -l)
echo "# $archived archive batches completed, $recovered finished by recovery, $batches distinct batches logged"
check "days were archived in many batches ($batches)" [ "$batches" -ge 5 ]
if [ "$pst_kills_pending" -gt 0 ]; then
    check "batches a killed persistor left pending were recovered ($recovered)" [ "$recovered" -ge 1 ]
fi

rc=0
for s in 0 1 2; do sys_agg_stop $s || rc=$?; done
for s in 0 1; do pst_stop "${PST[$s]}" || rc=$?; sys_forget "${PST[$s]}"; done
is "$rc" 0 "aggregators and persistors exit 0 on SIGTERM"
api_stop_checked
errors=$(grep -h 'level=error' agg-*.log pst-*.log importer.log | grep -v 'dependency unreachable' | head -3)
is "$errors" "" "no errors logged besides lost connections"
if grep -Eq 'Sanitizer|runtime error:' agg-*.log pst-*.log importer.log; then
    not_ok "no sanitizer report" "$(grep -Eh -m3 'Sanitizer|runtime error:' agg-*.log pst-*.log importer.log)"
else
    ok "no sanitizer report"
fi
done_testing
