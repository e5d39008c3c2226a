#!/usr/bin/env bash
# Exact at every instant while the REAL persistor migrates: many days are
# ingested through the real importer and aggregator (txgen --expect gives the
# truth), then, in read windows, hundreds of back-to-back full-range /stats
# reads run while a persistor (short interval) archives them — every answer
# must be exactly the known total, which is constant while no rows arrive.
# Between windows the persistor is stopped and late rows for days already in
# MongoDB go through the pipeline again (no reads meanwhile); the next window
# reads while the persistor merges them into the existing documents, against
# the new total.  One window kills the persistor with SIGKILL mid-batch and
# reads on while its successor recovers the batch.  Each window must have
# seen batches frozen and cleaned while it read (archive version, pending
# batches sampled around every read, the persistor's log).
# The api caches cold documents per archive version, so once one full-range
# read ran at a version, later ones are answered from that cache.  A second
# api process therefore serves a second reader that walks the range 5 days at
# a time: ranges not yet read at the current version, fetched from MongoDB
# while the persistor is between its guarded upserts (some days' documents
# already list the batch whose frozen hashes still exist, others not).
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/system.sh" # with aggregator_e2e.sh, persistor.sh, apitest.sh
sys_setup 'touch stop' # pst_setup; the EXIT trap stops the readers, then sys_teardown

DAYS=$(scaled 150 60)
ROWS=$(scaled 30000 6000)
LATE_ROUNDS=$(scaled 3 2)
LATE_DAYS=$(scaled 100 40)
MIN_READS=$(scaled 300 100)
MIN_WALKS=$(scaled 100 30)
FROM=2025-06-01
TO=$(sys_date_add "$FROM" $((DAYS - 1)))
IMP_ENV=(IMPORT_SPEED=0)
PST_ENV=(PERSIST_INTERVAL_MS=100 PERSIST_LEASE_MS=1500 MONGODB_TIMEOUT_MS=3000)

# import FILE — through the real importer and aggregator, until applied.
import_file() {
    env "${IMP_ENV[@]}" LOG_LEVEL=INFO "$TXAGG_BIN/importer" "$1" 2>>importer.log &&
        agg_wait_drained 120
}

sys_agg_start 0
api_start API_THREADS=2
WALK_PID=$API_PID WALK_URL=$API_URL
sys_register "$WALK_PID"
api_start API_THREADS=4
"$TXAGG_BIN/txgen" --rows "$ROWS" --days "$DAYS" --start "$FROM" --seed 41 --bad-every 97 --expect base.exp >base.csv ||
    bail_out "txgen failed"
check "the base file ($ROWS rows over $FROM..$TO) is imported and applied" import_file base.csv
expects=(base.exp)
syscheck truth "${expects[@]}" >truth.json
if syscheck compare "$API_URL" "$FROM" "$TO" truth.json 2>compare.err; then
    ok "before any archival /stats is exactly txgen's totals (all hot)"
else
    not_ok "before any archival /stats is exactly txgen's totals (all hot)" "$(head -5 compare.err)"
fi
is "$(rcli GET system:archived_through)" "" "nothing is archived yet"

version() { rcli GET system:archive_version; }
pending_batch() { [ "$(rcli SCARD system:archive:pending)" = 1 ]; }
reads_started() { [ "$(cat progress 2>/dev/null || echo 0)" -ge 5 ] && [ "$(cat walk.progress 2>/dev/null || echo 0)" -ge 5 ]; }
walk_misses() { curl -s "$WALK_URL/metrics" | sed -n 's/^txagg_api_cold_cache_misses_total //p'; }
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }
total_reads=0 total_walks=0 total_batches=0 total_raced=0 total_in_batch=0 total_walk_in_batch=0

