#!/usr/bin/env bash
# The aggregator through a live reshard of a real Redis Cluster (2 primaries,
# tests/lib/cluster.sh), REDIS_PARTITIONS=4: partpub writes the entries, two
# aggregator replicas consume them, and while they are at it partition 1's
# slot is put in migration (MIGRATING/IMPORTING) with about half its keys
# moved — and held there.  A script over a half-migrated slot can only be
# answered ASK or TRYAGAIN, so partition 1 cannot progress until the
# migration ends: the replicas must go on with the other partitions, back off
# on partition 1 instead of spinning, lose and double nothing, and resume it
# on the new primary once the slot has moved.  At the end: every partition
# drained, totals exact to the cent over the partitions, each malformed entry
# dead-lettered once, the replicas exit 0 on SIGTERM.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/cluster.sh"
. "$TXAGG_ROOT/tests/lib/aggpart.sh"
. "$TXAGG_ROOT/scripts/lib/common.sh"

N=$(scaled 60000 16000)
PARTS=4
PUB="$TXAGG_TESTBIN/tools/partpub"
[ -x "$PUB" ] || bail_out "partpub not built ($PUB)"
declare -a pid
ap_cluster_up aggreshard 2 0
export REDIS_PARTITIONS=$PARTS
ccli() { redis-cli -c -p "${AP_PORTS[0]}" "$@"; } # follows MOVED and ASK

MPORT=$(txagg_free_port) # replica 0's /metrics
start_agg() { # slot
    CONSUMER_NAME="ragg-$1" BATCH_SIZE=20 LOG_LEVEL=INFO METRICS_PORT=$([ "$1" = 0 ] && echo "$MPORT" || echo 0) \
        "$TXAGG_BIN/aggregator" 2>>"agg-$1.log" &
    pid[$1]=$!
}
metric() { curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

rm -f dump.txt
"$PUB" --count "$N" --seed 21 --days 12 --bad-every 97 --stripe 200 --dump dump.txt >pub.out 2>pub.err
is "$?" 0 "entries published into the $PARTS partitions"
mapfile -t STREAMS < <(for p in "${AP_PORTS[@]}"; do ap_streams "$p"; done | sort)
s1=$(printf '%s\n' "${STREAMS[@]}" | grep -F '{p1:')
slot1=$(ccli CLUSTER KEYSLOT "$s1")
check "partition 1's stream is found ($s1, slot $slot1)" [ -n "$s1" ] && [ -n "$slot1" ]
drained_one() { STREAM_KEY=$1 stream_drained ccli; }
undrained_one() { ! drained_one "$1"; }
others_drained() {
    local s
    for s in "${STREAMS[@]}"; do [ "$s" = "$s1" ] || drained_one "$s" || return 1; done
}

# The replicas start; once partition 1 has daily hashes (its batches are
# being applied), its slot goes into migration with half its keys moved.
for s in 0 1; do start_agg $s; done
p1_applying() { [ -n "$(for p in "${AP_PORTS[@]}"; do redis-cli -p "$p" --scan --pattern 'agg:*{p1:*'; done)" ]; }
check "the replicas are applying partition 1" wait_until 60 p1_applying
from=$(cluster_owner "$CL" "$slot1")
to=$(cluster_other_primary "$CL" "$from")
nkeys=$(redis-cli -p "$from" CLUSTER COUNTKEYSINSLOT "$slot1")
cluster_migrate_begin "$CL" "$slot1" "$to" $((nkeys / 2)) 2>migrate.err
check "partition 1's slot $slot1 is migrating from $from to $to with $((nkeys / 2)) of its $nkeys keys moved" \
    [ $? = 0 ]
check "partition 1 still had entries to apply when the migration began" undrained_one "$s1"

check "the other partitions drain while partition 1's slot is half migrated" wait_until 180 others_drained
check "partition 1 is held while its slot is half migrated (ASK/TRYAGAIN: no script can run there)" undrained_one "$s1"
# Backing off, not spinning: over 3 s with only partition 1 left, each
# replica uses well under half a core.
t0=(); for s in 0 1; do t0[s]=$(ticks "${pid[s]}"); done
sleep 3
hz=$(getconf CLK_TCK)
for s in 0 1; do
    used=$(($(ticks "${pid[s]}") - ${t0[s]}))
    check "replica $s backs off on the migrating slot ($used ticks of CPU in 3 s, hz $hz)" [ "$used" -lt $((hz * 3 / 2)) ]
    check "replica $s is still running" kill -0 "${pid[s]}"
done

cluster_migrate_finish "$CL" "$slot1" 2>>migrate.err
check "the migration finishes: slot $slot1 served by $to" [ "$(cluster_owner "$CL" "$slot1")" = "$to" ]
check "partition 1 drains on its new primary" wait_until 180 ap_drained $PARTS
ap_check_dump dump.txt $PARTS
like "$(cat agg-0.log agg-1.log)" 'partition redirected|partition served by another node now' \
    "the replicas saw partition 1 redirected and followed it"
redirs=0
for k in moved ask tryagain; do
    v=$(metric "txagg_redis_cluster_redirects_total{kind=\"$k\"}")
    redirs=$((redirs + ${v:-0}))
done
check "replica 0's /metrics counts the refusals it met ($redirs moved/ask/tryagain)" [ "$redirs" -gt 0 ]
changes=$(metric txagg_redis_cluster_map_changes_total)
check "and the slot maps it loaded: the first and the one after the move (${changes:-none})" [ "${changes:-0}" -ge 2 ]

for s in 0 1; do
    kill -TERM "${pid[$s]}"
    wait "${pid[$s]}"
    is "$?" 0 "replica $s exits 0 on SIGTERM"
    unset "pid[$s]"
done
done_testing
