#!/usr/bin/env bash
# MongoDB stops answering (SIGSTOP of the test run's server) for 10 s while
# the persistor is in the middle of writing a batch, then resumes.  The
# persistor waits it out and finishes: every amount is counted exactly once,
# nothing is left frozen, and it logged the outage exactly once — one
# "unreachable" line and one "reachable again" line for MongoDB.
# The server is shared by the whole run: it is always resumed (trap).
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"
pst_outage_setup TXAGG_TEST_MONGO_PID 3 2025-06-01 # pst_setup; PST_DEP_PID; traps resume it; PST_DAYS seeded

# MongoDB calls time out after 3 s (a loaded machine can make FerretDB take
# over a second); the lease outlives a few of them.
# Mid-cycle (a batch is frozen and being written), MongoDB is stopped.
pst_pause_mid_batch PERSIST_INTERVAL_MS=200 PERSIST_LEASE_MS=10000 MONGODB_TIMEOUT_MS=3000
stopped_at=$SECONDS
frozen_at_stop=$(rcli SMEMBERS system:archive:pending)
sleep 10
pst_dep_resume
echo "# MongoDB paused for $((SECONDS - stopped_at)) s during batch $frozen_at_stop"
check "the persistor is still running after the outage" kill -0 "$PST_PID"

check "the archive completes after MongoDB resumes" wait_until 120 pst_all_archived
check "the persistor saw MongoDB back" wait_until 60 grep -q 'msg="dependency reachable again" dep=mongodb' pst.log
pst_stop "$PST_PID"
is "$?" 0 "the persistor exits 0 on SIGTERM"

pst_check_ledger_exact
is "$(probe_state docs)" "$((PST_DAYS - 3))" "one document per archived day"

log=$(cat pst.log)
down=$(grep -c 'msg="dependency unreachable, retrying" dep=mongodb' <<<"$log")
up=$(grep -c 'msg="dependency reachable again" dep=mongodb' <<<"$log")
is "$down" 1 "the MongoDB outage was logged once"
is "$up" 1 "the recovery from it was logged once"
is "$(grep -c 'dep="redis' <<<"$log" | tr -d ' ')" 1 "Redis was reported reachable once, and never down"
echo "# $(grep -c 'msg="lease lost"' <<<"$log") lease losses during the outage"

done_testing
