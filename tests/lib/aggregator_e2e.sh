# tests/lib/aggregator_e2e.sh — helpers for the aggregator's end-to-end
# tests (tests/e2e/test_aggregator*.sh source it).
#
#   agg_oracle DUMP [FIRST_N]   expected hashes from a txpub dump, computed in
#                               Python (decimal text → int, no code under test):
#                               sorted lines "agg:DAY:TYPE METHOD CENTS"
#   agg_redis_totals            the same lines read back from Redis
#   agg_oracle_days DUMP        sorted distinct days of the valid entries
#   agg_oracle_max_ts DUMP      greatest timestamp of the valid entries
#   agg_oracle_bad DUMP         number of malformed entries
#   agg_group_field NAME        a field of the group's XINFO GROUPS entry
#   agg_wait_drained SECS       until the group has delivered and acknowledged all
#   agg_consumer_pending NAME   entries pending for one consumer of the group
#   agg_freeze_with_pending PID NAME   SIGSTOP a replica while it holds pending
#                               entries (tries ~3 s; entries must be flowing);
#                               prints how many (0: not caught); leaves it stopped
# (wait_until SECS CMD… comes from tests/lib/tap.sh)

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

agg_redis_totals() {
    local k
    for k in $("${R[@]}" --scan --pattern 'agg:*'); do
        "${R[@]}" HGETALL "$k" | paste - - | while read -r m v; do echo "$k $m $v"; done
    done | sort
}

agg_oracle_days() { awk '$1 == "ok" {print substr($2, 1, 10)}' "$1" | sort -u; }
agg_oracle_max_ts() { awk '$1 == "ok" {print $2}' "$1" | sort | tail -1; }
agg_oracle_bad() { grep -c '^bad' "$1"; }

agg_group_field() {
    "${R[@]}" XINFO GROUPS transactions 2>/dev/null | awk -v f="$1" 'want {print; exit} $0 == f {want = 1}'
}


# Everything delivered (lag 0; when Redis cannot tell the lag, the group's
# last-delivered-id is the stream's last id) and nothing pending.
agg_drained() {
    local lag
    lag=$(agg_group_field lag)
    if [ -z "$lag" ]; then
        local last
        last=$("${R[@]}" XINFO STREAM transactions | awk 'want {print; exit} $0 == "last-generated-id" {want = 1}')
        [ "$(agg_group_field last-delivered-id)" = "$last" ] || return 1
    elif [ "$lag" != 0 ]; then
        return 1
    fi
    [ "$("${R[@]}" XPENDING transactions aggregators | head -1)" = 0 ]
}

agg_wait_drained() { wait_until "$1" agg_drained; }

agg_consumer_pending() {
    "${R[@]}" XPENDING transactions aggregators - + 100000 "$1" | grep -cE '^[0-9]+-[0-9]+$'
}

# The replica's connection is parked in a blocking read (CLIENT LIST flags=b):
# Redis still hands it entries, so stopped there it ends up holding some.
agg_blocked() {
    "${R[@]}" CLIENT LIST | grep -F " name=aggregator:$1 " | grep -q ' flags=b '
}

agg_has_pending() { [ "$(agg_consumer_pending "$1")" -gt 0 ]; }

# Stopping at random moments mostly misses: a replica that keeps up spends its
# time waiting, between short batches.  Stop it, and keep it stopped when it
# already holds entries or sits in a blocking read that will receive some.
agg_freeze_with_pending() { # pid name
    local pid=$1 name=$2 n=0 end=$((SECONDS + 3))
    while ((SECONDS < end)); do
        kill -STOP "$pid"
        if agg_has_pending "$name" || { agg_blocked "$name" && wait_until 1 agg_has_pending "$name"; }; then
            n=$(agg_consumer_pending "$name")
            break
        fi
        kill -CONT "$pid"
        sleep "0.00$((1 + RANDOM % 9))"
    done
    echo "$n"
}
