#!/usr/bin/env bash
# Redis stops answering (SIGSTOP of the test run's server) for longer than the
# lease while the persistor is in the middle of a batch, then resumes.  The
# persistor writes nothing to MongoDB without a confirmed lease, counts the
# lease as lost, takes a new one (a higher fence) and recovers its own pending
# batch: every amount is counted exactly once, and the Redis outage was logged
# exactly once each way.  The server is shared by the run: always resumed.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"
pst_outage_setup TXAGG_TEST_REDIS_PID 8 2025-03-01 # pst_setup; PST_DEP_PID; traps resume it; PST_DAYS seeded

pst_pause_mid_batch PERSIST_INTERVAL_MS=200 PERSIST_LEASE_MS=2000 REDIS_TIMEOUT_MS=500
sleep 5
pst_dep_resume
check "the persistor is still running after the outage" kill -0 "$PST_PID"

check "the archive completes after Redis resumes" wait_until 120 pst_all_archived
pst_stop "$PST_PID"
is "$?" 0 "the persistor exits 0 on SIGTERM"

pst_check_ledger_exact
is "$(probe_state max_batches)" 1 "no day was applied twice"

log=$(cat pst.log)
is "$(grep -c 'msg="dependency unreachable, retrying" dep="redis' <<<"$log")" 1 "the Redis outage was logged once"
is "$(grep -c 'msg="dependency reachable again" dep="redis' <<<"$log")" 1 "the recovery from it was logged once"
like "$log" 'msg="lease lost"' "the lease, not renewed for its TTL, counted as lost"
is "$(grep -c 'msg="lease acquired"' <<<"$log")" 2 "a new lease was taken after the outage"
like "$log" 'msg="recovering archive batch" id=[0-9]+-f1 ' "and the batch frozen under the first fence was recovered"
is "$(grep -c 'dep=mongodb' <<<"$log")" 1 "MongoDB was never reported down meanwhile"

done_testing
