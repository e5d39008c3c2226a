# tests/lib/aggpart.sh — the partitioned hot tier as the aggregator's
# partition tests read it (REDIS_PARTITIONS=N on one Redis, or a Redis
# Cluster): every partition's keys carry a tag, e.g. transactions{p3:0},
# agg:2026-01-02:deposit{p3:0}; the tests read them back node by node, with
# redis-cli only (no code under test).  Source it after tap.sh; it defines
# functions only.  AP_PORTS (array) lists the ports to read: one Redis, or
# every node of a cluster (only primaries are read: ap_primaries).
#
#   ap_primaries            the ports of AP_PORTS that answer ROLE as a master
#   ap_streams PORT         the partition streams on that node (transactions{…})
#   ap_totals               every agg hash over all partitions, the tag cut off and the
#                           cells summed: sorted lines "agg:DAY:TYPE METHOD CENTS"
#                           (the form of agg_oracle in tests/lib/aggregator_e2e.sh)
#   ap_oracle DUMP          the expected lines from partpub's dump (Python, no code under test)
#   ap_drained N            every one of the N partition streams delivered and acknowledged
#   ap_pending NAME         entries pending for consumer NAME over all partitions
#   ap_pairs_load           remember "PORT STREAM" of every partition stream now (AP_PAIRS),
#                           for ap_pending_fast: no scan, one redis-cli per partition
#   ap_pending_fast NAME    ap_pending over AP_PAIRS (valid until the topology changes)
#   ap_dead_letters         XLEN summed over the dead-letter streams transactions:rejected{…}
#   ap_clock                the greatest of the partition clocks system:virtual_clock{…}
#   ap_tags_with_hashes     how many partitions hold at least one agg hash
#   ap_check_dump DUMP N    the end checks of a partition test (TAP lines): the totals
#                           summed over the partitions exact against ap_oracle DUMP, all N
#                           partitions holding hashes, each malformed entry dead-lettered
#                           once, the greatest clock the greatest timestamp of DUMP
#                           (writes want.txt and got.txt in the current directory)
#   ap_cluster_up NAME [P [R]]  a real Redis Cluster for the test (tests/lib/cluster.sh,
#                           sourced by the caller; P primaries with R replicas each,
#                           3 and 1 by default) under $TXAGG_TEST_TMP/NAME-PID: sets CL,
#                           AP_PORTS and REDIS_CLUSTER (exported); its EXIT trap kills
#                           the processes of the caller's array `pid` (CONT, KILL),
#                           reaps them and stops the cluster; bails out when it fails
. "$TXAGG_ROOT/tests/lib/stream.sh"

ap_primaries() {
    local p
    for p in "${AP_PORTS[@]}"; do
        [ "$(redis-cli -p "$p" ROLE 2>/dev/null | head -1)" = master ] && echo "$p"
    done
}

ap_scan() { redis-cli -p "$1" --scan --pattern "$2" 2>/dev/null; }

ap_streams() { ap_scan "$1" 'transactions{*' ; }

ap_totals() {
    local p k
    for p in $(ap_primaries); do
        for k in $(ap_scan "$p" 'agg:*'); do
            redis-cli -p "$p" HGETALL "$k" | paste - - | while read -r m v; do echo "$k $m $v"; done
        done
    done | python3 -c '
import sys, re
from collections import defaultdict
tot = defaultdict(int)
for line in sys.stdin:
    k, m, v = line.split()
    tot[(re.sub(r"\{[^}]*\}$", "", k), m)] += int(v)
for (k, m), v in sorted(tot.items()):
    print(k, m, v)'
}

ap_oracle() {
    python3 - "$1" <<'PY'
import sys
from collections import defaultdict
tot = defaultdict(int)
for line in open(sys.argv[1]):
    p = line.split()
    if p[0] == 'ok':
        tot[('agg:%s:%s' % (p[1][:10], p[2]), p[3])] += int(p[4])
for (k, m), v in sorted(tot.items()):
    print(k, m, v)
PY
}

ap_drained() {
    local p k seen=0
    for p in $(ap_primaries); do
        for k in $(ap_streams "$p"); do
            STREAM_KEY=$k stream_drained redis-cli -p "$p" || return 1
            seen=$((seen + 1))
        done
    done
    [ "$seen" = "$1" ]
}

ap_pending() {
    local p k n total=0
    for p in $(ap_primaries); do
        for k in $(ap_streams "$p"); do
            n=$(redis-cli -p "$p" XPENDING "$k" aggregators - + 100000 "$1" 2>/dev/null | grep -cE '^[0-9]+-[0-9]+$')
            total=$((total + n))
        done
    done
    echo "$total"
}

ap_pairs_load() {
    local p k
    AP_PAIRS=()
    for p in $(ap_primaries); do
        for k in $(ap_streams "$p"); do AP_PAIRS+=("$p $k"); done
    done
}

ap_pending_fast() {
    local pair n total=0
    for pair in "${AP_PAIRS[@]}"; do
        # shellcheck disable=SC2086
        n=$(redis-cli -p ${pair% *} XPENDING "${pair#* }" aggregators - + 100000 "$1" 2>/dev/null |
            grep -cE '^[0-9]+-[0-9]+$')
        total=$((total + n))
    done
    echo "$total"
}

ap_dead_letters() {
    local p k total=0
    for p in $(ap_primaries); do
        for k in $(ap_scan "$p" 'transactions:rejected{*'); do
            total=$((total + $(redis-cli -p "$p" XLEN "$k")))
        done
    done
    echo "$total"
}

ap_clock() {
    local p k
    for p in $(ap_primaries); do
        for k in $(ap_scan "$p" 'system:virtual_clock{*'); do redis-cli -p "$p" GET "$k"; done
    done | sort | tail -1
}

ap_tags_with_hashes() {
    local p
    for p in $(ap_primaries); do ap_scan "$p" 'agg:*'; done | sed -n 's/.*\({[^}]*}\)$/\1/p' | sort -u | wc -l
}

ap_check_dump() {
    local dump=$1 parts=$2
    ap_oracle "$dump" >want.txt
    ap_totals >got.txt
    check "the oracle has totals to compare ($(wc -l <want.txt) method-days)" [ "$(wc -l <want.txt)" -gt 100 ]
    if cmp -s want.txt got.txt; then ok "every daily total summed over the partitions is exact to the cent"
    else not_ok "every daily total summed over the partitions is exact to the cent" "$(diff want.txt got.txt | head -10)"; fi
    is "$(ap_tags_with_hashes)" "$parts" "every partition holds daily hashes (the stripes spread)"
    is "$(ap_dead_letters)" "$(grep -c '^bad' "$dump")" "each malformed entry is dead-lettered exactly once"
    is "$(ap_clock)" "$(awk '$1 == "ok" {print $2}' "$dump" | sort | tail -1)" \
        "the greatest partition clock is the greatest timestamp"
}

_ap_cluster_down() {
    local p
    for p in "${pid[@]}"; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    for p in "${pid[@]}"; do wait "$p" 2>/dev/null; done # not a bare wait: the nodes are our children too
    cluster_stop "$CL"
}

ap_cluster_up() {
    CL="$TXAGG_TEST_TMP/$1-$$"
    trap _ap_cluster_down EXIT
    cluster_start "$CL" "${2:-3}" "${3:-1}" || bail_out "the cluster did not start"
    export REDIS_CLUSTER
    REDIS_CLUSTER=$(cluster_seeds "$CL")
    read -ra AP_PORTS <<<"$(cluster_ports "$CL" | tr '\n' ' ')"
}
