#!/usr/bin/env bash
# The persistor is killed with SIGKILL over and over while it archives many
# days (and late rows keep arriving for archived days); each restart recovers
# the batch the last one left.  At the end every seeded amount is counted
# exactly once, nothing is left frozen or pending, and no day lists a batch
# twice.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"
pst_setup # a directory of its own; RETENTION_DAYS=3; EXIT trap pst_cleanup

days=$(scaled 400 120)
rows=$(scaled 16000 4000)
rounds=$(scaled 25 10)
env_pst=(PERSIST_INTERVAL_MS=50 PERSIST_LEASE_MS=600)

probe seed ledger 42 2025-01-01 "$days" "$rows" || bail_out "seeding failed"
is "$(probe_state eligible)" "$((days - 3))" "seeded $days days, all but the last 3 eligible"

kills=0 pending_at_kill=0
for ((round = 1; round <= rounds; round++)); do
    pst_start "run$round" "${env_pst[@]}"
    # Kill it some time after it took the lease: in the middle of a batch.
    wait_until 10 grep -qs 'msg="lease acquired"' "run$round.log"
    sleep "0.$((RANDOM % 35 + 5))"
    kill -9 "$PST_PID"
    wait "$PST_PID" 2>/dev/null
    kills=$((kills + 1))
    [ "$(rcli SCARD system:archive:pending)" = 1 ] && pending_at_kill=$((pending_at_kill + 1))
    # Late rows for days that may be archived already (the clock stays put).
    if ((round % 3 == 0)); then probe writer ledger "$round" 200 60 1000000000 >/dev/null; fi
done
echo "# $kills kills, $pending_at_kill with a batch pending"
check "some kills hit a batch in flight" [ "$pending_at_kill" -ge 1 ]

pst_start final "${env_pst[@]}"
final=$PST_PID
check "a last persistor finishes the archive" wait_until 120 pst_all_archived
pst_stop "$final"
is "$?" 0 "the persistor exits 0 on SIGTERM"

pst_check_ledger_exact
is "$(probe_state batch_records)" 0 "no batch record is left"
is "$(probe_state docs)" "$((days - 3))" "one document per archived day"
recovered=$(cat run*.log final.log | grep -c 'msg="recovering archive batch"')
echo "# $recovered batches finished by recovery"
check "restarts recovered the batches they found pending" [ "$recovered" -ge 1 ]
like "$(cat final.log)" 'msg="stopped"' "the last persistor logged its stop"

done_testing
