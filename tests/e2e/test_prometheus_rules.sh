#!/usr/bin/env bash
# The shipped Prometheus rules (deploy/prometheus/txagg-rules.yml) are valid
# (`promtool check rules`), so is the example scrape configuration, and every
# alert behaves as specified on synthetic series (`promtool test rules`
# tests/e2e/data/prometheus/txagg-rules.test.yml: firing and silent cases,
# labels and rendered annotations compared exactly).  Every alert has a
# summary, a description, a runbook section in docs/OPERATIONS.md and tests
# both ways; every metric a rule reads is one a service exports.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/promtest.sh"
prom_need_tools

RULES=$TXAGG_ROOT/deploy/prometheus/txagg-rules.yml
TESTS=$TXAGG_ROOT/tests/e2e/data/prometheus/txagg-rules.test.yml
RUNBOOK=$TXAGG_ROOT/docs/OPERATIONS.md

run() { # run NAME COMMAND…: passes when COMMAND exits 0; its output as diagnostics otherwise
    local name=$1 out rc
    shift
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc = 0 ]; then ok "$name"; else not_ok "$name" "exit $rc"; printf '#   %s\n' "$out" | head -60; fi
}
run "promtool check rules accepts deploy/prometheus/txagg-rules.yml" promtool check rules "$RULES"
# The example configuration names its rule file relative to itself: checked too.
run "promtool check config accepts deploy/prometheus/prometheus.yml" \
    promtool check config "$TXAGG_ROOT/deploy/prometheus/prometheus.yml"
run "promtool test rules: every alert fires and stays silent as its unit tests expect" promtool test rules "$TESTS"
run "every alert has summary, description, runbook, a section in docs/OPERATIONS.md and tests both ways" \
    promcheck alerts "$RULES" "$TESTS" "$RUNBOOK"
run "every metric the rules read is exported by a service" promcheck rules "$RULES"

# The unit tests can fail: a rule made too eager must be caught.
mkdir -p m/deploy/prometheus m/t/e/d/p
sed 's/for: 30s/for: 0s/' "$RULES" >m/deploy/prometheus/txagg-rules.yml
cp "$TESTS" m/t/e/d/p/ # its rule file is ../../../../deploy/prometheus/txagg-rules.yml
check "the rule tests catch a rule changed to fire at once (for: 0s)" \
    bash -c '! promtool test rules m/t/e/d/p/txagg-rules.test.yml >/dev/null 2>&1'
done_testing
