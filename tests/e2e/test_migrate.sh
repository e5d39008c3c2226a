#!/usr/bin/env bash
# Switching from the Python service with `persistor migrate`, end to end on
# the real binaries: its data written in its exact formats (tests/tools/pyseed:
# documents of doubles with last_updated, HINCRBYFLOAT hashes, a naive clock,
# a day in both tiers, stream entries in its format acknowledged, pending
# under its consumer and undelivered).  --check writes nothing; a run killed
# -9 in the middle leaves every document whole in one form or the other and
# the rerun ends exact; 12.3456 is refused with its document and field named
# and that document left untouched; a second run changes nothing; then
# txagg's aggregator (claiming the Python consumer's pending entries), api
# and persistor answer /stats with exactly the cents the seeding generated,
# for every day.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"
pst_setup # a directory of its own; RETENTION_DAYS=3; EXIT trap pst_cleanup
. "$TXAGG_ROOT/tests/lib/apitest.sh"
. "$TXAGG_ROOT/tests/lib/aggregator_e2e.sh"

PY="$TXAGG_TESTBIN/tools/pyseed"
NDOCS=$(scaled 200 100)
AGG=
cleanup() {
    [ -n "$AGG" ] && kill -9 "$AGG" 2>/dev/null
    api_stop
    pst_cleanup
}
trap cleanup EXIT

migrate() { "$TXAGG_BIN/persistor" migrate "$@" 2>>migrate.log; }
info() { sed -n "s/^$1=//p" py.info; }
state() { "$PY" state | tr ' ' '\n' | sed -n "s/^$1=//p"; }
seed() {
    "$PY" reset && "$PY" seed py "$NDOCS" || bail_out "seeding failed"
    BAD=$(info bad_date)
    "$PY" doc "$BAD" >bad.before
}

# Every document wholly in one form: txagg's (batches, int64 amounts, no
# last_updated) or the Python service's (doubles, last_updated).  Prints
# "txagg=N python=N mixed=N".
forms() {
    "$PY" dump | python3 -c '
import json, sys
n = {"txagg": 0, "python": 0, "mixed": 0}
for line in sys.stdin:
    if not line.startswith("doc "):
        continue
    d = json.loads(line[4:])
    kinds = {k for side in ("deposits", "withdrawals") for v in d.get(side, {}).values() for k in v}
    if "batches" in d and kinds <= {"$numberLong"} and "last_updated" not in d:
        n["txagg"] += 1
    elif "batches" not in d and kinds <= {"$numberDouble"} and "last_updated" in d:
        n["python"] += 1
    else:
        n["mixed"] += 1
print(" ".join("%s=%d" % kv for kv in n.items()))'
}

seed
"$PY" dump >d0
like "$(cat d0)" 'agg:2026-01-2[0-9]:deposit hash .*=[0-9]+\.[0-9]{5,}' "the hashes hold HINCRBYFLOAT's long decimals"
like "$(grep '^system:virtual_clock' d0)" 'string 2026-01-31T23:59:58\.123456$' "the clock is naive"

# --check: the report, and not one byte written
out=$(migrate --check)
is "$?" 1 "--check exits 1 when something would be refused"
like "$out" "refused: MongoDB document date=$BAD _id=[0-9a-f]+: field deposits.visa = 12.3456 is not within 0.001 cent of a whole cent" \
    "--check names the document and field of 12.3456"
like "$out" "$((NDOCS - 1)) to convert" "--check counts the documents it would convert"
like "$out" "$(info hashes) to convert" "--check counts the hashes it would convert"
like "$out" 'carried over: 15 pending and 25 undelivered \(25 in the Python service.s format' "--check counts the stream entries carried over"
"$PY" dump >d1
check "--check wrote nothing" cmp -s d0 d1

# kill -9 in the middle of the documents: documents go by date and the one
# holding 12.3456 is the middle one, whose refusal is printed (and flushed)
# the moment it is judged; the kill follows within a few ms, while FerretDB
# takes a few ms per update for the other half.  Should a run still finish
# first, seed afresh and try again.
refusal_printed() {
    local i
    for ((i = 0; i < 24000; i++)); do
        [[ -s kill.out && $(<kill.out) == *"refused: MongoDB"* ]] && return 0
        sleep 0.005
    done
    return 1
}
landed=0
for attempt in 1 2 3 4 5; do
    [ "$attempt" = 1 ] || seed
    "$TXAGG_BIN/persistor" migrate >kill.out 2>>migrate.log &
    pid=$!
    refusal_printed
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    n=$(state txagg_docs)
    echo "# attempt $attempt: killed after $n of $NDOCS documents"
    if [ "$n" -ge 1 ] && [ "$n" -lt $((NDOCS - 1)) ]; then
        landed=1
        break
    fi
done
check "a kill -9 landed in the middle of the documents" [ "$landed" = 1 ]
like "$(forms)" '^txagg=[1-9][0-9]* python=[1-9][0-9]* mixed=0$' "after the kill every document is whole, in one form or the other"
is "$(state plan_left)" 0 "the hashes were all converted before the documents"

