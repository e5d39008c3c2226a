#!/usr/bin/env bash
# The importer on a real Redis Cluster (3 primaries + 3 replicas, AOF on,
# tests/lib/cluster.sh) with REDIS_PARTITIONS=4 (issue 14 contract §1): one
# file's records spread over the four partition streams — which live on
# different primaries — in stripes, each record exactly once
# (tests/lib/partcheck.py reads them through python3-redis's cluster client);
# a second run says "already imported"; kill -9 again and again, then the
# resume is exact; a primary killed mid-import (its replica promoted) and a
# live migration of a partition's slot mid-import (ASK / TRYAGAIN / MOVED)
# leave every record exactly once, with no restart by hand.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/cluster.sh"

PC="/usr/bin/python3 $TXAGG_ROOT/tests/lib/partcheck.py"
CDIR=$PWD/importer-cluster
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; cluster_stop "$CDIR"' EXIT
cluster_start "$CDIR" || bail_out "cannot start a Redis Cluster"
export REDIS_CLUSTER REDIS_PARTITIONS=4 IMPORT_SPEED=0
REDIS_CLUSTER=$(cluster_seeds "$CDIR")
ROWS=$(scaled 40000 10000)

# any running node's port (the cluster client follows redirections)
anyport() { cluster_live_ports "$CDIR" | head -1; }
crcli() { redis-cli -c -p "$(anyport)" "$@"; }
# every key of the cluster matching a pattern (once: primaries only)
ckeys() {
    local p
    for p in $(cluster_live_ports "$CDIR"); do
        cluster_cli "$CDIR" "$p" ROLE | head -1 | grep -qx master || continue
        cluster_cli "$CDIR" "$p" --scan --pattern "$1"
    done | sort -u
}
has_key() { [ -n "$(ckeys "$1")" ]; }
checkpoints() {
    local k
    for k in $(ckeys 'import:checkpoint:*' | sed 's/.*{p\([0-9]*\):.*/\1 &/' | sort -n | cut -d' ' -f2); do
        printf '%s ' "$(crcli HGET "$k" rows)/$(crcli HGET "$k" done)/$(crcli HGET "$k" stripe)"
    done
}
flushall() {
    local p
    for p in $(cluster_live_ports "$CDIR"); do
        cluster_cli "$CDIR" "$p" ROLE | head -1 | grep -qx master && cluster_cli "$CDIR" "$p" FLUSHALL >/dev/null
    done
    return 0
}
# exactly_once EXPECT STRIPE CSV NAME
exactly_once() {
    local exp=$1 stripe=$2 csv=$3 name=$4 good entries distinct
    $PC stream "$(anyport)" 4 "$stripe" "$csv" --cluster >got-all.txt
    grep -v '^#' "$exp" >want.txt
    grep -v '^#' got-all.txt >got.txt
    if diff want.txt got.txt >diff.txt; then ok "$name: totals per day/type/method exact"; else
        not_ok "$name: totals per day/type/method exact" "$(head -5 diff.txt)"; fi
    good=$(sed -n 's/^# good //p' "$exp")
    entries=$(sed -n 's/^# entries //p' got-all.txt)
    distinct=$(sed -n 's/^# distinct_src //p' got-all.txt)
    is "$entries/$distinct" "$good/$good" "$name: every accepted row is in a partition stream once"
    is "$(grep '^# bad_' got-all.txt)" "$(grep '^# bad_' "$exp")" "$name: every rejected row is a dead letter once"
    is "$(sed -n 's/^# misplaced //p' got-all.txt)" 0 "$name: every record in the partition of its stripe"
}
# drain COUNT: acknowledge up to COUNT entries of every partition stream (a stand-in aggregator)
drain() {
    local s
    for s in $(ckeys 'transactions{p*'); do
        crcli XREADGROUP GROUP aggregators t COUNT "$1" STREAMS "$s" '>' 2>/dev/null | grep -E '^[0-9]+-[0-9]+$' |
            xargs -r redis-cli -c -p "$(anyport)" XACK "$s" aggregators >/dev/null 2>&1
    done
    return 0
}

# --- spread and exactness ------------------------------------------------------------
"$TXAGG_BIN/txgen" --rows 5000 --days 20 --bad-every 53 --seed 51 --expect exp0.txt >small.csv
BATCH_SIZE=100 LOG_LEVEL=INFO "$TXAGG_BIN/importer" small.csv 2>small.log
is "$?" 0 "a file imports on the cluster with REDIS_PARTITIONS=4"
exactly_once exp0.txt 100 small.csv "one run"
$PC stream "$(anyport)" 4 100 small.csv --cluster >spread.txt
is "$(sed -n 's/^# streams //p' spread.txt)" 4 "four partition streams"
is "$(sed -n 's/^# per_partition //p' spread.txt)" "1300,1300,1200,1200" "the records are spread over all four"
owners=$(for s in $(ckeys 'transactions{p*'); do cluster_owner "$CDIR" "$(crcli CLUSTER KEYSLOT "$s")"; done | sort -u | wc -l)
check "the partition streams live on several primaries ($owners)" test "$owners" -ge 2
for s in $(ckeys 'transactions{p*'); do
    is "$(crcli XINFO GROUPS "$s" | grep -c '^aggregators$')" 1 "the consumer group exists on $s"
