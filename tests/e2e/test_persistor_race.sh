#!/usr/bin/env bash
# Two persistors race for the lease for a minute (15 s at TXAGG_TEST_SCALE=
# small) under a short interval, while rows keep arriving (late ones too) and
# the virtual clock keeps moving; now and then one of them is killed (SIGKILL
# or SIGTERM) and restarted, so the lease changes hands.  Then: every amount
# is counted exactly once; at no sampled instant was more than one batch in
# flight; and only the lease holder froze batches — every batch id's fence
# was acquired by the very process that logged freezing it, and no fence was
# acquired twice.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"
pst_setup # a directory of its own; RETENTION_DAYS=3; EXIT trap pst_cleanup

secs=$(scaled 60 15)
env_pst=(PERSIST_INTERVAL_MS=100 PERSIST_LEASE_MS=1000 LOG_LEVEL=DEBUG)

probe seed ledger 7 2026-01-01 20 2000 || bail_out "seeding failed"

declare -A pid_of
run=0
start() { # start replica $1 with a fresh log
    run=$((run + 1))
    pst_start "r$1-$run" "${env_pst[@]}"
    pid_of[$1]=$PST_PID
}
start a
start b

probe writer ledger 99 "$((secs * 1000))" 12 400 >writer.out &
writer=$!
PST_PIDS+=("$writer")

end=$((SECONDS + secs))
turn=0
while ((SECONDS < end - 2)); do
    sleep "$((RANDOM % 3 + 2))"
    who=$([ $((turn % 2)) = 0 ] && echo a || echo b)
    if ((turn % 3 == 0)); then kill -9 "${pid_of[$who]}"; else kill -TERM "${pid_of[$who]}"; fi
    wait "${pid_of[$who]}" 2>/dev/null
    start "$who"
    turn=$((turn + 1))
done
wait "$writer"
is "$?" 0 "the writer ran to the end"
echo "# $(cat writer.out), $turn restarts"

check "the two persistors archive everything eligible" wait_until 120 pst_all_archived
pst_stop "${pid_of[a]}"
rca=$?
pst_stop "${pid_of[b]}"
rcb=$?
is "$rca/$rcb" "0/0" "both persistors exit 0 on SIGTERM"

pst_check_ledger_exact
like "$(cat writer.out)" ' max_pending=[01] ' "at most one batch was in flight at every sampled instant"
like "$(cat writer.out)" ' fence_mismatch=0 ' "each pending batch's record carries its id's fence"

# Fences: per process log, what it acquired and what it froze.
all_acquired=() bad=0 frozen_total=0
for f in r*.log; do
    acquired=$(sed -n 's/.*msg="lease acquired" fence=\([0-9]*\).*/\1/p' "$f" | sort -u)
    all_acquired+=($acquired)
    for fr in $(sed -n 's/.*msg="batch frozen" id=[0-9]*-f\([0-9]*\) fence=\([0-9]*\).*/\1:\2/p' "$f"); do
        frozen_total=$((frozen_total + 1))
        idf=${fr%%:*} holder=${fr##*:}
        if [ "$idf" != "$holder" ] || ! grep -qx "$idf" <<<"$acquired"; then
            bad=$((bad + 1))
            echo "# $f froze a batch with fence $idf but acquired: $(echo $acquired)" >&2
        fi
    done
done
echo "# ${#all_acquired[@]} lease acquisitions, $frozen_total batches frozen"
is "$bad" 0 "every batch was frozen by the process holding its fence"
is "$(printf '%s\n' "${all_acquired[@]}" | sort | uniq -d | wc -l)" 0 "no fence was acquired twice"
check "the lease changed hands" [ "${#all_acquired[@]}" -ge 3 ]
check "batches were archived during the race" [ "$frozen_total" -ge 5 ]

done_testing
