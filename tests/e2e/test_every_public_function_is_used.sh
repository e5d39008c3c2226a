#!/usr/bin/env bash
# No dead public function: every function a header of common/ or of a
# service declares is used somewhere besides its own declaration and
# definition (comments do not count), and one that only tests use is
# declared inside `#ifdef TXAGG_TESTING` (so it stays out of the binaries).
#
# AHEAD_OF_CALLERS names what landed before its first caller: a header (all
# its functions) or a function.  They are reported, not failed; an entry is
# to go as soon as a service calls it.
. "$TXAGG_ROOT/tests/lib/tap.sh"
cd "$TXAGG_ROOT" || exit 1

# The Redis Cluster layer and the replica wait, for the services' cluster mode.
AHEAD_OF_CALLERS="common/cluster.h rconn_replica_wait common/tier.h"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
headers=$(ls common/*.h importer/*.h aggregator/*.h persistor/*.h api/*.h)

# "COUNT WORD" of every identifier of FILES, comments left out.
words() {
    perl -0777 -pe 's{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g' "$@" | grep -oE '[A-Za-z_][A-Za-z0-9_]*' | sort | uniq -c
}
words common/*.[ch] importer/*.[ch] aggregator/*.[ch] persistor/*.[ch] api/*.[ch] >"$TMP/prod"
words tests/unit/*.c tests/integration/*.c tests/lib/*.[ch] >"$TMP/tests"
# "NAME KIND HEADER LINE" of each function a header declares (prototype) or
# defines inline (function).
ctags -x --c-kinds=pf --language-force=C $headers | awk '{ print $1, $2, $4, $3 }' >"$TMP/functions"
# "HEADER LINE" of every line inside an #ifdef TXAGG_TESTING block.
awk 'FNR == 1 { on = 0 } /^#ifdef TXAGG_TESTING/ { on = 1 } on { print FILENAME, FNR } /^#endif/ { on = 0 }' \
    $headers >"$TMP/testing"
check "the headers declare functions (found $(wc -l <"$TMP/functions"))" [ "$(wc -l <"$TMP/functions")" -ge 100 ]

# Uses = occurrences in the code minus its own declaration and definition.
awk -v out="$TMP" -v ahead="$AHEAD_OF_CALLERS" '
    BEGIN { n = split(ahead, a, " "); for (i = 1; i <= n; i++) excused[a[i]] = 1 }
    FILENAME ~ /prod$/ { prod[$2] = $1; next }
    FILENAME ~ /tests$/ { tests[$2] = $1; next }
    FILENAME ~ /testing$/ { testing[$1 " " $2] = 1; next }
    {
        uses = prod[$1] - ($2 == "prototype" ? 2 : 1)
        if (uses > 0) next
        if (excused[$3] || excused[$1]) print $3 ":" $1 (tests[$1] ? "" : "(unused)") > (out "/ahead")
        else if (!tests[$1]) print $3 ":" $1 > (out "/dead")
        else if (!testing[$3 " " $4]) print $3 ":" $1 > (out "/untagged")
    }' "$TMP/prod" "$TMP/tests" "$TMP/testing" "$TMP/functions"
dead=$(cat "$TMP/dead" 2>/dev/null | xargs)
untagged=$(cat "$TMP/untagged" 2>/dev/null | xargs)
[ -s "$TMP/ahead" ] && echo "# ahead of their callers (not failed): $(xargs <"$TMP/ahead")"
is "${dead:-none}" none "every declared function is used by the code or the tests"
is "${untagged:-none}" none "every function only tests use is declared under #ifdef TXAGG_TESTING"

done_testing
