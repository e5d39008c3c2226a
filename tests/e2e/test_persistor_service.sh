#!/usr/bin/env bash
# The persistor as a service: one of two replicas holds the lease and
# archives, the other stands by; SIGTERM makes the holder release the lease
# and exit 0, and the standby takes over at once (well before the lease TTL).
# /health, /ready and /metrics answer on METRICS_PORT; /ready is 503 while
# MongoDB is unreachable.  A write concern that cannot confirm a write
# (w=0) is refused at start with exit 2.  SIGTERM in the middle of a batch
# finishes that batch first.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"
pst_setup # a directory of its own; RETENTION_DAYS=3; EXIT trap pst_cleanup
. "$TXAGG_ROOT/scripts/lib/common.sh"

metric() { curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" | sed -n "s/^$2 //p"; }
leader_is() { [ "$(metric "$1" txagg_persistor_leader)" = "$2" ]; }
lease_value() { rcli GET system:persistor:lease; }

probe seed ledger 5 2026-02-01 12 600 || bail_out "seeding failed"

pa=$(txagg_free_port)
pb=$(txagg_free_port)
lease=20000 # long: a takeover that waited for the TTL would miss the checks below
pst_start a METRICS_PORT="$pa" PERSIST_INTERVAL_MS=200 PERSIST_LEASE_MS=$lease
a=$PST_PID
check "replica a answers /health" txagg_wait_http "http://127.0.0.1:$pa/health" 20
check "replica a becomes the leader" wait_until 20 leader_is "$pa" 1
pst_start b METRICS_PORT="$pb" PERSIST_INTERVAL_MS=200 PERSIST_LEASE_MS=$lease
b=$PST_PID
check "replica b answers /health" txagg_wait_http "http://127.0.0.1:$pb/health" 20
check "replica b stands by" wait_until 20 leader_is "$pb" 0

check "the leader archives the eligible days" wait_until 60 pst_all_archived
is "$(probe compare ledger >/dev/null; echo $?)" 0 "hot + cold equal the ledger exactly"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pa/ready")" 200 "/ready is 200 with Redis and MongoDB up"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pb/ready")" 200 "the standby is ready too"
m=$(curl -fsS "http://127.0.0.1:$pa/metrics")
like "$m" 'txagg_persistor_batches_completed_total [1-9]' "/metrics counts completed batches"
like "$m" 'txagg_persistor_day_documents_archived_total 9' "/metrics counts the 9 archived days"
like "$m" 'txagg_persistor_lease_acquisitions_total 1' "/metrics counts the lease acquisition"
like "$m" 'txagg_persistor_cycle_duration_seconds_count [1-9]' "/metrics has the cycle duration histogram"
like "$m" 'txagg_mongo_errors_total 0' "/metrics counts MongoDB errors"

held=$(lease_value)
t0=$SECONDS
pst_stop "$a"
is "$?" 0 "the leader exits 0 on SIGTERM"
like "$(cat a.log)" 'msg="lease released"' "it released the lease"
check "the standby takes over" wait_until 15 leader_is "$pb" 1
check "well before the lease would have lapsed" [ $((SECONDS - t0)) -lt $((lease / 1000)) ]
isnt "$(lease_value)" "$held" "the lease holds a new token"

# Late rows for archived days go on being archived by the new leader.
probe writer ledger 11 500 30 1000000000 >/dev/null
check "the new leader archives the late rows" wait_until 60 pst_all_archived
is "$(probe compare ledger >/dev/null; echo $?)" 0 "still exact after the takeover"
pst_stop "$b"
is "$?" 0 "the new leader exits 0 on SIGTERM"
is "$(rcli EXISTS system:persistor:lease)" 0 "no lease is left behind"

# MongoDB unreachable: alive, not ready, and it does not take the lease.
pc=$(txagg_free_port)
dead=$(txagg_free_port)
pst_start c METRICS_PORT="$pc" MONGODB_URI="mongodb://127.0.0.1:$dead" MONGODB_TIMEOUT_MS=300 PERSIST_INTERVAL_MS=200
c=$PST_PID
check "with MongoDB down /health still answers" txagg_wait_http "http://127.0.0.1:$pc/health" 20
not_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pc/ready")" = 503 ]; }
check "with MongoDB down /ready is 503" wait_until 20 not_ready
pst_stop "$c"
is "$?" 0 "it still exits 0 on SIGTERM"
is "$(grep -c 'msg="dependency unreachable, retrying" dep=mongodb' c.log)" 1 "the outage is logged once"

# SIGTERM in the middle of a batch: the batch in hand is finished first.
rcli FLUSHALL >/dev/null
rm -f ledger2
probe seed ledger2 9 2024-01-01 300 3000 || bail_out "seeding failed"
pst_start d PERSIST_INTERVAL_MS=200
d=$PST_PID
batch_in_flight() { [ "$(rcli SCARD system:archive:pending)" = 1 ]; }
check "a batch is in flight" wait_until 60 batch_in_flight
pst_stop "$d"
is "$?" 0 "SIGTERM mid-batch: exit 0"
is "$(rcli SCARD system:archive:pending)" 0 "the batch in hand was finished, not left pending"
like "$(cat d.log)" 'msg="batch archived"' "and logged as archived"
check "the rest waits for the next holder" [ "$(probe_state eligible)" -gt 0 ]

out=$(MONGODB_WRITE_CONCERN=0 "$TXAGG_BIN/persistor" 2>&1 </dev/null)
is "$?" 2 "MONGODB_WRITE_CONCERN=0 is refused with exit 2"
like "$out" "MONGODB_WRITE_CONCERN" "naming the variable"

done_testing
