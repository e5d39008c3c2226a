#!/usr/bin/env bash
# Hand-off 1 under fire: kill -9 of the importer again and again, its Redis
# connection killed again and again while it imports, and two importers on the
# same file at once — every accepted row ends up in the stream exactly once
# and every rejected row in the dead-letter stream exactly once, with the
# totals txgen computed from the integers it generated.
. "$TXAGG_ROOT/tests/lib/tap.sh"

ORACLE="python3 $TXAGG_ROOT/tests/e2e/importer_oracle.py"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT
ROWS=200000
[ "${TXAGG_TEST_SCALE:-}" = small ] && ROWS=20000

# exactly_once EXPECT NAME — the stream against txgen's expectation
exactly_once() {
    local exp=$1 name=$2
    $ORACLE stream "$REDIS_PORT" >stream.txt
    grep -v '^#' "$exp" >want.txt
    grep -v '^#' stream.txt >got.txt
    if diff want.txt got.txt >diff.txt; then ok "$name: totals per day/type/method exact"; else
        not_ok "$name: totals per day/type/method exact" "$(head -5 diff.txt)"; fi
    local good entries distinct
    good=$(sed -n 's/^# good //p' "$exp")
    entries=$(sed -n 's/^# entries //p' stream.txt)
    distinct=$(sed -n 's/^# distinct_src //p' stream.txt)
    is "$entries/$distinct" "$good/$good" "$name: every accepted row is in the stream once"
    is "$(grep '^# bad_' stream.txt)" "$(grep '^# bad_' "$exp")" "$name: every rejected row is a dead letter once"
}

# --- kill -9 in a loop ------------------------------------------------------------
rcli FLUSHALL >/dev/null
"$TXAGG_BIN/txgen" --rows "$ROWS" --days 60 --bad-every 97 --seed 5 --expect exp1.txt >big1.csv
ckrows() { local k; k=$(rcli --scan --pattern 'import:checkpoint:*' | head -1); [ -n "$k" ] && rcli HGET "$k" rows || echo 0; }
# Each run is killed a random moment after it committed something, so every
# run makes progress (a restart first re-parses the committed records).
kills=0 runs=0 rc=1
while [ "$runs" -lt 300 ]; do
    runs=$((runs + 1))
    before=$(ckrows)
    IMPORT_SPEED=0 BATCH_SIZE=300 "$TXAGG_BIN/importer" big1.csv 2>>kill.log &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 3000); do
        kill -0 "$pid" 2>/dev/null || break
        [ "$(ckrows)" != "$before" ] && break
        sleep 0.01
    done
    sleep "0.0$((RANDOM % 4))$((RANDOM % 10))"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null; rc=$?
    [ "$rc" = 0 ] && break
done
is "$rc" 0 "the import finishes after $kills kill -9 in $runs runs"
check "the importer really was killed several times ($kills)" test "$kills" -ge 3
ck=$(rcli --scan --pattern 'import:checkpoint:*')
is "$(rcli HGET "$ck" rows)/$(rcli HGET "$ck" done)" "$ROWS/1" "the checkpoint ends at every record, done"
exactly_once exp1.txt "kill -9 loop"

# --- the connection killed again and again while importing ------------------------
rcli FLUSHALL >/dev/null
"$TXAGG_BIN/txgen" --rows "$ROWS" --days 45 --bad-every 101 --seed 6 --expect exp2.txt >big2.csv
IMPORT_SPEED=0 BATCH_SIZE=200 LOG_LEVEL=INFO "$TXAGG_BIN/importer" big2.csv 2>ck.log &
pid=$!
pids+=("$pid")
ckills=0
while kill -0 "$pid" 2>/dev/null; do
    id=$(rcli CLIENT LIST | sed -n 's/^id=\([0-9]*\) .* name=importer .*/\1/p' | head -1)
    if [ -n "$id" ] && [ "$(rcli CLIENT KILL ID "$id")" = 1 ]; then ckills=$((ckills + 1)); fi
    sleep 0.0$((RANDOM % 5 + 1))
done
wait "$pid"; rc=$?
is "$rc" 0 "the import finishes through $ckills killed connections"
check "its connection really was killed several times ($ckills)" test "$ckills" -ge 3
like "$(cat ck.log)" 'dependency reachable again' "reconnections are logged"
exactly_once exp2.txt "CLIENT KILL loop"

# --- two importers on the same file at once ----------------------------------------
rcli FLUSHALL >/dev/null
"$TXAGG_BIN/txgen" --rows "$ROWS" --days 30 --bad-every 89 --seed 7 --expect exp3.txt >big3.csv
cp big3.csv big3-copy.csv
IMPORT_SPEED=0 BATCH_SIZE=250 "$TXAGG_BIN/importer" big3.csv 2>two-a.log &
a=$!
IMPORT_SPEED=0 BATCH_SIZE=100 "$TXAGG_BIN/importer" big3-copy.csv 2>two-b.log &
b=$!
pids+=("$a" "$b")
wait "$a"; rca=$?
wait "$b"; rcb=$?
check "at least one of two concurrent importers succeeds ($rca, $rcb)" test "$rca" = 0 -o "$rcb" = 0
check "the other succeeds or reports the conflict ($rca, $rcb)" test "$rca$rcb" = 00 -o "$rca$rcb" = 01 -o "$rca$rcb" = 10
if [ "$rca$rcb" != 00 ]; then
    like "$(cat two-a.log two-b.log)" "another importer" "the loser says another importer has the file"
fi
exactly_once exp3.txt "two importers"

done_testing
