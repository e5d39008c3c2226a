#!/usr/bin/env bash
# scripts/run.sh — `make run`: the whole system on this machine, no containers.
#
# (make has already installed what was missing and built bin/.)  Starts, with
# their data under the state directory (./state, kept between runs):
#   redis-server         127.0.0.1:6390   AOF on           (TXAGG_REDIS_PORT)
#   MongoDB-wire server  127.0.0.1:27090  mongod if installed, else FerretDB (TXAGG_MONGO_PORT)
#   aggregator           /health, /metrics on 127.0.0.1:9101 (TXAGG_AGGREGATOR_PORT)
#   persistor            /health, /metrics on 127.0.0.1:9102 (TXAGG_PERSISTOR_PORT)
#   api                  127.0.0.1:8000                    (API_PORT)
#                        /health, /ready on 127.0.0.1:8001 (API_PROBE_PORT)
#   importer             /health, /metrics on 127.0.0.1:9100 while it runs (TXAGG_IMPORTER_PORT)
# then imports the bundled sample deploy/data/transactions_1_month.csv (at
# IMPORT_SPEED=0 unless set; a second run finds its checkpoint: "already
# imported"), prints the URLs and runs until Ctrl-C, which stops everything it
# started — services first, then the servers — and nothing else, says what it
# stopped and exits 0.
#
# On a terminal the script runs itself again as a foreground job of its own
# (job control, `set -m`): the terminal's Ctrl-C then reaches that job alone,
# not make, which would otherwise die of the signal after the clean stop and
# print "make: *** [run] Error 130".  Without a terminal (tests, CI) it runs
# directly and a SIGINT or SIGTERM sent to it does the same clean stop.
#
# Dedicated ports rather than 6379/27017 so a system Redis or MongoDB is never
# touched.  Other settings (RETENTION_DAYS, LOG_LEVEL, API_TOKEN…) are taken
# from the environment as usual; the connection settings are this script's.
# Logs: state/logs/*.log.  TXAGG_STATE moves the state directory, TXAGG_BIN
# the binaries (default bin/).  tests/e2e/test_make_run.sh runs it.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ -t 0 ] && [ -z "${TXAGG_RUN_FOREGROUND:-}" ]; then
    set -m
    TXAGG_RUN_FOREGROUND=1 bash "$ROOT/scripts/run.sh" "$@"
    exit $?
fi
. scripts/lib/common.sh

STATE=${TXAGG_STATE:-$ROOT/state}
REDIS_PORT_RUN=${TXAGG_REDIS_PORT:-6390}
MONGO_PORT_RUN=${TXAGG_MONGO_PORT:-27090}
API_PORT_RUN=${API_PORT:-8000}
PROBE_PORT_RUN=${API_PROBE_PORT-8001}
AGG_PORT=${TXAGG_AGGREGATOR_PORT:-9101}
PERS_PORT=${TXAGG_PERSISTOR_PORT:-9102}
IMP_PORT=${TXAGG_IMPORTER_PORT:-9100}
SAMPLE=$ROOT/deploy/data/transactions_1_month.csv

LOGS=$STATE/logs

say() { echo "run: $*"; }
die() { echo "run: $*" >&2; exit 1; }
BIN=$(cd "${TXAGG_BIN:-$ROOT/bin}" && pwd) || die "no binaries: run make"

for p in "$REDIS_PORT_RUN|set TXAGG_REDIS_PORT to use another" "$MONGO_PORT_RUN|set TXAGG_MONGO_PORT to use another" \
    "$API_PORT_RUN|set API_PORT to use another" "${PROBE_PORT_RUN:-0}|set API_PROBE_PORT to use another" \
    "$AGG_PORT|set TXAGG_AGGREGATOR_PORT to use another" \
    "$PERS_PORT|set TXAGG_PERSISTOR_PORT to use another" "$IMP_PORT|set TXAGG_IMPORTER_PORT to use another"; do
    [ "${p%%|*}" = 0 ] && continue
    if (exec 3<>"/dev/tcp/127.0.0.1/${p%%|*}") 2>/dev/null; then
        die "port ${p%%|*} is in use (another make run?): ${p#*|}"
    fi
done
mkdir -p "$LOGS" || die "cannot create $STATE"

