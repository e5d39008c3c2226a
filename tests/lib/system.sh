# tests/lib/system.sh — helpers for the end-to-end tests that run several of
# the real services at once (tests/e2e/test_ingest_crash.sh,
# test_system_crash.sh, test_api_consistency_persistor.sh, …).  Source it
# after tests/lib/tap.sh; it sources the helpers of each service it runs
# (tests/lib/aggregator_e2e.sh, persistor.sh, apitest.sh).
#
#   sys_setup [CMD]                  the test's setup, called once right after sourcing:
#                                    pst_setup (a directory of its own, RETENTION_DAYS=3),
#                                    then the EXIT trap: CMD (if given), then sys_teardown
#   sys_teardown                     sys_cleanup, pst_cleanup and api_stop
#   sys_agg_start SLOT [VAR=value…]  start bin/aggregator in slot SLOT under a new consumer
#                                    name agg-SLOT-GEN (GEN counts the starts of the slot),
#                                    log appended to agg-SLOT.log; sets SYS_AGG[SLOT] (pid)
#                                    and SYS_AGG_NAME[SLOT]
#   sys_agg_kill SLOT                kill -9 the slot's aggregator and reap it
#   sys_agg_stop SLOT                SIGTERM, wait; returns its exit status
#   sys_agg_freeze_with_pending SLOT SIGSTOP the slot's replica while it holds pending
#                                    entries (tries for 2-3 s; entries must be flowing);
#                                    prints how many it holds (0: not caught); leaves it
#                                    stopped
#   sys_pst_start NAME [VAR=value…]  pst_start (tests/lib/persistor.sh, sourced first) with
#                                    the pid registered here; sets PST_PID
#   sys_pst_kill PID                 kill -9 a persistor and reap it
#   sys_imp_start FILE [VAR=value…]  start bin/importer FILE, log appended to importer.log;
#                                    sets SYS_IMP (pid)
#   sys_imp_kill                     kill -9 the importer and reap it
#   sys_imp_exited                   true once the importer has exited by itself: it is
#                                    reaped, SYS_IMP_RC is its exit status and SYS_IMP_WHY
#                                    "importer exited N by itself" when N is not 0 (else
#                                    empty)
#   sys_reap PID                     wait for a registered process, forget it; returns its
#                                    exit status
#   sys_stop PID                     SIGTERM, then sys_reap
#   sys_register PID / sys_forget PID   processes sys_cleanup must kill
#   sys_cleanup                      kill -9 every registered process (for the EXIT trap)
#   syscheck ARGS…                   tests/lib/oracle.py (the Python oracle)
#   sys_expect_agg EXPECT…           txgen expectations as agg_redis_totals prints hashes (sorted)
#   sys_check_exact EXPECT MIN       three checks against a txgen expectation: it has more than MIN
#                                    method-days, Redis's daily totals equal it (agg_check_totals),
#                                    and each bad row is dead-lettered once, by reason
#   sys_expect_days EXPECT…          the days the expectations hold, sorted
#   sys_date_add DAY N               the day N days after DAY (before it when N < 0)
#   sys_rejected_counts              '# bad_<reason> N' from transactions:rejected, in the
#                                    order of txgen's expectation (oracle.py)
# (sizes: scaled FULL SMALL from tests/lib/helpers.sh, via tests/lib/tap.sh)
#
# Only live processes are registered (a pid is forgotten once reaped), so the
# cleanup never signals a recycled pid.

. "$TXAGG_ROOT/tests/lib/aggregator_e2e.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"

declare -A SYS_AGG SYS_AGG_NAME SYS_AGG_GEN SYS_LIVE
SYS_IMP= SYS_IMP_RC= SYS_IMP_WHY=

sys_setup() {
    pst_setup
    trap "${1:+$1; }sys_teardown" EXIT
}

sys_teardown() {
    sys_cleanup
    pst_cleanup
    api_stop
}

sys_register() { SYS_LIVE[$1]=1; }
sys_forget() { unset "SYS_LIVE[$1]"; }

