#!/usr/bin/env bash
# `make run` (scripts/run.sh) brings the system up on this machine with its
# data under a state directory, imports the bundled sample exactly (checked
# against Python's own Decimal reading of the CSV), prints the URLs, stops
# everything it started on Ctrl-C (SIGINT) and nothing else, and a second run
# reuses the data: the importer says "already imported", totals unchanged.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/scripts/lib/common.sh"

# Until the services' issues land, their loops are placeholders that serve no
# /health; then there is nothing to run.
if "$TXAGG_BIN/importer" /dev/null 2>&1 | grep -q 'not implemented yet'; then
    ok "make run # SKIP the services are placeholders (importer: not implemented yet)"
    done_testing
    exit
fi

export TXAGG_STATE=$PWD/run-state
export TXAGG_REDIS_PORT=$(txagg_free_port) TXAGG_MONGO_PORT=$(txagg_free_port) API_PORT=$(txagg_free_port)
export TXAGG_AGGREGATOR_PORT=$(txagg_free_port) TXAGG_PERSISTOR_PORT=$(txagg_free_port)
export TXAGG_IMPORTER_PORT=$(txagg_free_port)
unset IMPORT_SPEED
export LOG_LEVEL=INFO # the importer says "already imported" at INFO; the harness sets WARNING
ORACLE=(python3 "$TXAGG_ROOT/deploy/test-compose-oracle.py")
"${ORACLE[@]}" expect expected.tsv --csv "$TXAGG_ROOT/deploy/data/transactions_1_month.csv" >/dev/null

run_pid=
# Job control on: the background run.sh gets SIGINT like a terminal's Ctrl-C
# would deliver it (without it, a background job ignores SIGINT).
set -m
start_run() { # start_run LOG: run.sh in the background until it prints its URLs
    bash "$TXAGG_ROOT/scripts/run.sh" >"$1" 2>&1 &
    run_pid=$!
    local deadline=$((SECONDS + 180))
    until grep -q '^txagg is running' "$1"; do
        txagg_pid_running "$run_pid" && [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
# The processes run.sh started, from its own lines "... (pid N ...)".
started_pids() { grep -o '(pid [0-9]*' "$1" | grep -o '[0-9]*'; }
stop_run() { # stop_run: SIGINT, as Ctrl-C; true when run.sh exits within 60 s
    kill -INT "$run_pid" 2>/dev/null
    local deadline=$((SECONDS + 60))
    while txagg_pid_running "$run_pid"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
    wait "$run_pid" 2>/dev/null
    return 0
}
cleanup() {
    [ -n "$run_pid" ] && txagg_pid_running "$run_pid" && { kill -TERM "$run_pid"; sleep 5; }
    for f in run1.log run2.log; do
        [ -f "$f" ] && for p in $(started_pids "$f"); do kill -KILL "$p" 2>/dev/null; done
    done
    true
}
trap cleanup EXIT
stats_url() { sed -n 's/^  stats  *//p' "$1"; }
exact() { "${ORACLE[@]}" compare expected.tsv "$(stats_url "$1")" >compare.out 2>&1; }
sockets_closed() {
    local p
    for p in $TXAGG_REDIS_PORT $TXAGG_MONGO_PORT $API_PORT $TXAGG_AGGREGATOR_PORT $TXAGG_PERSISTOR_PORT; do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 1
    done
    return 0
}

start_run run1.log
check "make run starts and prints its URLs" [ $? = 0 ]
[ -n "$(stats_url run1.log)" ] || { sed 's/^/#   | /' run1.log; bail_out "make run did not come up"; }
for what in dashboard stats "API docs" metrics; do
    like "$(cat run1.log)" "^  $what +http://127\.0\.0\.1:$API_PORT/" "it prints the $what URL"
done
is "$(redis-cli -p "$TXAGG_REDIS_PORT" config get appendonly | tail -1)" yes "its redis-server runs with AOF on"
check "its state lives under TXAGG_STATE" test -d "$TXAGG_STATE/redis" -a -d "$TXAGG_STATE/mongo" -a -d "$TXAGG_STATE/logs"
check "/stats over the sample's dates equals the independent computation, exact to the cent" \
    txagg_wait_cmd 120 exact run1.log
cat compare.out
pids=$(started_pids run1.log)
check "Ctrl-C (SIGINT) stops make run" stop_run
still=
check "it names the 5 processes it started" [ "$(echo $pids | wc -w)" = 5 ]
for p in $pids; do txagg_pid_running "$p" && still+=" $p"; done
is "${still:-none}" none "every process it started is gone"
check "and nothing listens on its ports any more" sockets_closed

start_run run2.log
check "a second make run starts on the same state" [ $? = 0 ]
like "$(cat run2.log)" 'already imported' "its importer says the sample was already imported"
check "/stats is unchanged, still exact" txagg_wait_cmd 60 exact run2.log
cat compare.out
check "Ctrl-C stops it again" stop_run
done_testing
