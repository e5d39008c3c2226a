#!/usr/bin/env bash
# The importer on a partitioned hot tier on one Redis (REDIS_PARTITIONS=4,
# issue 14 contract §1): one file's records spread over all four partition
# streams in stripes of BATCH_SIZE records (stripe k → partition k mod 4),
# every record exactly once (accepted rows in the partition streams, rejected
# ones in the partition dead-letter streams, totals against txgen's
# expectation, read by tests/lib/partcheck.py); kill -9 again and again, then
# the resume is exact, also with another BATCH_SIZE (the stripe recorded at
# the first import holds); a pipe the same; a second run says "already imported"; --force
# imports it again in every partition; two importers of one file at once
# commit each record once; another REDIS_PARTITIONS (or none) refuses with
# exit 2 and writes nothing.
. "$TXAGG_ROOT/tests/lib/tap.sh"

PC="/usr/bin/python3 $TXAGG_ROOT/tests/lib/partcheck.py"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT
export REDIS_PARTITIONS=4 IMPORT_SPEED=0
ROWS=$(scaled 60000 12000)

# exactly_once EXPECT STRIPE CSV NAME — the partition streams against txgen's expectation
exactly_once() {
    local exp=$1 stripe=$2 csv=$3 name=$4
    $PC stream "$REDIS_PORT" 4 "$stripe" "$csv" >got-all.txt
    grep -v '^#' "$exp" >want.txt
    grep -v '^#' got-all.txt >got.txt
    if diff want.txt got.txt >diff.txt; then ok "$name: totals per day/type/method exact"; else
        not_ok "$name: totals per day/type/method exact" "$(head -5 diff.txt)"; fi
    local good entries distinct
    good=$(sed -n 's/^# good //p' "$exp")
    entries=$(sed -n 's/^# entries //p' got-all.txt)
    distinct=$(sed -n 's/^# distinct_src //p' got-all.txt)
    is "$entries/$distinct" "$good/$good" "$name: every accepted row is in a partition stream once"
    is "$(grep '^# bad_' got-all.txt)" "$(grep '^# bad_' "$exp")" "$name: every rejected row is a dead letter once"
    is "$(sed -n 's/^# misplaced //p' got-all.txt)" 0 "$name: every record in the partition of its stripe"
    is "$(sed -n 's/^# untagged //p' got-all.txt)" 0 "$name: nothing in the untagged stream"
}
# the four checkpoints of the file: "rows/done/stripe" each, in partition order
checkpoints() {
    local k
    for k in $(rcli --scan --pattern 'import:checkpoint:*' | sed 's/.*{p\([0-9]*\):.*/\1 &/' | sort -n | cut -d' ' -f2); do
        printf '%s ' "$(rcli HGET "$k" rows)/$(rcli HGET "$k" done)/$(rcli HGET "$k" stripe)"
    done
}

# --- one file spread over the four partitions ---------------------------------------
rcli FLUSHALL >/dev/null
"$TXAGG_BIN/txgen" --rows 5000 --days 20 --bad-every 53 --seed 41 --expect exp0.txt >small.csv
BATCH_SIZE=100 LOG_LEVEL=INFO "$TXAGG_BIN/importer" small.csv 2>small.log
is "$?" 0 "a file imports with REDIS_PARTITIONS=4"
is "$(rcli GET 'system:partitions{txagg}')" 4 "the number of partitions is recorded"
exactly_once exp0.txt 100 small.csv "one run"
$PC stream "$REDIS_PORT" 4 100 small.csv >spread.txt
is "$(sed -n 's/^# streams //p' spread.txt)" 4 "four partition streams"
# 5000 records in stripes of 100: 50 stripes, 13 + 13 + 12 + 12 records' stripes
is "$(sed -n 's/^# per_partition //p' spread.txt)" "1300,1300,1200,1200" "the records are spread over all four"
for s in $(rcli --scan --pattern 'transactions{p*'); do
    is "$(rcli XINFO GROUPS "$s" | grep -c '^aggregators$')" 1 "the consumer group exists on $s"
done
is "$(rcli --scan --pattern 'import:checkpoint:*' | wc -l)" 4 "one checkpoint per partition"
cks=$(checkpoints)
like "$cks" '^[0-9]+/1/100 [0-9]+/1/100 [0-9]+/1/100 [0-9]+/1/100 $' "every checkpoint done, with the stripe"
like "$cks" '5000/1/100' "the partition holding the last record says rows 5000"

BATCH_SIZE=100 LOG_LEVEL=INFO "$TXAGG_BIN/importer" small.csv 2>again.log
is "$?" 0 "a second run exits 0"
like "$(cat again.log)" "already imported" "a second run says already imported"
exactly_once exp0.txt 100 small.csv "after a second run"

BATCH_SIZE=70 LOG_LEVEL=INFO "$TXAGG_BIN/importer" --force small.csv 2>force.log
is "$?" 0 "--force imports it again"
like "$(cat force.log)" "importing again" "--force is logged"
$PC stream "$REDIS_PORT" 4 0 small.csv >forced.txt
is "$(sed -n 's/^# entries //p' forced.txt)" "$(($(sed -n 's/^# good //p' exp0.txt) * 2))" \
    "--force: every accepted row twice"
