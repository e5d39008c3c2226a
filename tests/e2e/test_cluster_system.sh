#!/usr/bin/env bash
# The whole pipeline on a real Redis Cluster (3 primaries + 3 replicas, AOF
# on, tests/lib/cluster.sh) with the hot tier in 4 partitions: one importer
# feeding one large out-of-order file with bad rows, three aggregators, two
# persistors (RETENTION_DAYS=7) and the api.  In the middle of the import:
# the primary of partition 0 is killed with SIGKILL (its replica is
# promoted), partition 1's slot is moved live to another primary, then the
# primary holding the persistor's lease is killed.  Nobody is restarted by
# hand.  Once everything settles, /stats over the whole range equals txgen's
# totals exactly, the dead letters are counted once, nothing is left
# pending, nothing older than the window is left in Redis.  Then a second
# file is imported while /stats is read in a loop over the first file's
# days, and one more primary is killed and another slot moved live: every
# 200 answer is exact, anything else a 503 — never a wrong number; both
# files exact at the end.  Last, the bad configurations:
# unreachable seeds, and a number of partitions other than the one the data
# was written with, and a cluster without full slot coverage, refused with
# a clear error naming the variable, nothing written.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/system.sh" # with aggregator_e2e.sh, persistor.sh, apitest.sh
. "$TXAGG_ROOT/tests/lib/cluster.sh"
. "$TXAGG_ROOT/tests/lib/stream.sh"
sys_setup 'touch stop; cluster_stop "$CL"' # pst_setup (cd into the test's directory); then sys_teardown

CL=$PWD/cluster
ROWS=$(scaled 500000 60000)
DAYS=$(scaled 90 60)
FROM=2025-09-01
TO=$(sys_date_add "$FROM" $((DAYS - 1)))
N=4
export RETENTION_DAYS=7 REDIS_PARTITIONS=$N
SPEED=$((ROWS / 3000)) # ~30 s of replay at full scale (sleep_ms averages 10 ms)
IMP_ENV=(IMPORT_SPEED="$SPEED" MAX_BACKLOG=20000)
AGG_ENV=(CLAIM_IDLE_MS=2000)
PST_ENV=(PERSIST_INTERVAL_MS=300 PERSIST_LEASE_MS=2000 MONGODB_TIMEOUT_MS=5000)

cluster_start "$CL" >cluster.log 2>&1 || bail_out "no Redis Cluster: $(tail -5 cluster.log)"
export REDIS_CLUSTER
REDIS_CLUSTER=$(cluster_seeds "$CL")
echo "# Redis Cluster $REDIS_CLUSTER, $N partitions"

# The partitions' key names and slots, as the product computes them.
mapfile -t LAYOUT < <("$TXAGG_TESTBIN/tools/tierkeys" $N)
declare -a SLOT STREAM REJECTED TRACKED CLOCK PENDING
for line in "${LAYOUT[@]}"; do
    read -r i slot _tag stream rejected tracked clock _hv _av _at pending <<<"$line"
    SLOT[i]=$slot STREAM[i]=$stream REJECTED[i]=$rejected TRACKED[i]=$tracked CLOCK[i]=$clock PENDING[i]=$pending
done
is "${#SLOT[@]}" $N "tierkeys names the keys of $N partitions"

