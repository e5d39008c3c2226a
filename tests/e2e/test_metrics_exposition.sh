#!/usr/bin/env bash
# The four services' live /metrics pages are read the same way by every
# Prometheus client: `promtool check metrics` (Prometheus's own parser and
# lint) finds nothing, Python's prometheus_client (the strict parser) sees
# every family once, with its expected type and never `unknown`, a metric
# shared by several services has one HELP text, the api's /docs and
# /openapi.json name every metric of its page, docs/OPERATIONS.md those of
# all four.  The pages are taken while
# the importer runs (paced) and after the aggregator, the persistor and the
# api have done real work (dead letters, archival, every kind of request).
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/system.sh" # with aggregator_e2e.sh, persistor.sh, apitest.sh
. "$TXAGG_ROOT/tests/lib/promtest.sh"
sys_setup # pst_setup; the EXIT trap sys_teardown
prom_need_tools

speed=$(prom_paced_csv in.csv 20000 8 --days 10 --start 2026-01-01 --seed 5 --bad-every 97 --sleep-ms 4)
prom_services_start
prom_importer_start in.csv "$speed"
published() { curl -fsS "$(prom_url importer)/metrics" | grep -Eq '^txagg_importer_rows_published_total [1-9]'; }
check "the importer publishes (paced, IMPORT_SPEED=$speed)" wait_until 30 published
curl -fsS "$(prom_url importer)/metrics" >importer.prom
check "the importer's page was taken while it ran" txagg_pid_running "$SYS_IMP"
wait "$SYS_IMP"
is "$?" 0 "the importer finishes the file and exits 0"
sys_forget "$SYS_IMP"
check "the aggregator drains the stream" agg_wait_drained 120
check "the persistor archives the days past the window" wait_until 120 pst_all_archived
# The gauge is refreshed after each cycle: wait for the cycle that archived the
# last day to show there (a page taken a moment earlier still holds the old age).
age_within_window() {
    local a
    a=$(curl -fsS "$(prom_url persistor)/metrics" | sed -n 's/^txagg_persistor_oldest_hot_day_age_seconds //p')
    [ -n "$a" ] && [ "$a" -gt 0 ] && [ "$a" -lt 259200 ]
}
wait_until 30 age_within_window || true # settled below, on the page the checks read

api=$(prom_url api)
for q in "from_date=2026-01-01&to_date=2026-01-10" "from_date=2026-01-09&to_date=2026-01-10" \
    "from_date=2026-01-10&to_date=2026-01-01"; do
    curl -s -o /dev/null "$api/stats?$q"
done
curl -s -o /dev/null "$api/nowhere"
curl -s -o /dev/null "$api/ready"
curl -s "$api/docs" >docs.html
curl -s "$api/openapi.json" >openapi.json
for s in aggregator1 persistor api; do curl -fsS "$(prom_url "$s")/metrics" >"${s%1}.prom"; done

pages=(importer.prom aggregator.prom persistor.prom api.prom)
for p in "${pages[@]}"; do
    svc=${p%.prom}
    out=$(promtool check metrics <"$p" 2>&1)
    rc=$?
    if [ $rc = 0 ] && [ -z "$out" ]; then ok "promtool check metrics finds nothing on the $svc's page"
    else not_ok "promtool check metrics finds nothing on the $svc's page" "exit $rc" "$out"; fi
    out=$(promcheck page "$svc" "$p")
    check "prometheus_client reads the $svc's page: every expected family once, with its type, none unknown" \
        test -z "$out"
    [ -z "$out" ] || printf '#   %s\n' "$out"
done
out=$(promcheck help "${pages[@]}")
check "a metric on several pages has one HELP text and type" test -z "$out"
[ -z "$out" ] || printf '#   %s\n' "$out"
documented() { # documented DOC WHAT PAGE…
    local doc=$1 what=$2 out
    shift 2
    out=$(promcheck documented "$doc" "$@")
    check "$(basename "$doc") names every metric of $what" test -z "$out"
    [ -z "$out" ] || printf '#   %s\n' "$out"
}
documented docs.html "the api's page (GET /docs)" api.prom
documented openapi.json "the api's page (GET /openapi.json)" api.prom
documented "$TXAGG_ROOT/docs/OPERATIONS.md" "the four pages" "${pages[@]}"

# The figures behind the alerts are there and say what happened.
like "$(cat aggregator.prom)" $'\ntxagg_aggregator_dead_letters_added_total [1-9]' \
    "the aggregator reports the dead letters the importer wrote"
like "$(cat persistor.prom)" $'\ntxagg_persistor_retention_seconds 259200\n' "the persistor reports RETENTION_DAYS=3 in seconds"
age=$(sed -n 's/^txagg_persistor_oldest_hot_day_age_seconds //p' persistor.prom)
check "after archival the oldest hot day lies within the window (age ${age:-?} s < 259200)" \
    test -n "$age" -a "${age:-0}" -gt 0 -a "${age:-0}" -lt 259200
for p in "${pages[@]}"; do
    like "$(cat "$p")" $'\ntxagg_redis_up 1\n' "${p%.prom} reports Redis reachable"
done
for p in persistor.prom api.prom; do
    like "$(cat "$p")" $'\ntxagg_mongo_up 1\n' "${p%.prom} reports MongoDB reachable"
done
done_testing