like "$(checkpoints)" '^[0-9]+/1/70 [0-9]+/1/70 [0-9]+/1/70 [0-9]+/1/70 $' "--force records its own stripe everywhere"

# --- from a pipe (durable: each partition's batch waits for its primary's replicas) -------
rcli FLUSHALL >/dev/null
cat small.csv | BATCH_SIZE=100 "$TXAGG_BIN/importer" - 2>pipe.log
is "$?" 0 "a pipe imports with REDIS_PARTITIONS=4"
exactly_once exp0.txt 100 small.csv "from a pipe"
BATCH_SIZE=100 LOG_LEVEL=INFO "$TXAGG_BIN/importer" small.csv 2>pipe-again.log
like "$(cat pipe-again.log)" "already imported" "the same file from disk is already imported (one identity)"

# --- the layout is fixed ----------------------------------------------------------------
len_before=$($PC stream "$REDIS_PORT" 4 0 small.csv | sed -n 's/^# entries //p')
out=$(REDIS_PARTITIONS=2 "$TXAGG_BIN/importer" small.csv 2>&1); rc=$?
is "$rc" 2 "REDIS_PARTITIONS=2 on data written with 4: exit 2"
like "$out" "REDIS_PARTITIONS" "the refusal names REDIS_PARTITIONS"
out=$(REDIS_PARTITIONS=1 "$TXAGG_BIN/importer" small.csv 2>&1); rc=$?
is "$rc" 2 "no partitions on data written with 4: exit 2"
is "$($PC stream "$REDIS_PORT" 4 0 small.csv | sed -n 's/^# entries //p')" "$len_before" "a refused start writes nothing"
is "$(rcli EXISTS transactions)" 0 "no untagged stream was created"

# --- kill -9 in a loop, then the rest with another BATCH_SIZE -------------------------
rcli FLUSHALL >/dev/null
"$TXAGG_BIN/txgen" --rows "$ROWS" --days 40 --bad-every 97 --seed 42 --expect exp1.txt >big1.csv
# A small MAX_BACKLOG paces the importer by what this script acknowledges
# (drain, over the four streams), so no run can finish the file at once.
drain() {
    local s
    for s in $(rcli --scan --pattern 'transactions{p*'); do
        rcli XREADGROUP GROUP aggregators t COUNT "$1" STREAMS "$s" '>' | grep -E '^[0-9]+-[0-9]+$' |
            xargs -r redis-cli -p "$REDIS_PORT" XACK "$s" aggregators >/dev/null
    done
}
kills=0 runs=0 rc=1
while [ "$runs" -lt 300 ]; do
    runs=$((runs + 1))
    BATCH_SIZE=300 MAX_BACKLOG=1200 "$TXAGG_BIN/importer" big1.csv 2>>kill.log &
    pid=$!
    pids+=("$pid")
    drain $((ROWS / 160))
    sleep "$(printf 0.%02d $((RANDOM % 15 + 1)))"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null; rc=$?
    [ "$rc" = 0 ] && break
    # past a few kills, the rest with another BATCH_SIZE: the recorded stripe holds
    [ "$kills" -ge 12 ] && break
done
check "the importer really was killed many times ($kills)" test "$kills" -ge 10
like "$(checkpoints)" '[/]0[/]300 ' "mid-file: checkpoints not done, stripe 300 recorded"
BATCH_SIZE=77 LOG_LEVEL=INFO "$TXAGG_BIN/importer" big1.csv 2>resume.log; rc=$?
is "$rc" 0 "the resume with BATCH_SIZE=77 finishes the file"
like "$(cat resume.log)" "resuming after the checkpoint" "it resumes"
like "$(checkpoints)" "^([0-9]+/1/300 ){4}\$" "every checkpoint done, stripe 300 kept"
exactly_once exp1.txt 300 big1.csv "kill -9 loop + resume"

# --- two importers of the same file at once ----------------------------------------------
rcli FLUSHALL >/dev/null
"$TXAGG_BIN/txgen" --rows "$ROWS" --days 30 --bad-every 89 --seed 43 --expect exp2.txt >big2.csv
cp big2.csv big2-copy.csv
BATCH_SIZE=250 "$TXAGG_BIN/importer" big2.csv 2>two-a.log &
a=$!
BATCH_SIZE=100 "$TXAGG_BIN/importer" big2-copy.csv 2>two-b.log &
b=$!
pids+=("$a" "$b")
wait "$a"; rca=$?
wait "$b"; rcb=$?
check "at least one of two concurrent importers succeeds ($rca, $rcb)" test "$rca" = 0 -o "$rcb" = 0
check "the other succeeds or reports the conflict ($rca, $rcb)" test "$rca$rcb" = 00 -o "$rca$rcb" = 01 -o "$rca$rcb" = 10
if [ "$rca$rcb" != 00 ]; then
    like "$(cat two-a.log two-b.log)" "another importer" "the loser says another importer has the file"
fi
stripe=$(rcli HGET "$(rcli --scan --pattern 'import:checkpoint:*' | head -1)" stripe)
like "$(checkpoints)" "^([0-9]+/1/$stripe ){4}\$" "the file is done, one stripe in every partition ($stripe)"
exactly_once exp2.txt "$stripe" big2.csv "two importers (BATCH_SIZE 250 and 100)"

done_testing