# redis-cli on any live node, following MOVED.
ccli() {
    local p
    for p in $(cluster_live_ports "$CL"); do
        redis-cli -c -h 127.0.0.1 -p "$p" "$@" 2>/dev/null && return 0
    done
    return 1
}
drained() {
    local i
    for ((i = 0; i < N; i++)); do STREAM_KEY=${STREAM[i]} stream_drained ccli || return 1; done
}
max_clock() {
    local i c m=
    for ((i = 0; i < N; i++)); do
        c=$(ccli GET "${CLOCK[i]}")
        [[ -z "$c" || "$c" < "$m" ]] || m=$c
    done
    echo "$m"
}
hot_days() {
    local i
    for ((i = 0; i < N; i++)); do ccli SMEMBERS "${TRACKED[i]}"; done | grep . | sort -u
}
# No batch pending in any partition, and no hot day at or before the
# retention boundary of the greatest clock.
settled() {
    local i clock boundary
    for ((i = 0; i < N; i++)); do [ "$(ccli SCARD "${PENDING[i]}")" = 0 ] || return 1; done
    clock=$(max_clock)
    [ -n "$clock" ] || return 1
    boundary=$(sys_date_add "${clock:0:10}" -"$RETENTION_DAYS")
    [ -z "$(hot_days | awk -v b="$boundary" '$1 <= b')" ]
}
# Entries ever added to the partition streams (XLEN shrinks: the aggregators trim).
entries() {
    local i n=0 a
    for ((i = 0; i < N; i++)); do
        a=$(ccli XINFO STREAM "${STREAM[i]}" | awk 'want { print; exit } $0 == "entries-added" { want = 1 }')
        n=$((n + ${a:-0}))
    done
    echo "$n"
}

"$TXAGG_BIN/txgen" --rows "$ROWS" --days "$DAYS" --start "$FROM" --seed 41 --bad-every 97 --expect exp.txt >in.csv ||
    bail_out "txgen failed"
syscheck truth exp.txt >truth.json
maxts=$(syscheck maxts in.csv)
boundary=$(sys_date_add "${maxts:0:10}" -"$RETENTION_DAYS")
sys_expect_days exp.txt | awk -v b="$boundary" '$1 > b' >want_hot.txt
bad=$(awk '/^# bad_/ { n += $3 } END { print n + 0 }' exp.txt)
echo "# $ROWS rows over $FROM..$TO ($bad bad), greatest time $maxts, retention boundary $boundary"

for s in 0 1 2; do sys_agg_start $s "${AGG_ENV[@]}"; done
sys_pst_start pst-0 "${PST_ENV[@]}"
sys_pst_start pst-1 "${PST_ENV[@]}"
api_start API_THREADS=4
t0=$SECONDS
sys_imp_start in.csv "${IMP_ENV[@]}"

# At a quarter, a half and three quarters of the import.
imp_done() { [ -z "$SYS_IMP" ] || sys_imp_exited; } # once reaped, SYS_IMP is empty
progressed() { [ "$(entries)" -ge "$1" ] || imp_done; }
wait_until 300 progressed $((ROWS / 4)) || bail_out "the import does not progress: $(tail -5 importer.log)"
imp_done && bail_out "the import finished before the failover could happen: lower IMPORT_SPEED's divisor"
t_kill=$SECONDS
read -r old new < <(cluster_kill_primary "$CL" "${SLOT[0]}")
check "partition 0's primary ($old) is killed and its replica ($new) promoted" test -n "$new" -a "$new" != "$old"
echo "# failover of partition 0 took $((SECONDS - t_kill)) s"
cluster_restart_node "$CL" "$old" >/dev/null 2>&1 # it rejoins as a replica: 3 + 3 again for the next kill

wait_until 300 progressed $((ROWS / 2))
from=$(cluster_owner "$CL" "${SLOT[1]}")
to=$(cluster_other_primary "$CL" "$from")
cluster_move_slot "$CL" "${SLOT[1]}" "$to" >reshard.log 2>&1
check "partition 1's slot moves live from $from to $to" [ "$(cluster_owner "$CL" "${SLOT[1]}")" = "$to" ]

wait_until 300 progressed $((3 * ROWS / 4))
lease_slot=$(redis-cli -p "$(cluster_live_ports "$CL" | head -1)" CLUSTER KEYSLOT '{txagg}')
read -r old2 new2 < <(cluster_kill_primary "$CL" "$lease_slot")
check "the primary of the persistor's lease ($old2) is killed and its replica ($new2) promoted" \
    test -n "$new2" -a "$new2" != "$old2"
cluster_restart_node "$CL" "$old2" >/dev/null 2>&1

