#!/usr/bin/env bash
# A rolling upgrade: entries in the previous format (fields ts, type, method,
# cents, src — what importers before the one-field entry wrote) are still in
# the stream, some undelivered and some pending for an aggregator of the old
# version that is gone, mixed with entries in the current format (one field,
# tx), malformed ones of both formats among them.  The new aggregator claims
# the old one's pending entries, reads both formats, and every total is exact
# to the cent against an independent sum; each malformed entry is
# dead-lettered once; nothing stays pending.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/aggregator_e2e.sh"

PUB="$TXAGG_TESTBIN/tools/txpub"
[ -x "$PUB" ] || bail_out "txpub not built ($PUB)"
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT

rm -f dump.txt
"${R[@]}" XGROUP CREATE transactions aggregators 0 MKSTREAM >/dev/null
# 1. the old importer's entries; an old aggregator read 3,000 of them and died
check "previous-format entries published" \
    "$PUB" --from 0 --count 10000 --seed 5 --days 12 --bad-every 101 --format previous --dump dump.txt
"${R[@]}" XREADGROUP GROUP aggregators old-aggregator-1 COUNT 3000 STREAMS transactions '>' >/dev/null
is "$(agg_consumer_pending old-aggregator-1)" 3000 "3,000 previous-format entries are pending for the old aggregator"
# 2. the new importer goes on in the current format
check "current-format entries published" \
    "$PUB" --from 10000 --count 10000 --seed 5 --days 12 --bad-every 101 --format current --dump dump.txt
like "$("${R[@]}" XREVRANGE transactions + - COUNT 1)" '^tx$' "the newest entry has the one field tx"

# 3. the new aggregator
CONSUMER_NAME=new-aggregator CLAIM_IDLE_MS=1000 LOG_LEVEL=INFO "$TXAGG_BIN/aggregator" 2>agg.log &
pid=$!
check "the group drains: everything delivered and acknowledged" agg_wait_drained 120
is "$(agg_consumer_pending old-aggregator-1)" 0 "the old aggregator's pending entries were claimed"
agg_check_dump dump.txt
is "$("${R[@]}" XLEN transactions:rejected)" "$(agg_oracle_bad dump.txt)" \
    "each malformed entry of either format is dead-lettered exactly once"
is "$("${R[@]}" GET system:virtual_clock)" "$(agg_oracle_max_ts dump.txt)" "the clock is the greatest timestamp"
kill -TERM "$pid"
wait "$pid"
is "$?" 0 "the aggregator exits 0 on SIGTERM"
pid=
done_testing