sys_cleanup() {
    local p
    for p in "${!SYS_LIVE[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${!SYS_LIVE[@]}"; do wait "$p" 2>/dev/null; done
    SYS_LIVE=()
    return 0
}

sys_agg_start() {
    local s=$1
    shift
    SYS_AGG_GEN[$s]=$((${SYS_AGG_GEN[$s]:-0} + 1))
    SYS_AGG_NAME[$s]="agg-$s-${SYS_AGG_GEN[$s]}"
    env LOG_LEVEL=INFO "$@" CONSUMER_NAME="${SYS_AGG_NAME[$s]}" "$TXAGG_BIN/aggregator" 2>>"agg-$s.log" &
    SYS_AGG[$s]=$!
    sys_register "${SYS_AGG[$s]}"
}

sys_agg_kill() {
    local p=${SYS_AGG[$1]}
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    sys_forget "$p"
    unset "SYS_AGG[$1]"
}

sys_agg_stop() {
    local p=${SYS_AGG[$1]}
    unset "SYS_AGG[$1]"
    sys_stop "$p"
}

sys_reap() {
    local rc
    wait "$1"
    rc=$?
    sys_forget "$1"
    return $rc
}

sys_stop() {
    kill -TERM "$1" 2>/dev/null
    sys_reap "$1"
}

# A replica holds pending entries only between a read and its apply script,
# a few ms; with a paced importer it spends most of its time in the 10 ms
# linger after a partial batch or in a blocking read, holding nothing.  But
# a replica stopped while its blocking XREADGROUP waits in Redis is still
# served by Redis: the next entries are delivered to it, pending, and it
# cannot apply them.  So: stop it; if it holds entries, done; if its
# connection is blocked (CLIENT LIST flags=b), wait for an entry to be
# delivered; else let it run a few ms and try again.
sys_agg_freeze_with_pending() { agg_freeze_with_pending "${SYS_AGG[$1]}" "${SYS_AGG_NAME[$1]}"; }

sys_imp_start() {
    local file=$1
    shift
    env LOG_LEVEL=INFO "$@" "$TXAGG_BIN/importer" "$file" 2>>importer.log &
    SYS_IMP=$!
    sys_register "$SYS_IMP"
}

sys_imp_kill() {
    kill -KILL "$SYS_IMP" 2>/dev/null
    wait "$SYS_IMP" 2>/dev/null
    sys_forget "$SYS_IMP"
    SYS_IMP=
}

sys_imp_exited() {
    kill -0 "$SYS_IMP" 2>/dev/null && return 1
    sys_reap "$SYS_IMP"
    SYS_IMP_RC=$?
    SYS_IMP=
    SYS_IMP_WHY=
    [ "$SYS_IMP_RC" = 0 ] || SYS_IMP_WHY="importer exited $SYS_IMP_RC by itself"
    return 0
}

# pst_start keeps every pid it started for its EXIT trap; here only live
# ones are kept, since these tests restart persistors many times.
sys_pst_start() {
    pst_start "$@"
    unset 'PST_PIDS[-1]'
    sys_register "$PST_PID"
}

sys_pst_kill() {
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    sys_forget "$1"
}

syscheck() { /usr/bin/python3 "$TXAGG_ROOT/tests/lib/oracle.py" "$@"; }

sys_expect_agg() { syscheck agglines "$@" | sort; }

sys_check_exact() {
    sys_expect_agg "$1" >want.txt
    check "the expectation has totals to compare ($(wc -l <want.txt) method-days)" [ "$(wc -l <want.txt)" -gt "$2" ]
    agg_check_totals want.txt "every daily total is exact to the cent (txgen --expect)"
    is "$(sys_rejected_counts)" "$(grep '^# bad_' "$1")" "each bad row is dead-lettered exactly once, by reason"
}

sys_expect_days() { grep -hv '^#' "$@" | cut -f1 | sort -u; }

sys_date_add() {
    python3 -c "import datetime as d; print(d.date.fromisoformat('$1') + d.timedelta(days=$2))"
}

sys_rejected_counts() {
    syscheck stream "$REDIS_PORT" | grep '^# bad_'
}