# the rerun finishes; the refused document stays as it was
out=$(migrate)
is "$?" 1 "the rerun exits 1: a value is refused"
printf '%s\n' "$out" | sed 's/^/# /'
like "$out" "refused: MongoDB document date=$BAD _id=[0-9a-f]+: field deposits.visa = 12.3456 is not within 0.001 cent of a whole cent" \
    "12.3456 is refused with its document and field named"
like "$out" 'refused:          1$' "nothing else is refused"
"$PY" doc "$BAD" >bad.after
check "the refused document is untouched" cmp -s bad.before bad.after
is "$(forms)" "txagg=$((NDOCS - 1)) python=1 mixed=0" "every other document is in txagg's form"
like "$out" "redis cents:      before $(info hot_cents) cents .* after $(info hot_cents) cents .*\(equal\)" \
    "Redis holds exactly the seeded cents, before and after"
like "$out" 'mongodb cents:    before ([0-9]+) cents .*, after \1 cents .*\(equal\)' "MongoDB's cents are equal before and after"

# the api on the converted tiers: the cold days exact, the refused day a named 500
api_start
after_bad=$(date -u -d "$BAD + 1 day" +%F)
check "/stats of converted cold days is exact" apicheck compare "$API_URL" "$after_bad" 2026-01-21 py.truth.json
http GET "/stats?from_date=$BAD&to_date=$BAD"
is "$HTTP_STATUS" 500 "/stats over the refused document answers 500"
like "$HTTP_BODY" "$BAD\.deposits\.visa" "... naming its date and field"

# the operator repairs the value; the rerun converts it and ends exact
"$PY" fix "$BAD" deposits visa 12.35
migrate >summary.txt
is "$?" 0 "after the repair the migration exits 0"
sed 's/^/# /' summary.txt
like "$(cat summary.txt)" "mongodb docs:     $NDOCS seen: 1 converted, $((NDOCS - 1)) already txagg's" "it converts the repaired document"
like "$(cat summary.txt)" "mongodb cents:    before $(info cold_cents) cents .* after $(info cold_cents) cents .*\(equal\)" \
    "MongoDB holds exactly the seeded cents"
like "$(cat summary.txt)" 'refused:          0$' "nothing refused"
is "$(forms)" "txagg=$NDOCS python=0 mixed=0" "every document is in txagg's form"
is "$(rcli GET system:virtual_clock)" "2026-01-31T23:59:58Z" "the clock is in txagg's form"
is "$(rcli GET system:archived_through)" "2026-01-23" "archived_through is the newest document"

"$PY" dump >d2
out=$(migrate)
is "$?" 0 "a second run exits 0"
like "$out" "redis hashes:     0 converted \(0 fields\), $(info hashes) already txagg's" "a second run converts no hash"
like "$out" "mongodb docs:     $NDOCS seen: 0 converted, $NDOCS already txagg's" "a second run converts no document"
"$PY" dump >d3
check "a second run changes nothing" cmp -s d2 d3

# txagg starts: the aggregator reads the undelivered entries and claims the
# Python consumer's pending ones; /stats is exact for every day
env LOG_LEVEL=INFO CLAIM_IDLE_MS=1000 CONSUMER_NAME=txagg-1 "$TXAGG_BIN/aggregator" 2>agg.log &
AGG=$!
check "the aggregator drains the stream" agg_wait_drained 120
is "$(rcli XLEN transactions:rejected)" 2 "the two entries txagg's rules reject are dead letters"
like "$(rcli XRANGE transactions:rejected - +)" 'amount: not digits' "... one for 12.3456 dollars"
like "$(rcli XRANGE transactions:rejected - +)" 'type: not deposit or withdrawal' "... one for the type refund"
check "/stats is exact for every day: cold, hot, both tiers, stream" \
    apicheck compare "$API_URL" "$(info first_day)" "$(info last_day)" py.truth.json

# the persistor archives the converted hot days into the converted documents
pst_start svc PERSIST_INTERVAL_MS=200
# The tracked days first, then the pending set: a freeze moves days from the
# one to the other in one step, so read the other way round a freeze falling
# between the two reads would look like "archived" (it did, under load).
hot_archived() {
    [ -z "$(rcli SMEMBERS system:tracked_days | awk '$1 <= "2026-01-29"')" ] || return 1
    [ "$(rcli SCARD system:archive:pending)" = 0 ]
}
check "the persistor archives the old hot days" wait_until 120 hot_archived
like "$("$PY" doc 2026-01-22)" '"batches" : \[ "[0-9]{12}-f1" \]' "a day in both tiers got its hot part by one batch"
check "/stats is still exact for every day" \
    apicheck compare "$API_URL" "$(info first_day)" "$(info last_day)" py.truth.json
pst_stop "$PST_PID"
is "$?" 0 "the persistor exits 0"
kill -TERM "$AGG"
wait "$AGG"
is "$?" 0 "the aggregator exits 0"
AGG=
api_stop_checked
done_testing
