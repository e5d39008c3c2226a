#!/usr/bin/env bash
# scripts/deps.sh builds Docker Compose v2 only for the targets that need it
# (`--with compose`: make test-compose), never for `make test`/`make run`.
# Checked with `--check` (reports, installs nothing) against a stand-in
# `docker` whose `compose` subcommand is missing, and an empty cache
# directory (so no Compose plugin is cached).
. "$TXAGG_ROOT/tests/lib/tap.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/cache"
cat >"$tmp/bin/docker" <<'SH'
#!/bin/sh
# a Docker CLI without the Compose v2 plugin
[ "$1" = compose ] && { echo "docker: 'compose' is not a docker command." >&2; exit 1; }
exit 0
SH
chmod +x "$tmp/bin/docker"
# a Go toolchain is what makes deps.sh offer to build Compose; say where it is
go_dir=$(dirname "$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)")

checkdeps() { PATH="$tmp/bin:$go_dir:$PATH" TXAGG_CACHE="$tmp/cache" bash "$TXAGG_ROOT/scripts/deps.sh" --check "$@" 2>&1; }

out=$(checkdeps)
check "without --with compose, deps.sh does not plan to build Compose" \
    bash -c '! grep -qi "compose" <<<"$1"' _ "$out"
[ -n "$out" ] && printf '#   %s\n' "$out" | grep -i compose
out=$(checkdeps --with compose)
like "$out" "missing Compose v2" "with --with compose, deps.sh plans to build Compose v2 where docker lacks it"
like "$(sed -n 's/^\(bash scripts\/deps.sh.*\)$/\1/p' "$TXAGG_ROOT/deploy/test-compose.sh")" "--with compose" \
    "make test-compose asks deps.sh for Compose"
like "$(sed -n '/^test:/,/^$/p' "$TXAGG_ROOT/Makefile")" "deps.sh --if-missing" "make test installs its dependencies"
check "make test does not ask deps.sh for Compose" \
    bash -c '! sed -n "/^test:/,/^\$/p" "$1" | grep -q "with compose"' _ "$TXAGG_ROOT/Makefile"
done_testing
