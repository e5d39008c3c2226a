#!/usr/bin/env bash
# tests/run.sh [PATTERN] — the harness behind `make test`.
#
# Starts its own redis-server and MongoDB-wire server (mongod if installed,
# else FerretDB with the SQLite backend) in a scratch directory on free
# loopback ports, runs every test whose path contains PATTERN:
#   unit         build/<mode>/tests/unit/test_*        (cmocka, TAP output)
#   integration  build/<mode>/tests/integration/test_* (cmocka, real servers)
#   e2e          tests/e2e/*.sh                        (TAP via tests/lib/tap.sh)
# and always stops the servers (EXIT trap, also on failure or Ctrl-C).
# Before each integration or e2e test Redis is flushed and the test gets its
# own MongoDB database (MONGODB_DATABASE=t_<name>), so tests are independent.
#
# A test passes when it exits 0, printed at least one "ok" line and no
# "not ok" line.  The last line is the summary "N passed, N failed" (counting
# checks); the exit status is 1 when anything failed.  Logs of failed tests are
# kept under artifacts/test-logs/.
#
# Environment: TXAGG_BIN (binaries), TXAGG_TESTBIN (build dir), SANITIZE,
# TXAGG_TEST_TIMEOUT (seconds per test file, default 900), TXAGG_KEEP_TMP=1.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/lib/common.sh

pattern=${1:-}
BIN=$(cd "${TXAGG_BIN:-bin}" && pwd)
TESTBIN=$(cd "${TXAGG_TESTBIN:-build/release}" && pwd)
TIMEOUT=${TXAGG_TEST_TIMEOUT:-900}

TMP=$(mktemp -d /tmp/txagg-test.XXXXXX)
ART="$ROOT/artifacts/test-logs"
mkdir -p "$ART"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    txagg_stop_pid "${TXAGG_REDIS_PID:-}"
    txagg_stop_pid "${TXAGG_MONGO_PID:-}"
    # Processes a test left behind in its own process group are gone with it;
    # stray ones started from our scratch dir are stopped here.
    pkill -TERM -f "$TMP" 2>/dev/null
    if [ "${TXAGG_KEEP_TMP:-0}" = 1 ]; then echo "# scratch kept in $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
trap cleanup EXIT
trap 'echo "# interrupted"; exit 130' INT TERM

redis_port=$(txagg_free_port)
mongo_port=$(txagg_free_port)
txagg_start_redis "$TMP/redis" "$redis_port" || exit 1
txagg_start_mongo "$TMP/mongo" "$mongo_port" || exit 1
echo "# redis-server on 127.0.0.1:$redis_port, $(basename "$(txagg_mongo_server)") on 127.0.0.1:$mongo_port, scratch $TMP"

export TXAGG_ROOT=$ROOT TXAGG_BIN=$BIN TXAGG_TESTBIN=$TESTBIN TXAGG_TEST_SERVERS=1 TXAGG_TEST_TMP=$TMP
export TXAGG_TEST_REDIS_PID=$TXAGG_REDIS_PID TXAGG_TEST_MONGO_PID=$TXAGG_MONGO_PID
export TXAGG_TEST_MONGO_PORT=$mongo_port
export REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port
export MONGODB_URI="mongodb://127.0.0.1:$mongo_port"
# Servers started by tests listen on loopback only.
export API_HOST=127.0.0.1 METRICS_HOST=127.0.0.1 METRICS_PORT=0 API_PROBE_PORT=0
export LOG_LEVEL=${LOG_LEVEL:-WARNING}
export CMOCKA_MESSAGE_OUTPUT=TAP
# The driver's counters off from the start, as the image does (deploy/Dockerfile).
export MONGOC_DISABLE_SHM=1
if [ "${SANITIZE:-0}" = 1 ]; then
    export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export TXAGG_TEST_SCALE=${TXAGG_TEST_SCALE:-small}
fi

tests=()
for f in "$TESTBIN"/tests/unit/test_* "$TESTBIN"/tests/integration/test_*; do
    [ -x "$f" ] && [ "${f%.d}" = "$f" ] && tests+=("$f")
done
for f in tests/e2e/*.sh; do [ -f "$f" ] && tests+=("$ROOT/$f"); done

passed=0 failed=0 files_failed=()
for t in "${tests[@]}"; do
    rel=${t#"$TESTBIN"/tests/}
    rel=${rel#"$ROOT"/tests/}
    case $rel in *"$pattern"*) ;; *) continue ;; esac
    name=$(basename "$t")
    name=${name%.sh}
    log="$TMP/$name.log"
    if [ "${rel%%/*}" != unit ]; then
        redis-cli -p "$redis_port" FLUSHALL >/dev/null
        export MONGODB_DATABASE="t_${name//[^A-Za-z0-9_]/_}"
    fi
    start=$(date +%s)
    if [ "${t%.sh}" != "$t" ]; then
        (cd "$TMP" && setsid timeout -k 10 "$TIMEOUT" bash "$t") >"$log" 2>&1
    else
        (cd "$TMP" && setsid timeout -k 10 "$TIMEOUT" "$t") >"$log" 2>&1
    fi
    rc=$?
    secs=$(($(date +%s) - start))
    n_ok=$(grep -cE '^ok [0-9]+' "$log" 2>/dev/null)
    n_fail=$(grep -cE '^not ok [0-9]+' "$log" 2>/dev/null)
    n_ok=${n_ok:-0} n_fail=${n_fail:-0}
    [ -f "$log" ] || echo "# $rel: its log file vanished during the run" >&2
    verdict=PASS
    if [ "$rc" != 0 ] || [ "$n_fail" -gt 0 ] || [ "$n_ok" -eq 0 ]; then
        verdict=FAIL
        # A crash or timeout without a "not ok" line still counts as a failure.
        [ "$n_fail" -eq 0 ] && n_fail=1
        files_failed+=("$rel")
        cp "$log" "$ART/$name.log" 2>/dev/null
    fi
    passed=$((passed + n_ok))
    failed=$((failed + n_fail))
    printf '%s %-44s %4d ok %3d failed %4ds\n' "$verdict" "$rel" "$n_ok" "$n_fail" "$secs"
    if [ $verdict = FAIL ]; then
        [ "$rc" = 124 ] && echo "    timed out after ${TIMEOUT}s"
        [ "$rc" != 0 ] && [ "$rc" != 124 ] && echo "    exit status $rc"
        # each failure with what was printed around it (cmocka's assertion
        # before it, a TAP diagnostic after it), then the log's tail
        grep -E -B4 -A6 '^not ok' "$log" | head -60 | sed 's/^/    /'
        echo "    --- last lines of $ART/$name.log:"
        tail -25 "$log" | sed 's/^/    | /'
    fi
done

if [ ${#files_failed[@]} -gt 0 ]; then echo "# failed: ${files_failed[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
