#!/bin/sh
# embed-lua.sh SRC.lua OUT.c — turn a Lua script into a C string at build time.
#
# aggregator/apply.lua becomes `const char lua_aggregator_apply[]`, a
# NUL-terminated string holding the file byte for byte (octal escapes), so each
# script lives in one .lua file — readable, and loadable by hand with
# `redis-cli SCRIPT LOAD "$(cat aggregator/apply.lua)"` — and nowhere else.
set -eu
src=$1
out=$2
dir=$(basename "$(dirname "$src")")
base=$(basename "$src" .lua)
sym=$(printf 'lua_%s_%s' "$dir" "$base" | tr -c 'A-Za-z0-9_\n' '_')
{
    printf '/* generated from %s by scripts/embed-lua.sh; do not edit */\n' "$src"
    printf 'extern const char %s[];\n' "$sym"
    printf 'const char %s[] = ""\n' "$sym"
    od -An -v -to1 "$src" | sed -e 's/^ *//' -e '/^$/d' -e 's/ *$//' -e 's/ \{1,\}/\\/g' -e 's/^/"\\/' -e 's/$/"/'
    printf ';\n'
} > "$out.tmp"
mv "$out.tmp" "$out"
