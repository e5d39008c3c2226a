# tests/lib/aggregator_e2e.sh — helpers for the aggregator's end-to-end
# tests (tests/e2e/test_aggregator*.sh source it).
#
#   agg_oracle DUMP [FIRST_N]   expected hashes from a txpub dump, computed in
#                               Python (decimal text → int, no code under test):
#                               sorted lines "agg:DAY:TYPE METHOD CENTS"
#   agg_redis_totals            the same lines read back from Redis
#   agg_check_totals WANT NAME  one TAP check: Redis's daily hashes (agg_redis_totals,
#                               kept in got.txt) equal the sorted lines of WANT
#   agg_check_dump DUMP         the oracle's totals of DUMP (want.txt; one check that
#                               there are more than 100 method-days to compare), then
#                               agg_check_totals: every daily total is exact to the cent
#   agg_oracle_days DUMP        sorted distinct days of the valid entries
#   agg_oracle_max_ts DUMP      greatest timestamp of the valid entries
#   agg_oracle_bad DUMP         number of malformed entries
#   agg_group_field NAME        a field of the group's XINFO GROUPS entry
#   agg_wait_drained SECS       until the group has delivered and acknowledged all
#   agg_consumer_pending NAME   entries pending for one consumer of the group
#   agg_freeze_with_pending PID NAME   SIGSTOP a replica while it holds pending
#                               entries (tries ~5 s; entries must be flowing);
#                               prints how many (0: not caught); leaves it stopped
# (wait_until SECS CMD… comes from tests/lib/helpers.sh, via tests/lib/tap.sh)
# Sourcing defines functions and R only (no cd, no export, no trap).

. "$TXAGG_ROOT/tests/lib/stream.sh"
R=(redis-cli -p "$REDIS_PORT")

agg_oracle() {
    python3 - "$1" "${2:-0}" <<'EOF'
import sys
from collections import defaultdict
path, first = sys.argv[1], int(sys.argv[2])
tot = defaultdict(int)
with open(path) as f:
    for n, line in enumerate(f):
        if first and n >= first:
            break
        p = line.split()
        if p[0] != 'ok':
            continue
        ts, typ, method, cents = p[1], p[2], p[3], p[4]
        tot[('agg:%s:%s' % (ts[:10], typ), method)] += int(cents)
for (k, m), v in sorted(tot.items()):
    print(k, m, v)
EOF
}

agg_check_totals() {
    agg_redis_totals >got.txt
    if cmp -s "$1" got.txt; then ok "$2"; else not_ok "$2" "$(diff "$1" got.txt | head -10)"; fi
}

agg_check_dump() {
    agg_oracle "$1" >want.txt
    check "the oracle has totals to compare ($(wc -l <want.txt) method-days)" [ "$(wc -l <want.txt)" -gt 100 ]
    agg_check_totals want.txt "every daily total is exact to the cent"
}

agg_redis_totals() {
    local k
    for k in $("${R[@]}" --scan --pattern 'agg:*'); do
        "${R[@]}" HGETALL "$k" | paste - - | while read -r m v; do echo "$k $m $v"; done
    done | sort
}

agg_oracle_days() { awk '$1 == "ok" {print substr($2, 1, 10)}' "$1" | sort -u; }
agg_oracle_max_ts() { awk '$1 == "ok" {print $2}' "$1" | sort | tail -1; }
agg_oracle_bad() { grep -c '^bad' "$1"; }

agg_group_field() { stream_group_field "$1" "${R[@]}"; }

# Drained as tests/lib/stream.sh defines it (never the group's lag).
agg_drained() { stream_drained "${R[@]}"; }

agg_wait_drained() { wait_until "$1" agg_drained; }

agg_consumer_pending() {
    "${R[@]}" XPENDING transactions aggregators - + 100000 "$1" | grep -cE '^[0-9]+-[0-9]+$'
}


# SIGSTOP a replica while it holds pending entries: tests/tools/aggfreeze
# tries many times a second (a shell loop of redis-cli is too slow on a
# loaded machine); prints how many it holds, 0 when not caught in 5 s.
agg_freeze_with_pending() { # pid name
    "$TXAGG_TESTBIN/tools/aggfreeze" "$1" "$2" 5 || echo 0
}