check "the import finishes" wait_until 600 imp_done
is "$SYS_IMP_RC" 0 "the importer exits 0 after two failovers and a reshard"
echo "# import: $((SECONDS - t0)) s"
check "every partition drains: everything delivered and acknowledged" wait_until 300 drained
check "the archive settles: no batch pending, nothing older than the window hot" wait_until 300 settled
echo "# settled $((SECONDS - t0)) s after the start"

if syscheck compare "$API_URL" "$FROM" "$TO" truth.json >compare.out 2>compare.err; then
    ok "GET /stats over the whole range equals txgen's totals exactly"
else
    not_ok "GET /stats over the whole range equals txgen's totals exactly" "$(head -5 compare.err)"
fi
sed 's/^#* */# /' compare.out
is "$(hot_days | tr '\n' ' ')" "$(tr '\n' ' ' <want_hot.txt)" "the days after the boundary, and only they, are hot"
rej=0
for ((i = 0; i < N; i++)); do rej=$((rej + $(ccli XLEN "${REJECTED[i]}"))); done
is "$rej" "$bad" "each bad row is dead-lettered exactly once"
spread=0
for ((i = 0; i < N; i++)); do
    [ "$(ccli XINFO STREAM "${STREAM[i]}" | awk 'want { print; exit } $0 == "entries-added" { want = 1 }')" -gt 0 ] &&
        spread=$((spread + 1))
