#!/bin/sh
# embed.sh SRC OUT.c — turn a source file into a C string at build time.
#
#   aggregator/apply.lua      → const char lua_aggregator_apply[]
#   api/assets/dashboard.html → const char asset_api_dashboard_html[]
#
# The string holds the file byte for byte (octal escapes) plus a NUL, so each
# Lua script and each static page lives in one readable file — a script can be
# loaded by hand with `redis-cli SCRIPT LOAD "$(cat aggregator/apply.lua)"` —
# and nowhere else.  Files must not contain NUL bytes.
set -eu
src=$1
out=$2
case $src in
*.lua)
    dir=$(basename "$(dirname "$src")")
    sym=$(printf 'lua_%s_%s' "$dir" "$(basename "$src" .lua)")
    ;;
*/assets/*)
    dir=$(basename "$(dirname "$(dirname "$src")")")
    sym=$(printf 'asset_%s_%s' "$dir" "$(basename "$src")")
    ;;
*)
    echo "embed.sh: do not know how to name $src" >&2
    exit 2
    ;;
esac
sym=$(printf '%s' "$sym" | tr -c 'A-Za-z0-9_' '_')
{
    printf '/* generated from %s by scripts/embed.sh; do not edit */\n' "$src"
    printf 'extern const char %s[];\n' "$sym"
    printf 'const char %s[] = ""\n' "$sym"
    od -An -v -to1 "$src" | sed -e 's/^ *//' -e '/^$/d' -e 's/ *$//' -e 's/ \{1,\}/\\/g' -e 's/^/"\\/' -e 's/$/"/'
    printf ';\n'
} > "$out.tmp"
mv "$out.tmp" "$out"
