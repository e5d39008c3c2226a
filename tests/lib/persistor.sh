# tests/lib/persistor.sh — helpers for the persistor's end-to-end tests.
#
#   . "$TXAGG_ROOT/tests/lib/persistor.sh"
#   pst_setup                     the test's setup, called once right after sourcing:
#                                 moves into a directory of its own under the run's
#                                 scratch directory (ledgers and logs of one test never
#                                 meet another's), exports RETENTION_DAYS=3 (test
#                                 persistors archive with it) and sets the EXIT trap
#                                 pst_cleanup (a test with a trap of its own replaces it
#                                 and calls pst_cleanup from it)
#   pst_start NAME [VAR=value…]   start bin/persistor in the background, log in NAME.log,
#                                 at INFO; sets PST_PID; every started pid is killed by
#                                 pst_cleanup
#   pst_stop PID                  SIGTERM, wait for it; returns its exit status
#   probe ARGS…                   tests/tools/archive_probe (seed, writer, compare, state)
#   probe_state KEY               one value of `archive_probe state`
#   pst_all_archived              every eligible day archived, no batch pending
#   pst_outage_setup VAR SEED DAY the setup, instead of pst_setup, of a test that pauses
#                                 (SIGSTOP) one of the run's shared servers under a
#                                 persistor: pst_setup; PST_DEP_PID is the pid the harness
#                                 exports in VAR (TXAGG_TEST_REDIS_PID or
#                                 TXAGG_TEST_MONGO_PID); the EXIT, INT and TERM traps always
#                                 resume it (pst_dep_resume) before pst_cleanup; PST_DAYS
#                                 days of ledger from DAY are seeded with SEED (probe seed)
#   pst_pause_mid_batch [VAR=value…]  pst_start pst (PST_PID), check that a batch is in
#                                 flight, then SIGSTOP PST_DEP_PID
#   pst_dep_resume                SIGCONT to PST_DEP_PID
#   pst_check_ledger_exact        the assertions that nothing was lost or counted twice:
#                                 hot + cold equal the ledger (probe compare), no frozen hash
#                                 is left
# (wait_until and scaled come from tests/lib/helpers.sh, via tests/lib/tap.sh.)
# Sourcing defines functions and variables only (no cd, no export, no trap).

PROBE="$TXAGG_TESTBIN/tools/archive_probe"
PST_PIDS=()

pst_setup() {
    cd "$(mktemp -d -p "$PWD" "$(basename "$0" .sh).XXXXXX")" || bail_out "cannot make the test's directory"
    export RETENTION_DAYS=3
    trap pst_cleanup EXIT
}

pst_cleanup() {
    local p
    for p in "${PST_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PST_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    return 0
}

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

# All eligible days archived and no batch pending (the probe reads MongoDB too).
pst_all_archived() {
    local s
    s=$("$PROBE" state) || return 1
    case $s in *"pending=0 "*) ;; *) return 1 ;; esac
    case $s in *" eligible=0 "*) return 0 ;; *) return 1 ;; esac
}

pst_outage_setup() {
    local var=$1 seed=$2 day=$3
    pst_setup
    PST_DEP_PID=${!var:-}
    [ -n "$PST_DEP_PID" ] || bail_out "$var is not set (run through tests/run.sh)"
    trap 'pst_dep_resume; pst_cleanup' EXIT
    trap 'pst_dep_resume; exit 1' INT TERM
    PST_DAYS=$(scaled 300 150)
    probe seed ledger "$seed" "$day" "$PST_DAYS" "$((PST_DAYS * 20))" || bail_out "seeding failed"
}

pst_dep_resume() { kill -CONT "$PST_DEP_PID" 2>/dev/null; }

_pst_batch_in_flight() { [ "$(rcli SCARD system:archive:pending)" = 1 ]; }

pst_pause_mid_batch() {
    pst_start pst "$@"
    check "a batch is in flight" wait_until 60 _pst_batch_in_flight
    kill -STOP "$PST_DEP_PID"
}

pst_check_ledger_exact() {
    local out
    out=$(probe compare ledger)
    is "$?" 0 "hot + cold equal the ledger exactly"
    echo "# $out"
    is "$(probe_state frozen_keys)" 0 "no frozen hash is left"
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
