#!/usr/bin/env bash
# The shell tests' helpers are one small library with no side effects:
#
# 1. Sourcing any tests/lib/*.sh, in a subshell, leaves the working
#    directory, the environment (`env`) and the traps as they were: a
#    helper file defines functions and variables only, and a test's setup
#    is an explicit call (pst_setup).  The checker is first run on scratch
#    files that cd, export or set a trap, so it is shown to catch each.
# 2. One size switch and one wait: `scaled FULL SMALL` and `wait_until`
#    (tests/lib/helpers.sh) are the only definitions; no other shell file
#    under tests/ reads TXAGG_TEST_SCALE (tests/run.sh sets it) or waits
#    with scripts/lib/common.sh's txagg_wait_cmd (the product scripts' own).
# 3. wait_until keeps its contract: true as soon as the command succeeds;
#    false only after SECONDS of wall time and SECONDS/INTERVAL tries.
. "$TXAGG_ROOT/tests/lib/tap.sh"

# The state a sourced file could change, one item a line.
snapshot() {
    echo "pwd $PWD"
    env | sort | sed 's/^/env /'
    trap -p | sed 's/^/trap /'
}

# sourcing_is_clean FILE — source FILE in a subshell; 0 when the snapshot
# is unchanged, else 1 with the difference on stdout.
sourcing_is_clean() {
    (
        before=$(snapshot)
        . "$1" >/dev/null 2>&1 </dev/null
        after=$(snapshot)
        [ "$before" = "$after" ] && exit 0
        diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -5
        exit 1
    )
}

# --- 1. the checker on known good and bad files, then on every helper file ----
mkdir -p fixtures
printf 'f() { cd /; }\nV=1\ndeclare -A M\n' >fixtures/good.sh
printf 'cd "$(mktemp -d -p "$PWD")"\n' >fixtures/cd.sh
printf 'export TXAGG_HELPER_CHECK=1\n' >fixtures/export.sh
printf 'cleanup() { :; }\ntrap cleanup EXIT\n' >fixtures/trap.sh
printf 'trap "" INT\n' >fixtures/trap_int.sh
check "the checker passes a file that only defines functions and variables" sourcing_is_clean fixtures/good.sh
for bad in cd export trap trap_int; do
    if out=$(sourcing_is_clean "fixtures/$bad.sh"); then
        not_ok "the checker catches a file that sources with a side effect ($bad)"
    else
        ok "the checker catches a file that sources with a side effect ($bad: $(echo "$out" | tail -1))"
    fi
done

n=0
for f in "$TXAGG_ROOT"/tests/lib/*.sh; do
    n=$((n + 1))
    rel=${f#"$TXAGG_ROOT"/}
    if out=$(sourcing_is_clean "$f"); then
        ok "sourcing $rel leaves the directory, the environment and the traps unchanged"
    else
        not_ok "sourcing $rel leaves the directory, the environment and the traps unchanged" "$out"
    fi
done
check "there are helper files to check ($n)" [ "$n" -ge 5 ]

# --- 2. one scale switch, one wait ------------------------------------------------
cd "$TXAGG_ROOT" || bail_out "no checkout"
shfiles=$(find tests -name '*.sh' ! -name test_test_helpers.sh | sort)
defs=$(grep -oE '^[[:space:]]*[A-Za-z_]*scale[A-Za-z_]*\(\)' $shfiles | tr -d ' ')
is "$defs" 'tests/lib/helpers.sh:scaled()' "one size helper: scaled in tests/lib/helpers.sh"
# a function named for waiting is wait_until itself or a one-line use of it
defs=$(grep -E '^[[:space:]]*[A-Za-z_]*wait[A-Za-z_]*\(\)' $shfiles | grep -v 'wait_until ' | cut -d'(' -f1 | tr -d ' ')
is "$defs" 'tests/lib/helpers.sh:wait_until' "one polling helper: wait_until in tests/lib/helpers.sh"
readers=$(grep -nE '\$\{?TXAGG_TEST_SCALE' $shfiles | grep -vE '^tests/(lib/helpers|run)\.sh:')
is "$readers" "" "no shell test reads TXAGG_TEST_SCALE itself (it calls scaled)"
users=$(grep -nE '\btxagg_wait_cmd\b' $shfiles | grep -vE '^[^:]+:[0-9]+:[[:space:]]*#')
is "$users" "" "no shell test waits with txagg_wait_cmd (it calls wait_until)"
cd - >/dev/null || bail_out "no scratch directory"

# --- 3. wait_until ---------------------------------------------------------------
t0=$SECONDS
check "wait_until succeeds at once when the command does" wait_until 30 true
check "... without waiting" [ $((SECONDS - t0)) -le 2 ]
: >tries
fail_counting() { echo x >>tries; return 1; }
t0=$SECONDS
if wait_until 1 fail_counting; then not_ok "wait_until fails when the command never succeeds"; else
    ok "wait_until fails when the command never succeeds"
fi
check "... after at least its deadline ($((SECONDS - t0)) s)" [ $((SECONDS - t0)) -ge 1 ]
check "... and at least SECONDS/0.1 tries ($(wc -l <tries))" [ "$(wc -l <tries)" -ge 10 ]
: >tries
wait_until -i 0.5 1 fail_counting
check "with -i 0.5, at least SECONDS/0.5 tries ($(wc -l <tries))" [ "$(wc -l <tries)" -ge 2 ]
: >tries
third_time() { echo x >>tries; [ "$(wc -l <tries)" -ge 3 ]; }
check "wait_until returns once the command succeeds" wait_until 30 third_time
is "$(wc -l <tries)" 3 "... having tried it exactly until then"
SCALE_WAS=${TXAGG_TEST_SCALE-unset}
is "$(TXAGG_TEST_SCALE=small scaled 100 10) $(TXAGG_TEST_SCALE= scaled 100 10)" "10 100" "scaled FULL SMALL: SMALL only under TXAGG_TEST_SCALE=small"
is "${TXAGG_TEST_SCALE-unset}" "$SCALE_WAS" "... and leaves TXAGG_TEST_SCALE alone"

done_testing
