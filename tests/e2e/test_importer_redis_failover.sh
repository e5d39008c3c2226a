#!/usr/bin/env bash
# A Redis failover under the importer: replication is asynchronous, so a
# promoted replica can lack batches (and their checkpoint) that the old
# primary acknowledged.  The importer must notice that the checkpoint went
# back and import the file again from the checkpoint Redis now holds — not
# go on from memory (those rows would be lost) nor give the file up.
#
# A primary + replica (tests/lib/cluster.sh); the importer writes to the
# primary's address, held by back-pressure (MAX_BACKLOG) with no aggregator
# running.  The replica is stopped (SIGSTOP) while the importer publishes
# tens of MB, more than the sockets between them can buffer; the primary is
# killed, the replica promoted and the address handed to it
# (cluster_pair_failover).  Then an aggregator drains the stream: every daily
# total is exact against txgen's own expectation, each bad row is one dead
# letter, and the importer exits 0.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/failover.sh"

ROWS=400000 HOLD=300000
failover_setup 43 "$ROWS"
dir=$FAILOVER_DIR replica=$PAIR_REPLICA

env LOG_LEVEL=INFO IMPORT_SPEED=0 BATCH_SIZE=1000 MAX_BACKLOG=$HOLD "$TXAGG_BIN/importer" in.csv 2>importer.log &
imp=$!
PAIR_PIDS+=("$imp")
check "the importer publishes to the primary" wait_until 60 failover_xlen_at_least 20000
failover_stop_replica
check "back-pressure holds the importer near MAX_BACKLOG while the replica is stopped" \
    wait_until 120 failover_xlen_at_least $((HOLD - 2000))
before=$(failover_xlen)
ck_before=$("${R[@]}" --scan --pattern 'import:checkpoint:*' | head -1)
rows_before=$("${R[@]}" HGET "$ck_before" rows)

cluster_pair_failover "$dir" || bail_out "the failover did not complete"
# What the promoted replica holds, read where nobody writes (the importer is
# already at work on the address again).
after=$(redis-cli -p "$replica" XLEN transactions)
rows_after=$(redis-cli -p "$replica" HGET "$ck_before" rows)
check "the promoted replica lacks acknowledged batches ($after of $before entries, checkpoint $rows_after of $rows_before rows)" \
    [ "$after" -lt "$before" ] && [ "${rows_after:-0}" -lt "$rows_before" ]

env LOG_LEVEL=INFO CONSUMER_NAME=agg-failover "$TXAGG_BIN/aggregator" 2>agg.log &
agg=$!
PAIR_PIDS+=("$agg")
wait "$imp"
is "$?" 0 "the importer finishes the file (exit 0) after the failover"
like "$(cat importer.log)" 'msg="checkpoint went back \(Redis failover\?\); importing the file again from it"' \
    "the importer says the checkpoint went back and imports again from it"
like "$(grep 'checkpoint went back' importer.log)" "found_rows=${rows_after:-0} " \
    "it imports again from the checkpoint the promoted replica holds (${rows_after:-0} rows)"
is "$("${R[@]}" HGET "$ck_before" rows)/$("${R[@]}" HGET "$ck_before" done)" "$ROWS/1" \
    "the checkpoint counts every record, done"
failover_check_end "$agg"
done_testing