# read_window NAME [kill] — reads start first; then a persistor archives
# whatever is eligible (with "kill": it is SIGKILLed while a batch is pending
# and a successor recovers it); the reads go on until the archive settled
# and at least MIN_READS were exact.
read_window() {
    local name=$1 mode=${2:-} v0 v1 m0 m1 had_docs out wout rc wrc batches raced in_batch ok_reads walks pst
    rm -f stop progress walk.progress
    syscheck reads "$API_URL" "$FROM" "$TO" truth.json stop "$MIN_READS" progress "$REDIS_PORT" \
        >"$name.reads" 2>"$name.err" &
    local reader=$!
    sys_register $reader
    syscheck reads "$WALK_URL" "$FROM" "$TO" truth.json stop "$MIN_WALKS" walk.progress "$REDIS_PORT" 5 \
        >"$name.walk" 2>"$name.walk.err" &
    local walker=$!
    sys_register $walker
    wait_until 60 reads_started || not_ok "$name: the reads start"
    v0=$(version)
    m0=$(walk_misses)
    had_docs=$(rcli GET system:archived_through)
    sys_pst_start "$name" "${PST_ENV[@]}"
    pst=$PST_PID
    if [ "$mode" = kill ]; then
        if wait_until 60 pending_batch; then
            sleep 0.$((RANDOM % 3 + 1))
            sys_pst_kill "$pst"
            echo "# $name: persistor killed with batch $(rcli SMEMBERS system:archive:pending) pending"
            sys_pst_start "$name" "${PST_ENV[@]}"
            pst=$PST_PID
        else
            not_ok "$name: a batch is pending to kill the persistor in"
        fi
    fi
    check "$name: the persistor archives everything eligible while the reads run" wait_until 180 pst_all_archived
    v1=$(version)
    m1=$(walk_misses)
    touch stop
    wait $reader
    rc=$?
    sys_forget $reader
    wait $walker
    wrc=$?
    sys_forget $walker
    pst_stop "$pst"
    is "$?" 0 "$name: the persistor exits 0 on SIGTERM"
    sys_forget "$pst"
    out=$(cat "$name.reads")
    wout=$(cat "$name.walk")
    batches=$(grep -c 'msg="batch archived"' "$name.log")
    echo "# $name: full range: $out"
    echo "# $name: 5-day walk: $wout, $((m1 - m0)) of them read from MongoDB (cold-cache misses)"
    echo "# $name: archive version ${v0:-0} -> $v1, $batches batches archived"
    cat "$name.err" "$name.walk.err" | head -5 | sed 's/^/# /'
    is "$rc" 0 "$name: every full-range read while the persistor migrated was exact"
    is "$wrc" 0 "$name: every 5-day read while the persistor migrated was exact"
    ok_reads=$(field reads_ok "$out")
    raced=$(field reads_raced "$out")
    in_batch=$(field reads_in_batch "$out")
    walks=$(field reads_ok "$wout")
    check "$name: at least $MIN_READS full-range reads were exact ($ok_reads)" test "${ok_reads:-0}" -ge "$MIN_READS"
    check "$name: batches were frozen and cleaned during the reads (version +$((v1 - ${v0:-0})), $batches batches)" \
        test $((v1 - ${v0:-0})) -ge 2 -a "$batches" -ge 1
    check "$name: full-range reads ran while a batch was in flight ($in_batch; $raced straddled a freeze or clean-up)" \
        test "${in_batch:-0}" -ge 1
    check "$name: 5-day reads ran while a batch was in flight ($(field reads_in_batch "$wout"))" \
        test "$(field reads_in_batch "$wout")" -ge 1
    # Once documents exist, a batch merges into them: 5-day reads not yet
    # cached at the batch's version go to MongoDB while it is written.
    if [ -n "$had_docs" ]; then
        check "$name: 5-day reads went to MongoDB in the window ($((m1 - m0)) cold-cache misses)" \
            test $((m1 - m0)) -ge 2
    fi
    total_reads=$((total_reads + ${ok_reads:-0}))
    total_walks=$((total_walks + ${walks:-0}))
    total_walk_in_batch=$((total_walk_in_batch + $(field reads_in_batch "$wout")))
    total_batches=$((total_batches + batches))
    total_raced=$((total_raced + ${raced:-0}))
    total_in_batch=$((total_in_batch + ${in_batch:-0}))
}

read_window window0
cold=$(rcli GET system:archived_through)
check "most days went to MongoDB (archived through $cold)" test -n "$cold"

LATE_FROM=$(sys_date_add "$FROM" 5)
for ((round = 1; round <= LATE_ROUNDS; round++)); do
    # Late rows for days already archived: re-created hot, merged on the next window.
    "$TXAGG_BIN/txgen" --rows $((ROWS / 5)) --days "$LATE_DAYS" --start "$LATE_FROM" --seed $((100 + round)) \
        --bad-every 53 --expect "late$round.exp" >"late$round.csv" || bail_out "txgen failed"
    last_late=$(sys_expect_days "late$round.exp" | tail -1)
    check "round $round: late rows are for archived days only ($last_late <= $cold)" test "$last_late" \< "$cold" -o "$last_late" = "$cold"
    check "round $round: the late rows are imported and applied" import_file "late$round.csv"
    expects+=("late$round.exp")
    syscheck truth "${expects[@]}" >truth.json
    late_hot=$(rcli SCARD system:tracked_days)
    check "round $round: the late days are hot again ($late_hot tracked)" test "$late_hot" -gt 3
    if ((round == 2)); then read_window "window$round" kill; else read_window "window$round"; fi
done

echo "# $((LATE_ROUNDS + 1)) windows, $total_batches archive batches during them: $total_reads exact full-range reads" \
    "($total_in_batch inside a pending batch, $total_raced raced a freeze or clean-up), $total_walks exact 5-day reads" \
    "($total_walk_in_batch inside a pending batch)"
if syscheck compare "$API_URL" "$FROM" "$TO" truth.json 2>compare.err; then
    ok "at the end /stats is exactly the sum of every file's txgen totals"
else
    not_ok "at the end /stats is exactly the sum of every file's txgen totals" "$(head -5 compare.err)"
fi
is "$(probe_state frozen_keys)/$(probe_state pending)" "0/0" "nothing frozen or pending is left"
recovered=$(grep -c 'msg="recovering archive batch"' window2.log)
check "the killed persistor's batch was recovered by its successor ($recovered)" test "$recovered" -ge 1
metrics=$(curl -s "$API_URL/metrics")
echo "$metrics" | grep -E '^txagg_api_(consistency|cold_cache_(hits|misses)|mongo_reads)' | sed 's/^/# /'
like "$metrics" 'txagg_api_cold_cache_misses_total [1-9]' "reads went to MongoDB as the archive version moved"
sys_agg_stop 0
is "$?" 0 "the aggregator exits 0 on SIGTERM"
api_stop_checked
API_PID=$WALK_PID
sys_forget "$WALK_PID"
api_stop_checked
done_testing
