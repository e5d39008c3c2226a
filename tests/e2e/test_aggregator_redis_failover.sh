#!/usr/bin/env bash
# A Redis failover under the aggregators: the promoted replica can lack
# batches the old primary had applied — their daily totals, their XACKs and
# their deliveries go back together (one script), so the new primary holds an
# older, consistent state.  The aggregators must follow without a restart:
# batches they hold from the old primary that the new one does not list as
# theirs are refused by the ownership check, re-delivered, and each row is
# counted exactly once.
#
# A primary + replica (tests/lib/cluster.sh), the whole file published and
# replicated first.  Two aggregators apply it; the replica is stopped
# (SIGSTOP) behind 40 MB of filler, so the batches applied after that die
# with the primary; cluster_pair_failover (kill -9 of the primary, the
# replica promoted behind the address).  The aggregators drain the stream:
# every daily total is exact against txgen's own expectation, each bad row is
# one dead letter, both exit 0.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/failover.sh"

failover_setup 45 "$(scaled 300000 100000)"
dir=$FAILOVER_DIR replica=$PAIR_REPLICA
env LOG_LEVEL=WARNING IMPORT_SPEED=0 "$TXAGG_BIN/importer" in.csv 2>importer.log
is "$?" 0 "the importer publishes the file"
is "$("${R[@]}" WAIT 1 10000)" 1 "the replica holds the whole stream"

applied() { [ "$(agg_group_field entries-read)" -ge "$1" ] 2>/dev/null; }
for n in 1 2; do
    env LOG_LEVEL=INFO CONSUMER_NAME="agg-$n" BATCH_SIZE=500 "$TXAGG_BIN/aggregator" 2>"agg-$n.log" &
    PAIR_PIDS+=($!)
done
check "the aggregators apply batches on the primary" wait_until 60 applied 5000
failover_stop_replica
# 40 MB the stopped replica cannot take in, then the batches applied meanwhile:
# they stay in the primary's output buffer and die with it.
"${R[@]}" EVAL "for i = 1, 20 do redis.call('SET', 'filler:' .. i, string.rep('x', 2000000)) end" 0 >/dev/null
before=$(agg_group_field entries-read)
check "they go on applying while the replica is stopped" wait_until 60 applied $((before + 5000))
id_before=$(agg_group_field last-delivered-id)

cluster_pair_failover "$dir" || bail_out "the failover did not complete"
# What the promoted replica holds, read where nobody writes (the aggregators
# are already at work on the address again).  Stream IDs: ms-seq.
id_after=$(stream_group_field last-delivered-id redis-cli -h 127.0.0.1 -p "$replica")
id_less() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -t- -k1,1n -k2,2n | head -1)" = "$1" ]; }
check "the promoted replica lacks delivered batches (last delivered: $id_after, before the kill: $id_before)" \
    id_less "$id_after" "$id_before"
failover_check_end "${PAIR_PIDS[@]}"
done_testing
