#!/usr/bin/env bash
# Redis outages: an importer started before Redis waits for it; a Redis that
# stops answering mid-import (SIGSTOP) makes commands time out with the
# outcome of the transaction in flight unknown — after it answers again the
# import finishes with every row exactly once; each outage is logged once when
# it starts and once when it ends; SIGTERM while Redis is down exits 3.
# Uses its own redis-server (scratch dir, free port), not the harness's.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/scripts/lib/common.sh"

ORACLE="/usr/bin/python3 $TXAGG_ROOT/tests/lib/oracle.py"
PORT=$(txagg_free_port)
RPID=
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "$RPID" ] && { kill -CONT "$RPID" 2>/dev/null; txagg_stop_pid "$RPID"; }
}
trap cleanup EXIT
rcli() { redis-cli -p "$PORT" "$@"; }
stream_longer_than() { [ "$(rcli XLEN transactions)" -gt "$1" ]; }
ROWS=$(scaled 100000 20000)
export REDIS_PORT=$PORT IMPORT_SPEED=0

# --- Redis not there yet ---------------------------------------------------------------
"$TXAGG_BIN/txgen" --rows 3000 --seed 21 --expect e1.txt >early.csv
LOG_LEVEL=INFO "$TXAGG_BIN/importer" early.csv 2>early.log &
pid=$!
pids+=("$pid")
wait_until 5 grep -q "dependency unreachable" early.log
sleep 1
check "the importer waits while Redis is down" kill -0 "$pid"
txagg_start_redis "$PWD/redis" "$PORT" || bail_out "cannot start redis-server"
RPID=$TXAGG_REDIS_PID
wait "$pid"; rc=$?
is "$rc" 0 "it imports once Redis is up"
is "$(grep -c 'msg="dependency unreachable, retrying"' early.log)" 1 "the outage is logged once, not per retry"
is "$(grep -c 'msg="dependency reachable' early.log)" 1 "its end is logged once"
is "$(rcli XLEN transactions)" "$(sed -n 's/^# good //p' e1.txt)" "every row arrived"

# --- Redis stops answering mid-import ------------------------------------------------------
rcli FLUSHALL >/dev/null
"$TXAGG_BIN/txgen" --rows "$ROWS" --seed 22 --bad-every 77 --expect e2.txt >big.csv
REDIS_TIMEOUT_MS=300 BATCH_SIZE=500 LOG_LEVEL=INFO "$TXAGG_BIN/importer" big.csv 2>pause.log &
pid=$!
pids+=("$pid")
wait_until -i 0.01 3 stream_longer_than 2000
kill -STOP "$RPID"
sleep 1.5
kill -CONT "$RPID"
wait_until 5 stream_longer_than 0
# and once more, to hit another moment of a transaction
kill -STOP "$RPID"
sleep 1
kill -CONT "$RPID"
wait "$pid"; rc=$?
is "$rc" 0 "the import finishes after Redis paused twice"
like "$(cat pause.log)" 'msg="dependency unreachable, retrying"' "the pause is logged"
downs=$(grep -c 'msg="dependency unreachable' pause.log)
ups=$(grep -c 'msg="dependency reachable again' pause.log)
check "each outage is logged once when it starts and once when it ends ($downs/$ups)" test "$downs" = "$ups" -a "$downs" -le 4
$ORACLE stream "$PORT" >stream.txt
is "$(grep -v '^#' stream.txt | md5sum)" "$(grep -v '^#' e2.txt | md5sum)" "totals are exact after the pauses"
is "$(sed -n 's/^# entries //p' stream.txt)/$(sed -n 's/^# distinct_src //p' stream.txt)" \
    "$(sed -n 's/^# good //p' e2.txt)/$(sed -n 's/^# good //p' e2.txt)" "every accepted row is in the stream once"
is "$(grep '^# bad_' stream.txt)" "$(grep '^# bad_' e2.txt)" "every rejected row is a dead letter once"

# --- SIGTERM while Redis is down --------------------------------------------------------------
txagg_stop_pid "$RPID"
RPID=
"$TXAGG_BIN/importer" early.csv 2>/dev/null &
pid=$!
pids+=("$pid")
sleep 0.5
kill -TERM "$pid"
wait "$pid"; rc=$?
is "$rc" 3 "SIGTERM while Redis is unreachable exits 3"

done_testing
