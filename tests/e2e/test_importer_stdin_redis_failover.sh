#!/usr/bin/env bash
# A Redis failover under an importer reading a pipe: what the pipe gave
# cannot be read again, so the file-restart of test_importer_redis_failover
# is no remedy.  The importer must forget a batch only once every replica
# holds it (ROLE, WAIT): while the replica is stopped it holds its batch and
# the pipe waits; when the primary is killed and the replica promoted, the
# batch in hand is found there or sent again.  Every row counted once.
#
# A primary + replica (tests/lib/cluster.sh); `importer -` on a pipe
# writing to the primary's address, no aggregator running.  The replica is
# stopped (SIGSTOP) mid-file: the stream must stop growing.  Then
# cluster_pair_failover (kill -9 of the primary, the replica promoted behind
# the address); an aggregator drains; the daily totals are exact against
# txgen's own expectation, each bad row is one dead letter, exit 0.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/failover.sh"

ROWS=$(scaled 300000 100000)
failover_setup 44 "$ROWS"
dir=$FAILOVER_DIR replica=$PAIR_REPLICA

# A pipe, paced so that the stop below lands mid-file.
env LOG_LEVEL=INFO IMPORT_SPEED=0 BATCH_SIZE=1000 "$TXAGG_BIN/importer" - \
    < <(head -c 200000 in.csv; sleep 2; tail -c +200001 in.csv) 2>importer.log &
imp=$!
PAIR_PIDS+=("$imp")
check "the importer publishes from the pipe to the primary" wait_until 60 failover_xlen_at_least 2000
failover_stop_replica
held() { grep -q 'msg="dependency unreachable, retrying" dep="redis replicas (import batch)"' importer.log; }
check "with the replica stopped the importer says its replicas do not acknowledge" wait_until 60 held
a=$(failover_xlen)
sleep 2
b=$(failover_xlen)
check "and holds the pipe: the stream stays at $a of $ROWS entries" [ "$a" = "$b" ] && [ "$a" -lt "$ROWS" ]

cluster_pair_failover "$dir" || bail_out "the failover did not complete"
env LOG_LEVEL=INFO CONSUMER_NAME=agg-failover "$TXAGG_BIN/aggregator" 2>agg.log &
agg=$!
PAIR_PIDS+=("$agg")
wait "$imp"
is "$?" 0 "the importer finishes the pipe (exit 0) after the failover"
is "$(grep -c 'checkpoint went back' importer.log)" 0 "no committed batch was lost: nothing to read again"
failover_check_end "$agg"
done_testing