# Background jobs in their own process groups: Ctrl-C reaches this script
# only, which then stops the rest in order (services before the servers).
set -m
pids=()
names=()
cleanup() {
    local i
    trap - EXIT INT TERM
    [ ${#pids[@]} -gt 0 ] || return 0
    echo
    # The services first, together (each finishes its batch), then the servers.
    for ((i = 2; i < ${#pids[@]}; i++)); do kill -TERM "${pids[i]}" 2>/dev/null; done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        say "stopping ${names[i]} (pid ${pids[i]})"
        txagg_stop_pid "${pids[i]}"
    done
    say "stopped ${names[*]}; data kept in $STATE (delete it to start afresh)"
}
trap cleanup EXIT
# Ctrl-C or SIGTERM is how make run is meant to end: a clean stop, exit 0.
trap 'exit 0' INT TERM

started() { pids+=("$1"); names+=("$2"); }

# Connection settings are this script's; everything else comes from the caller.
unset REDIS_HOST REDIS_USERNAME REDIS_PASSWORD MONGODB_URI API_HOST METRICS_HOST METRICS_PORT CSV_PATH CONSUMER_NAME
export REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT_RUN MONGODB_URI="mongodb://127.0.0.1:$MONGO_PORT_RUN"
export API_HOST=127.0.0.1 API_PORT=$API_PORT_RUN API_PROBE_PORT=${PROBE_PORT_RUN:-0} METRICS_HOST=127.0.0.1
export MONGOC_DISABLE_SHM=1 # as the image does (deploy/Dockerfile)

txagg_start_redis "$STATE/redis" "$REDIS_PORT_RUN" --appendonly yes --appendfsync everysec ||
    die "redis-server did not start"
started "$TXAGG_REDIS_PID" redis-server
say "redis-server on 127.0.0.1:$REDIS_PORT_RUN (pid $TXAGG_REDIS_PID, AOF, data in $STATE/redis)"
txagg_start_mongo "$STATE/mongo" "$MONGO_PORT_RUN" || die "the MongoDB-wire server did not start"
started "$TXAGG_MONGO_PID" "$(basename "$(txagg_mongo_server)")"
say "$(basename "$(txagg_mongo_server)") on 127.0.0.1:$MONGO_PORT_RUN (pid $TXAGG_MONGO_PID, data in $STATE/mongo)"

start_service() { # start_service NAME HEALTH_URL [ENV=VALUE…]
    local name=$1 url=$2 pid
    shift 2
    env "$@" "$BIN/$name" >>"$LOGS/$name.log" 2>&1 &
    pid=$!
    started "$pid" "$name"
    if ! txagg_wait_http "$url" 30; then
        txagg_pid_running "$pid" && echo "run: $name (pid $pid) does not answer $url after 30 s" >&2 ||
            echo "run: $name exited at start" >&2
        tail -15 "$LOGS/$name.log" | sed 's/^/run:   | /' >&2
        exit 1
    fi
    say "$name running (pid $pid, log $LOGS/$name.log)"
}
start_service aggregator "http://127.0.0.1:$AGG_PORT/health" METRICS_PORT="$AGG_PORT"
start_service persistor "http://127.0.0.1:$PERS_PORT/health" METRICS_PORT="$PERS_PORT"
start_service api "http://127.0.0.1:$API_PORT_RUN/health"
# Job control was for the background services only: from here on a foreground
# command (sleep, the importer) stays in this script's process group, so a
# Ctrl-C on the terminal reaches this script and runs its INT trap (with job
# control on, bash would give the terminal to that command and, when the
# command died of the signal, exit 130 without the trap).
set +m

say "importing $SAMPLE"
IMPORT_SPEED=${IMPORT_SPEED:-0} METRICS_PORT=$IMP_PORT "$BIN/importer" "$SAMPLE" 2>&1 | tee -a "$LOGS/importer.log" | sed 's/^/run:   | /'
rc=${PIPESTATUS[0]}
case $rc in 3 | 130) exit 0 ;; esac # Ctrl-C during the import: the same clean stop
[ "$rc" = 0 ] || say "WARNING: the importer exited $rc (see $LOGS/importer.log); the services keep running"

read -r from to < <(tail -n +2 "$SAMPLE" | cut -c1-10 | sort -u | sed -n '1h;${x;G;s/\n/ /;p}')
base=http://127.0.0.1:$API_PORT_RUN
probes=
[ "${PROBE_PORT_RUN:-0}" = 0 ] || probes="  probes      http://127.0.0.1:$PROBE_PORT_RUN/health   http://127.0.0.1:$PROBE_PORT_RUN/ready   (the api's probe port)
"
cat <<EOF

txagg is running.
  dashboard   $base/
  stats       $base/stats?from_date=$from&to_date=$to
  API docs    $base/docs
  metrics     $base/metrics   http://127.0.0.1:$AGG_PORT/metrics (aggregator)   http://127.0.0.1:$PERS_PORT/metrics (persistor)
${probes}  redis-cli -p $REDIS_PORT_RUN    logs: $LOGS/
Ctrl-C stops everything started here.
EOF

# Until Ctrl-C, or until one of the processes dies on its own.
while :; do
    for ((i = 0; i < ${#pids[@]}; i++)); do
        if ! txagg_pid_running "${pids[i]}"; then
            say "${names[i]} (pid ${pids[i]}) exited on its own; stopping the rest"
            [ -f "$LOGS/${names[i]}.log" ] && tail -10 "$LOGS/${names[i]}.log" | sed 's/^/run:   | /'
            exit 1
        fi
    done
    sleep 1
done
