# tests/lib/failover.sh — the set-up the Redis failover tests of the
# pipeline share (tests/e2e/test_{importer,importer_stdin,aggregator}_redis_failover.sh).
# Source it after tests/lib/tap.sh; it sources cluster.sh, aggregator_e2e.sh
# and system.sh and defines one function (no cd, no export, no trap).
#
#   failover_setup SEED ROWS   a primary + replica in ./pair (cluster_pair_for_test: REDIS_PORT
#                              exported, PAIR_REPLICA, PAIR_PIDS and the EXIT trap), R pointing
#                              at the primary's address, and txgen's in.csv + exp.txt (ROWS rows
#                              over 40 days, a bad row every 97, seed SEED); sets FAILOVER_DIR
#   failover_xlen              XLEN transactions on the primary's address (0 when it does not answer)
#   failover_xlen_at_least N   true once the stream holds N entries
#   failover_stop_replica      SIGSTOP the replica (cluster_pair_failover continues it)
#   failover_check_end PID…    the end every such test shares: the stream drains, the totals are
#                              exact and each bad row is one dead letter (sys_check_exact
#                              exp.txt), then each aggregator PID exits 0 on SIGTERM
. "$TXAGG_ROOT/tests/lib/cluster.sh"
. "$TXAGG_ROOT/tests/lib/aggregator_e2e.sh"
. "$TXAGG_ROOT/tests/lib/system.sh"

failover_setup() {
    FAILOVER_DIR=$PWD/pair
    cluster_pair_for_test "$FAILOVER_DIR"
    R=(redis-cli -p "$REDIS_PORT")
    "$TXAGG_BIN/txgen" --rows "$2" --days 40 --seed "$1" --bad-every 97 --expect exp.txt >in.csv ||
        bail_out "txgen failed"
}

failover_xlen() { "${R[@]}" XLEN transactions 2>/dev/null || echo 0; }
failover_xlen_at_least() { [ "$(failover_xlen)" -ge "$1" ]; }
failover_stop_replica() { kill -STOP "$(cluster_pid "$FAILOVER_DIR" "$PAIR_REPLICA")"; }

failover_check_end() {
    local pid n=0
    check "the aggregators drain the stream" agg_wait_drained 180
    sys_check_exact exp.txt 200
    for pid in "$@"; do
        n=$((n + 1))
        kill -TERM "$pid"
        wait "$pid"
        is "$?" 0 "aggregator $n exits 0 on SIGTERM"
    done
    PAIR_PIDS=()
}