done
like "$(checkpoints)" '^([0-9]+/1/100 ){4}$' "every partition's checkpoint done, with the stripe"
BATCH_SIZE=100 LOG_LEVEL=INFO "$TXAGG_BIN/importer" small.csv 2>again.log
is "$?" 0 "a second run exits 0"
like "$(cat again.log)" "already imported" "a second run says already imported"
exactly_once exp0.txt 100 small.csv "after a second run"
out=$(REDIS_PARTITIONS=3 "$TXAGG_BIN/importer" small.csv 2>&1); rc=$?
is "$rc" 2 "REDIS_PARTITIONS=3 on a cluster written with 4: exit 2"
like "$out" "REDIS_PARTITIONS" "the refusal names REDIS_PARTITIONS"

# --- kill -9 in a loop, then the resume --------------------------------------------------
flushall
"$TXAGG_BIN/txgen" --rows "$ROWS" --days 30 --bad-every 97 --seed 52 --expect exp1.txt >big1.csv
kills=0 runs=0 rc=1
while [ "$runs" -lt 100 ] && [ "$kills" -lt 8 ]; do
    runs=$((runs + 1))
    BATCH_SIZE=200 MAX_BACKLOG=800 "$TXAGG_BIN/importer" big1.csv 2>>kill.log &
    pid=$!
    pids+=("$pid")
    drain $((ROWS / 100))
    sleep "$(printf 0.%02d $((RANDOM % 30 + 10)))"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null; rc=$?
    [ "$rc" = 0 ] && break
done
check "the importer really was killed several times ($kills)" test "$kills" -ge 5
BATCH_SIZE=50 LOG_LEVEL=INFO "$TXAGG_BIN/importer" big1.csv 2>resume.log; rc=$?
is "$rc" 0 "the resume finishes the file"
like "$(checkpoints)" '^([0-9]+/1/200 ){4}$' "every checkpoint done, the first stripe kept"
exactly_once exp1.txt 200 big1.csv "kill -9 loop + resume"

# a background stand-in aggregator, so MAX_BACKLOG paces an import over
# seconds (at most 4 x 200 rows per round), whatever the test scale
drainer() { while :; do drain 200; sleep 0.2; done; }

# --- a primary killed mid-import ---------------------------------------------------------
flushall
"$TXAGG_BIN/txgen" --rows 20000 --days 30 --bad-every 89 --seed 53 --expect exp2.txt >big2.csv
BATCH_SIZE=100 MAX_BACKLOG=1000 "$TXAGG_BIN/importer" big2.csv 2>failover.log &
pid=$!
pids+=("$pid")
wait_until 30 has_key 'transactions{p1:*' || bail_out "no partition 1 stream"
drainer &
dpid=$!
pids+=("$dpid")
slot=$(crcli CLUSTER KEYSLOT "$(ckeys 'transactions{p1:*' | head -1)")
sleep 1
check "the importer is still importing when the primary dies" kill -0 "$pid"
moved=$(cluster_kill_primary "$CDIR" "$slot")
check "partition 1's primary was replaced ($moved)" test -n "$moved"
wait "$pid"; rc=$?
kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
is "$rc" 0 "the import finishes through the failover, without a restart by hand"
like "$(checkpoints)" '^([0-9]+/1/100 ){4}$' "every checkpoint done"
exactly_once exp2.txt 100 big2.csv "primary killed mid-import"

# --- a partition's slot migrated mid-import -------------------------------------------------
flushall
"$TXAGG_BIN/txgen" --rows 20000 --days 30 --bad-every 83 --seed 54 --expect exp3.txt >big3.csv
BATCH_SIZE=100 MAX_BACKLOG=1000 LOG_LEVEL=INFO "$TXAGG_BIN/importer" big3.csv 2>reshard.log &
pid=$!
pids+=("$pid")
wait_until 30 has_key 'transactions{p2:*' || bail_out "no partition 2 stream"
drainer &
dpid=$!
pids+=("$dpid")
slot=$(crcli CLUSTER KEYSLOT "$(ckeys 'transactions{p2:*' | head -1)")
from=$(cluster_owner "$CDIR" "$slot")
to=$(cluster_other_primary "$CDIR" "$from")
check "the importer is still importing when the migration begins" kill -0 "$pid"
# one key moved, the others not: the slot is split for a while (ASK, TRYAGAIN)
cluster_migrate_begin "$CDIR" "$slot" "$to" 1 || bail_out "cannot begin the migration"
sleep 2
cluster_migrate_finish "$CDIR" "$slot" || bail_out "cannot finish the migration"
is "$(cluster_owner "$CDIR" "$slot")" "$to" "partition 2's slot now lives on another primary"
still=0
kill -0 "$pid" 2>/dev/null && still=1
wait "$pid"; rc=$?
kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
is "$rc" 0 "the import finishes through the migration"
like "$(checkpoints)" '^([0-9]+/1/100 ){4}$' "every checkpoint done"
exactly_once exp3.txt 100 big3.csv "slot migrated mid-import"
# still importing after the move: its next commit in partition 2 met MOVED and reloaded the map
[ "$still" = 1 ] && like "$(cat reshard.log)" 'redis cluster slots moved.*slots=1' "the importer followed the moved slot"

done_testing
