#!/usr/bin/env bash
# Hand-off 1 under fire: kill -9 of the importer again and again, its Redis
# connection killed again and again while it imports, and two importers on the
# same file at once — every accepted row ends up in the stream exactly once
# and every rejected row in the dead-letter stream exactly once, with the
# totals txgen computed from the integers it generated.
. "$TXAGG_ROOT/tests/lib/tap.sh"

ORACLE="/usr/bin/python3 $TXAGG_ROOT/tests/lib/oracle.py"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT
ROWS=$(scaled 100000 20000)

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
# A small MAX_BACKLOG paces the importer by what this script acknowledges
# (drain), so every run makes progress yet none can finish the file at once,
# whatever the machine's speed: each run is killed a random moment after a
# slice was acknowledged, i.e. while it is committing batches again.
drain() {
    rcli XREADGROUP GROUP aggregators t COUNT "$1" STREAMS transactions '>' | grep -E '^[0-9]+-[0-9]+$' |
        xargs -r redis-cli -p "$REDIS_PORT" XACK transactions aggregators >/dev/null
}
kills=0 runs=0 rc=1
while [ "$runs" -lt 400 ]; do
    runs=$((runs + 1))
    IMPORT_SPEED=0 BATCH_SIZE=300 MAX_BACKLOG=1000 "$TXAGG_BIN/importer" big1.csv 2>>kill.log &
    pid=$!
    pids+=("$pid")
    drain $((ROWS / 40))
    sleep "$(printf 0.%02d $((RANDOM % 15 + 1)))"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null; rc=$?
    [ "$rc" = 0 ] && break
done
is "$rc" 0 "the import finishes after $kills kill -9 in $runs runs"
check "the importer really was killed many times ($kills)" test "$kills" -ge 20
ck=$(rcli --scan --pattern 'import:checkpoint:*')
is "$(rcli HGET "$ck" rows)/$(rcli HGET "$ck" done)" "$ROWS/1" "the checkpoint ends at every record, done"
exactly_once exp1.txt "kill -9 loop"

# --- the connection killed again and again while importing ------------------------
# A small MAX_BACKLOG paces the importer by what this script acknowledges, so
# the number of kills does not depend on the machine's speed: each round
# kills the importer's connection, then acknowledges a slice of entries, which
# lets the importer commit a few more batches (and be killed amid them).
rcli FLUSHALL >/dev/null
"$TXAGG_BIN/txgen" --rows "$ROWS" --days 45 --bad-every 101 --seed 6 --expect exp2.txt >big2.csv
IMPORT_SPEED=0 BATCH_SIZE=200 MAX_BACKLOG=1000 LOG_LEVEL=INFO "$TXAGG_BIN/importer" big2.csv 2>ck.log &
pid=$!
pids+=("$pid")
ckills=$(/usr/bin/python3 - "$REDIS_PORT" "$pid" $((ROWS / 60)) <<'EOF2'
import os, random, sys, time
import redis
r = redis.Redis(port=int(sys.argv[1])); pid = int(sys.argv[2]); slice_ = int(sys.argv[3])
rnd = random.Random(6)
kills = 0
deadline = time.time() + 600
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    for c in r.client_list():
        if c.get("name") == "importer" and r.client_kill_filter(_id=c["id"]) == 1:
            kills += 1
    got = r.xreadgroup("aggregators", "test", {"transactions": ">"}, count=slice_)
    if got:
        r.xack("transactions", "aggregators", *[e[0] for e in got[0][1]])
    time.sleep(rnd.uniform(0.01, 0.12))
print(kills)
EOF2
)
wait "$pid"; rc=$?
is "$rc" 0 "the import finishes through $ckills killed connections"
check "its connection really was killed many times ($ckills)" test "$ckills" -ge 20
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