done
is "$spread" $N "the one file's rows went to all $N partitions"
redeliv=$(cat agg-*.log | grep -c 'msg="entries claimed' || true)
recovered=$(cat agg-*.log | sed -n 's/.*msg="pending entries recovered".* entries=\([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
echo "# re-delivered: $recovered pending entries re-read by their own consumer after a redirect or reconnect," \
    "$redeliv claims from other consumers (each applied once: the totals above are exact)"

# /stats in a loop during a failover and a live reshard.  A second file,
# over the DAYS2 days after TO, is imported while a reader reads [FROM, TO]:
# days the second file never touches, which the persistor goes on archiving
# as the clock moves on (the last hot days of the first file move to
# MongoDB meanwhile).  Every 200 must be exactly the first file's truth,
# anything else a 503; then the whole range is exact.
ROWS2=$(scaled 100000 20000)
DAYS2=20
FROM2=$(sys_date_add "$TO" 1)
TO2=$(sys_date_add "$TO" $DAYS2)
"$TXAGG_BIN/txgen" --rows "$ROWS2" --days $DAYS2 --start "$FROM2" --seed 42 --bad-every 97 --expect exp2.txt >in2.csv ||
    bail_out "txgen failed (second file)"
syscheck truth exp.txt exp2.txt >truth2.json
bad2=$(awk '/^# bad_/ { n += $3 } END { print n + 0 }' exp2.txt)
e1=$(entries)
rm -f stop
syscheck reads-failover "$API_URL" "$FROM" "$TO" truth.json stop 5 >reads.out 2>reads.err &
reader=$!
sys_register "$reader"
sys_imp_start in2.csv IMPORT_SPEED=$((ROWS2 / 2000)) MAX_BACKLOG=20000 # ~20 s at full scale
wait_until 300 progressed $((e1 + ROWS2 / 4))
imp_done && bail_out "the second import finished before the failover could happen"
read -r old3 new3 < <(cluster_kill_primary "$CL" "${SLOT[2]}")
check "partition 2's primary ($old3) is killed during the reads and the second import, its replica ($new3) promoted" \
    [ -n "$new3" ]
cluster_restart_node "$CL" "$old3" >/dev/null 2>&1
wait_until 300 progressed $((e1 + ROWS2 / 2))
from=$(cluster_owner "$CL" "${SLOT[3]}")
to=$(cluster_other_primary "$CL" "$from")
cluster_move_slot "$CL" "${SLOT[3]}" "$to" >reshard2.log 2>&1
check "partition 3's slot moves live from $from to $to during the reads" [ "$(cluster_owner "$CL" "${SLOT[3]}")" = "$to" ]
check "the second import finishes" wait_until 600 imp_done
is "$SYS_IMP_RC" 0 "the importer exits 0 after the failover and the reshard"
check "every partition drains again" wait_until 300 drained
check "the archive settles again" wait_until 300 settled
touch stop
wait "$reader"
reads_rc=$?
sys_forget "$reader"
echo "# $(cat reads.out)"
is "$reads_rc" 0 "every /stats answer during the failover and the reshard is exact or a 503 $(head -3 reads.err | tr '\n' ' ')"
if syscheck compare "$API_URL" "$FROM" "$TO2" truth2.json >compare2.out 2>compare2.err; then
    ok "GET /stats over both files' range equals txgen's totals exactly"
else
    not_ok "GET /stats over both files' range equals txgen's totals exactly" "$(head -5 compare2.err)"
fi
sed 's/^#* */# /' compare2.out
rej=0
for ((i = 0; i < N; i++)); do rej=$((rej + $(ccli XLEN "${REJECTED[i]}"))); done
is "$rej" "$((bad + bad2))" "each bad row of both files is dead-lettered exactly once"

rc=0
for s in 0 1 2; do sys_agg_stop $s || rc=$?; done
for p in "${PST_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && { pst_stop "$p" || rc=$?; sys_forget "$p"; }; done
is "$rc" 0 "aggregators and persistors exit 0 on SIGTERM"

# Bad configurations: a clear error naming the variable, nothing written
# (the streams of the partitions a 6-partition layout would add stay absent).
mapfile -t LAYOUT6 < <("$TXAGG_TESTBIN/tools/tierkeys" $((N + 2)))
absent6() {
    local line s n=0
    for line in "${LAYOUT6[@]:N}"; do
        read -r _ _ _ s _ <<<"$line"
        n=$((n + $(ccli EXISTS "$s")))
    done
    [ "$n" = 0 ]
}
out=$(REDIS_PARTITIONS=$((N + 2)) timeout 60 "$TXAGG_BIN/aggregator" 2>&1)
rc=$?
is "$rc" 2 "an aggregator with another REDIS_PARTITIONS exits 2"
like "$out" "REDIS_PARTITIONS=$((N + 2)).*$N partition" "it names REDIS_PARTITIONS and the recorded number"
dead=$(txagg_free_port)
out=$(REDIS_CLUSTER=127.0.0.1:$dead REDIS_TIMEOUT_MS=500 timeout 5 "$TXAGG_BIN/importer" in.csv 2>&1)
rc=$?
isnt "$rc" 0 "an importer whose seeds are all unreachable does not succeed"
like "$out" "REDIS_CLUSTER" "it names REDIS_CLUSTER in its error"
check "nothing was written under the other layout's names" absent6
# A cluster without full slot coverage: one slot that no partition uses
# taken away from its primary.  No slot map can be installed, so nothing is
# written; the importer names REDIS_CLUSTER and why (it retries: a cluster
# can be mid-failover).  The slot is given back afterwards to check.
e0=$(entries)
uncov=$(( (SLOT[0] + SLOT[1]) / 2 ))
for ((i = 0; i < N; i++)); do [ "$uncov" != "${SLOT[i]}" ] || uncov=$((uncov + 1)); done
owner=$(cluster_owner "$CL" "$uncov")
cluster_uncover "$CL" "$uncov" "$uncov" >uncover.log 2>&1
"$TXAGG_BIN/txgen" --rows 1000 --days 2 --start "$FROM2" --seed 43 >in3.csv
out=$(REDIS_TIMEOUT_MS=500 timeout 10 "$TXAGG_BIN/importer" in3.csv 2>&1)
rc=$?
isnt "$rc" 0 "an importer on a cluster with slot $uncov unserved does not succeed"
like "$out" "REDIS_CLUSTER.*1 of 16384 hash slots have no primary" "it names REDIS_CLUSTER and the missing coverage"
cluster_cli "$CL" "$owner" CLUSTER ADDSLOTS "$uncov" >/dev/null
check "the slot given back, the cluster is ok again" cluster_wait_ok "$CL" 60
is "$(entries)" "$e0" "nothing was published while the coverage was incomplete"

done_testing
