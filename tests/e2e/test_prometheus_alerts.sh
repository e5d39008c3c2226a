#!/usr/bin/env bash
# A real Prometheus (Debian's) scrapes the four real services every second
# and evaluates the shipped rules, loaded unchanged from
# deploy/prometheus/txagg-rules.yml: every target is up (the importer while
# its paced import runs), the rules load, no backlog alert while the
# aggregators keep up; both aggregators are stopped (SIGSTOP) while rows flow
# and TxaggIngestBacklogGrowing fires (the importer's backlog figure is what
# is left to see); they continue and it resolves.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/system.sh" # with aggregator_e2e.sh, persistor.sh, apitest.sh
. "$TXAGG_ROOT/tests/lib/promtest.sh"
resume_aggregators() { for s in "${!SYS_AGG[@]}"; do kill -CONT "${SYS_AGG[$s]}" 2>/dev/null; done; }
sys_setup resume_aggregators # pst_setup; the EXIT trap resumes them, then sys_teardown
prom_need_tools

ALERT=TxaggIngestBacklogGrowing
RULES=$TXAGG_ROOT/deploy/prometheus/txagg-rules.yml
# The shipped `for:` of the alert, in seconds (e.g. "30s", "1m").
for_s=$(/usr/bin/python3 - "$RULES" "$ALERT" <<'EOF'
import re, sys, yaml
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]]
f = next(r for r in rules if r.get("alert") == sys.argv[2]).get("for", "0s")
print(sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)([smh])", f)))
EOF
) || bail_out "cannot read the rules"

# About 330 rows/s for ~120 s: the import outlives the test, which stops it.
speed=$(prom_paced_csv in.csv 40000 120 --days 20 --start 2026-01-01 --seed 9 --sleep-ms 4)
PROM_AGG_SLOTS="1 2" prom_services_start
prom_importer_start in.csv "$speed"

job() { # job NAME TARGET…: one scrape job
    local name=$1 t
    shift
    printf '  - job_name: %s\n    static_configs:\n      - targets:\n' "$name"
    for t in "$@"; do printf '          - "%s"\n' "$t"; done
}
{
    printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n'
    printf 'rule_files:\n  - "%s"\n' "$RULES"
    printf 'scrape_configs:\n'
    job importer "127.0.0.1:${PROM_PORT[importer]}"
    job aggregator "127.0.0.1:${PROM_PORT[aggregator1]}" "127.0.0.1:${PROM_PORT[aggregator2]}"
    job persistor "127.0.0.1:${PROM_PORT[persistor]}"
    job api "127.0.0.1:${PROM_PORT[api]}"
} >prometheus.yml
check "promtool accepts the generated configuration with the shipped rules" promtool check config prometheus.yml
prom_server_start prometheus.yml

targets_up() { promcheck targets "$PROM_URL" importer aggregator persistor api >targets.txt; }
if wait_until 60 targets_up; then ok "all four services' targets are up (importer, 2 aggregators, persistor, api)"
else not_ok "all four services' targets are up (importer, 2 aggregators, persistor, api)" "$(cat targets.txt)"; fi
rules=$(curl -fsS "$PROM_URL/api/v1/rules")
like "$rules" "\"name\":\"$ALERT\"" "Prometheus loaded the shipped alerting rules"
like "$rules" '"health":"ok"' "the rules evaluate without error"
backlog() { curl -fsS "$PROM_URL/api/v1/query?query=txagg:ingest_backlog:max" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'; }
has_backlog_figure() { [ -n "$(backlog)" ]; }
check "the recorded ingest backlog has a value" wait_until 30 has_backlog_figure

state() { promcheck alert-state "$PROM_URL" "$ALERT"; }
state_is() { [ "$(state)" = "$1" ]; }
sleep 3 # a few evaluations with the aggregators keeping up
is "$(state)" inactive "no backlog alert while the aggregators keep up (backlog $(backlog))"

t0=$SECONDS
for s in 1 2; do kill -STOP "${SYS_AGG[$s]}"; done
if wait_until $((for_s + 90)) state_is firing; then
    ok "stopping both aggregators while rows flow fires $ALERT (after $((SECONDS - t0)) s; for: ${for_s}s)"
else
    not_ok "stopping both aggregators while rows flow fires $ALERT" "state $(state) after $((SECONDS - t0)) s" \
        "backlog $(backlog)" "$(tail -3 importer.log)"
fi
check "the importer is still publishing" txagg_pid_running "$SYS_IMP"

t0=$SECONDS
resume_aggregators
if wait_until 90 state_is inactive; then ok "the aggregators continue and $ALERT resolves (after $((SECONDS - t0)) s)"
else not_ok "the aggregators continue and $ALERT resolves" "state $(state), backlog $(backlog)"; fi

kill -TERM "$SYS_IMP"
wait "$SYS_IMP"
is "$?" 3 "the importer stops on SIGTERM (exit 3)"
sys_forget "$SYS_IMP"
done_testing
