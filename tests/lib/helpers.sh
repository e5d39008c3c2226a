# tests/lib/helpers.sh — the small helpers every shell test shares, one
# definition each.  tests/lib/tap.sh and tests/lib/cluster.sh source it.
# Sourcing defines functions only (no cd, no export, no trap): a test's
# setup is an explicit call (e.g. pst_setup in tests/lib/persistor.sh).
#
#   wait_until [-i INTERVAL] SECONDS COMMAND…
#       0 as soon as COMMAND succeeds; 1 once it has failed for SECONDS of
#       wall time and at least SECONDS/INTERVAL times (INTERVAL 0.1 s by
#       default).  A loaded machine, where each try is slow, gets more time,
#       never less.  The one wait of the tests (never a fixed sleep).
#   scaled FULL SMALL
#       FULL, or SMALL when TXAGG_TEST_SCALE=small (the sanitizer run,
#       tests/run.sh): the one size switch of the tests.

wait_until() {
    local every=0.1 tenths=1 secs tries=0 t0=$SECONDS
    if [ "$1" = -i ]; then
        every=$2
        tenths=$(awk -v s="$every" 'BEGIN { t = int(s * 10 + 0.5); print (t < 1 ? 1 : t) }')
        shift 2
    fi
    secs=$1
    shift
    until "$@"; do
        tries=$((tries + 1))
        if [ $((SECONDS - t0)) -ge "$secs" ] && [ $((tries * tenths)) -ge $((secs * 10)) ]; then return 1; fi
        sleep "$every"
    done
}

scaled() {
    if [ "${TXAGG_TEST_SCALE:-}" = small ]; then echo "$2"; else echo "$1"; fi
}
