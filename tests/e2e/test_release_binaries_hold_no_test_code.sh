#!/usr/bin/env bash
# Test-only code (fault hooks, seams, accessors only tests call) compiles only
# into the test build: every function between `#ifdef TXAGG_TESTING` and its
# `#endif` in common/ and the services is absent from the four binaries, while
# the test build's archives (Makefile: $(BUILD)/test-objs) define the ones the
# headers declare — so the list checked is the real one.
. "$TXAGG_ROOT/tests/lib/tap.sh"
cd "$TXAGG_ROOT" || exit 1

# Function names defined or declared inside the TXAGG_TESTING blocks of FILES.
testing_functions() {
    awk '/^#ifdef TXAGG_TESTING/ { on = 1; next } on && /^#(endif|else)/ { on = 0 } on' "$@" |
        sed -nE 's/^[a-z][a-z0-9_ *]*[ *]([a-z_][a-z0-9_]*)\(.*/\1/p' | sort -u
}
sources=$(ls common/*.[ch] importer/*.[ch] aggregator/*.[ch] persistor/*.[ch] api/*.[ch])
all=$(testing_functions $sources)
public=$(testing_functions $(echo "$sources" | grep '\.h$'))
check "the sources have test-only functions ($(echo $all | wc -w), $(echo $public | wc -w) in headers)" \
    [ "$(echo $public | wc -w)" -ge 5 ]

for b in importer aggregator persistor api; do
    syms=$(nm -a "$TXAGG_BIN/$b" | awk '{ print $NF }')
    check "$b was read by nm" [ -n "$syms" ]
    found=
    for f in $all; do grep -qx "$f" <<<"$syms" && found+=" $f"; done
    is "${found:-none}" none "the release $b holds no test-only function"
done

defined=$(nm --defined-only "$TXAGG_TESTBIN"/test-objs/*.a 2>/dev/null | awk '$2 == "T" { print $3 }')
missing=
for f in $public; do grep -qx "$f" <<<"$defined" || missing+=" $f"; done
is "${missing:-none}" none "the test build defines every test-only function the headers declare"

done_testing
