# tests/lib/persistor.sh — helpers for the persistor's end-to-end tests.
#
#   . "$TXAGG_ROOT/tests/lib/persistor.sh"
#   pst_start NAME [VAR=value…]   start bin/persistor in the background, log in NAME.log;
#                                 sets PST_PID; every started pid is killed on exit
#   pst_stop PID                  SIGTERM, wait for it; returns its exit status
#   wait_until SECONDS CMD…       poll CMD every 0.1 s until it succeeds (1 on timeout)
#   probe ARGS…                   tests/tools/archive_probe (seed, writer, compare, state)
#   probe_state KEY               one value of `archive_probe state`
#   scaled FULL SMALL             FULL, or SMALL when TXAGG_TEST_SCALE=small
#
# Test persistors archive with RETENTION_DAYS=3 (exported) and log at INFO.
# Sourcing it moves the test into a directory of its own under the run's
# scratch directory (ledgers and logs of one test never meet another's).

PROBE="$TXAGG_TESTBIN/tools/archive_probe"
cd "$(mktemp -d -p "$PWD" "$(basename "$0" .sh).XXXXXX")" || exit 1
PST_PIDS=()
export RETENTION_DAYS=3

pst_cleanup() {
    local p
    for p in "${PST_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PST_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    return 0
}
trap pst_cleanup EXIT

pst_start() {
    local name=$1
    shift
    env LOG_LEVEL=INFO "$@" "$TXAGG_BIN/persistor" >>"$name.log" 2>&1 &
    PST_PID=$!
    PST_PIDS+=("$PST_PID")
}

pst_stop() {
    local pid=$1 rc
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    return $rc
}


probe() { "$PROBE" "$@"; }

probe_state() {
    "$PROBE" state | tr ' ' '\n' | sed -n "s/^$1=//p"
}

scaled() {
    if [ "${TXAGG_TEST_SCALE:-}" = small ]; then echo "$2"; else echo "$1"; fi
}

# All eligible days archived and no batch pending (the probe reads MongoDB too).
pst_all_archived() {
    local s
    s=$("$PROBE" state) || return 1
    case $s in *"pending=0 "*) ;; *) return 1 ;; esac
    case $s in *" eligible=0 "*) return 0 ;; *) return 1 ;; esac
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
