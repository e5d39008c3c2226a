# tests/lib/tap.sh — TAP output for shell tests (tests/e2e/*.sh).
#
#   . "$TXAGG_ROOT/tests/lib/tap.sh"
#   check "importer exits 2 on a missing file" [ "$rc" = 2 ]
#   is "$got" "$want" "totals match the reference"
#   done_testing
#
# Each check prints "ok N - name" or "not ok N - name" (with diagnostics on
# stderr); done_testing prints the plan and fails the script when any check
# failed or none ran.  tests/run.sh counts these lines.
#
#   check "the batch lands" wait_until 30 some_condition arg…
# polls a condition up to a deadline (never a fixed sleep); wait_until and
# scaled come from tests/lib/helpers.sh, sourced here.  Sourcing defines
# functions and the counters only.

. "$(dirname "${BASH_SOURCE[0]}")/helpers.sh"

TAP_N=0
TAP_FAILED=0

ok() {
    TAP_N=$((TAP_N + 1))
    echo "ok $TAP_N - $1"
}

not_ok() {
    TAP_N=$((TAP_N + 1))
    TAP_FAILED=$((TAP_FAILED + 1))
    echo "not ok $TAP_N - $1"
    [ $# -gt 1 ] && printf '#   %s\n' "${@:2}" >&2
    return 0
}

# check NAME COMMAND… — passes when COMMAND succeeds.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name" "command failed: $*"; fi
}

# is GOT WANT NAME
is() {
    if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3" "got:  $1" "want: $2"; fi
}

# isnt GOT UNWANTED NAME
isnt() {
    if [ "$1" != "$2" ]; then ok "$3"; else not_ok "$3" "got the unwanted value: $1"; fi
}

# like TEXT REGEX NAME
like() {
    # A here-string, not a pipe: under pipefail, grep -q quitting early would
    # make a long text's writer die of SIGPIPE and fail the check.
    if grep -Eq -- "$2" <<<"$1"; then ok "$3"; else not_ok "$3" "text:  $(printf '%s' "$1" | head -c 600)" "regex: $2"; fi
}

bail_out() {
    echo "Bail out! $*"
    exit 1
}

done_testing() {
    echo "1..$TAP_N"
    [ "$TAP_N" -gt 0 ] || { echo "# no checks ran" >&2; exit 1; }
    [ "$TAP_FAILED" -eq 0 ]
}
