#!/usr/bin/env bash
# MongoDB stops answering (SIGSTOP of the test run's server) for 10 s while
# the persistor is in the middle of writing a batch, then resumes.  The
# persistor waits it out and finishes: every amount is counted exactly once,
# nothing is left frozen, and it logged the outage exactly once — one
# "unreachable" line and one "reachable again" line for MongoDB.
# The server is shared by the whole run: it is always resumed (trap).
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"

mongo_pid=${TXAGG_TEST_MONGO_PID:-}
[ -n "$mongo_pid" ] || bail_out "TXAGG_TEST_MONGO_PID is not set (run through tests/run.sh)"
resume_mongo() { kill -CONT "$mongo_pid" 2>/dev/null; }
trap 'resume_mongo; pst_cleanup' EXIT
trap 'resume_mongo; exit 1' INT TERM

days=$(scaled 300 150)
probe seed ledger 3 2025-06-01 "$days" "$((days * 20))" || bail_out "seeding failed"

# MongoDB calls time out after 3 s (a loaded machine can make FerretDB take
# over a second); the lease outlives a few of them.
pst_start pst PERSIST_INTERVAL_MS=200 PERSIST_LEASE_MS=10000 MONGODB_TIMEOUT_MS=3000
pst=$PST_PID
# Mid-cycle: a batch is frozen and being written.
batch_in_flight() { [ "$(rcli SCARD system:archive:pending)" = 1 ]; }
check "a batch is in flight" wait_until 60 batch_in_flight
kill -STOP "$mongo_pid"
stopped_at=$SECONDS
frozen_at_stop=$(rcli SMEMBERS system:archive:pending)
sleep 10
resume_mongo
echo "# MongoDB paused for $((SECONDS - stopped_at)) s during batch $frozen_at_stop"
check "the persistor is still running after the outage" kill -0 "$pst"

check "the archive completes after MongoDB resumes" wait_until 120 pst_all_archived
check "the persistor saw MongoDB back" wait_until 60 grep -q 'msg="dependency reachable again" dep=mongodb' pst.log
pst_stop "$pst"
is "$?" 0 "the persistor exits 0 on SIGTERM"

out=$(probe compare ledger)
is "$?" 0 "hot + cold equal the ledger exactly"
echo "# $out"
is "$(probe_state frozen_keys)" 0 "no frozen hash is left"
is "$(probe_state docs)" "$((days - 3))" "one document per archived day"

log=$(cat pst.log)
down=$(grep -c 'msg="dependency unreachable, retrying" dep=mongodb' <<<"$log")
up=$(grep -c 'msg="dependency reachable again" dep=mongodb' <<<"$log")
is "$down" 1 "the MongoDB outage was logged once"
is "$up" 1 "the recovery from it was logged once"
is "$(grep -c 'dep="redis' <<<"$log" | tr -d ' ')" 1 "Redis was reported reachable once, and never down"
echo "# $(grep -c 'msg="lease lost"' <<<"$log") lease losses during the outage"

done_testing
