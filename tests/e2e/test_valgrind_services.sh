#!/usr/bin/env bash
# Every service runs its steady state under valgrind (memcheck) and leaves no
# leak and no memory error behind: the importer publishes a generated file
# (with bad rows), an aggregator applies it, a persistor archives the days
# past the retention window to MongoDB in many cycles, the api answers a few
# hundred requests of every kind (hot, hot+cold, errors, /metrics, /ready),
# and the workers' /metrics and /health are scraped.  Then each stops on
# SIGTERM.  valgrind's exit status is 99 for any invalid access, use of
# uninitialised memory, bad free, or memory definitely or indirectly lost at
# exit (--errors-for-leak-kinds=definite,indirect) — after all that work, a
# leak per row, batch, cycle or request would be there.  The totals are
# checked too, so the run is known to have done the work.
# Skipped in the sanitizer run (valgrind cannot run ASan binaries; there
# LeakSanitizer checks the same processes at exit).
. "$TXAGG_ROOT/tests/lib/tap.sh"

if [ "${SANITIZE:-0}" = 1 ]; then
    ok "the services under valgrind # SKIP valgrind cannot run AddressSanitizer binaries (LeakSanitizer covers this run)"
    done_testing
    exit 0
fi
command -v valgrind >/dev/null || bail_out "valgrind is missing (scripts/deps.sh installs it)"

. "$TXAGG_ROOT/tests/lib/system.sh" # with aggregator_e2e.sh, persistor.sh, apitest.sh
sys_setup # pst_setup; the EXIT trap sys_teardown

ROWS=$(scaled 50000 5000)
DAYS=$(scaled 60 20)
FROM=2025-02-01
TO=$(sys_date_add "$FROM" $((DAYS - 1)))
VG=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30)
# Timeouts for code running ~20-50 times slower than usual.
SLOW_ENV=(LOG_LEVEL=INFO REDIS_TIMEOUT_MS=10000 MONGODB_TIMEOUT_MS=10000)

declare -A PID
# vg_start NAME BINARY [VAR=value…]: BINARY under valgrind, its report in
# NAME.vg, its own log in NAME.log.
vg_start() {
    local name=$1 bin=$2
    shift 2
    env "${SLOW_ENV[@]}" "$@" "${VG[@]}" --log-file="$name.vg" "$TXAGG_BIN/$bin" 2>>"$name.log" &
    PID[$name]=$!
    sys_register "${PID[$name]}"
}
# vg_stop NAME: SIGTERM, wait; returns the exit status (99: valgrind's verdict).
vg_stop() { sys_stop "${PID[$1]}"; }
# vg_clean NAME RC [WHAT]: the process exited 0 and valgrind reported nothing.
vg_clean() {
    local name=$1 rc=$2 what=${3:-$1}
    if [ "$rc" = 0 ] && ! grep -q '[^[:space:]]' "$name.vg" 2>/dev/null; then
        ok "$what: exit 0 under valgrind, no leak and no memory error"
    else
        not_ok "$what: exit 0 under valgrind, no leak and no memory error" \
            "exit $rc; $(grep -m12 -E 'lost in|Invalid|uninitialised|Mismatched|ERROR SUMMARY|at 0x|by 0x' "$name.vg" | tr '\n' ' ')"
    fi
}
get() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@"; }

"$TXAGG_BIN/txgen" --rows "$ROWS" --days "$DAYS" --start "$FROM" --seed 31 --bad-every 97 --expect exp.txt >in.csv ||
    bail_out "txgen failed"
syscheck truth exp.txt >truth.json

AGG_PORT=$(txagg_free_port)
PST_PORT=$(txagg_free_port)
API_PORT=$(txagg_free_port)
API_URL="http://127.0.0.1:$API_PORT"
vg_start aggregator aggregator METRICS_PORT="$AGG_PORT" BATCH_SIZE=500 CONSUMER_NAME=vg-agg
vg_start persistor persistor METRICS_PORT="$PST_PORT" PERSIST_INTERVAL_MS=300 PERSIST_LEASE_MS=20000
vg_start api api API_PORT="$API_PORT" API_THREADS=4
for u in "http://127.0.0.1:$AGG_PORT/health" "http://127.0.0.1:$PST_PORT/health" "$API_URL/health"; do
    txagg_wait_http "$u" 120 || bail_out "$u did not answer under valgrind"
done

# The importer: one run that publishes everything, one that finds the file
# already imported.
vg_start importer importer IMPORT_SPEED=0 BATCH_SIZE=500 CSV_PATH=in.csv
sys_reap "${PID[importer]}"
rc=$?
vg_clean importer "$rc" "importer (publishes the file)"
mv importer.vg importer-1.vg
vg_start importer importer IMPORT_SPEED=0 CSV_PATH=in.csv
sys_reap "${PID[importer]}"
rc=$?
vg_clean importer "$rc" "importer (finds the file already imported)"
like "$(cat importer.log)" "already imported" "the second importer says the file was already imported"

check "the aggregator drains the stream" agg_wait_drained 600
check "the persistor archives every eligible day" wait_until 600 pst_all_archived
docs=$(probe_state docs)
check "days went to MongoDB ($docs documents) and stayed hot" test "${docs:-0}" -gt 0 -a "$(rcli SCARD system:tracked_days)" -gt 0

if syscheck compare "$API_URL" "$FROM" "$TO" truth.json 2>compare.err; then
    ok "GET /stats over the whole range equals txgen's totals exactly"
else
    not_ok "GET /stats over the whole range equals txgen's totals exactly" "$(head -5 compare.err)"
fi

# A few hundred requests of every kind, so a per-request leak would show.
codes=()
for ((i = 0; i < $(scaled 60 15); i++)); do
    codes+=("$(get "$API_URL/stats?from_date=$FROM&to_date=$TO")"            # hot + cold
        "$(get "$API_URL/stats?from_date=$TO&to_date=$TO")"                   # hot
        "$(get "$API_URL/stats?from_date=$TO&to_date=$FROM")"                 # 400
        "$(get "$API_URL/stats?from_date=2025-02-30&to_date=$TO")"            # 400
        "$(get "$API_URL/nowhere")"                                           # 404
        "$(get -X POST "$API_URL/stats?from_date=$FROM&to_date=$TO")"         # 405
        "$(get "$API_URL/ready")" "$(get "$API_URL/metrics")"
        "$(get "http://127.0.0.1:$AGG_PORT/metrics")" "$(get "http://127.0.0.1:$PST_PORT/metrics")")
done
is "$(printf '%s\n' "${codes[@]}" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')" \
    "$(n=$(scaled 60 15); echo "200:$((n * 6)) 400:$((n * 2)) 404:$n 405:$n ")" \
    "every request got its status (200 x6, 400 x2, 404, 405 per round)"
for p in "/" "/docs" "/openapi.json"; do is "$(get "$API_URL$p")" 200 "GET $p"; done

for s in api persistor aggregator; do
    vg_stop "$s"
    vg_clean "$s" $?
done
done_testing
