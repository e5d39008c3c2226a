#!/usr/bin/env bash
# fuzz.sh — `make fuzz`: a bounded libFuzzer run of the /stats query parser
# (tests/fuzz/fuzz_query.c) under AddressSanitizer and UBSan.
#
#   FUZZ_SECONDS   run time (default 60)
#
# Installs clang + libFuzzer when missing (scripts/deps.sh --with fuzz).  The
# seeds live in tests/fuzz/seeds/query; the corpus grown by runs stays under
# build/fuzz/ (not in git); a crashing input is written to artifacts/fuzz/
# and the run exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --if-missing --with fuzz

secs=${FUZZ_SECONDS:-60}
out=build/fuzz
mkdir -p "$out/corpus-query" artifacts/fuzz
flags=(-std=c11 -g -O1 -D_GNU_SOURCE -Icommon -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
clang "${flags[@]}" -o "$out/fuzz_query" tests/fuzz/fuzz_query.c api/query.c common/timeparse.c -lcivetweb
echo "fuzz: query parser for ${secs}s (corpus $out/corpus-query, crashes to artifacts/fuzz/)"
# grep hides the per-input progress lines; the fuzzer's own status decides.
set +e
"$out/fuzz_query" -max_total_time="$secs" -max_len=1100 -timeout=5 -print_final_stats=1 \
    -dict=tests/fuzz/query.dict -artifact_prefix=artifacts/fuzz/ "$out/corpus-query" tests/fuzz/seeds/query 2>&1 |
    grep -Ev '^#[0-9]+\s+(NEW|REDUCE|pulse)'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || echo "fuzz: FAILED (status $status): see artifacts/fuzz/" >&2
exit "$status"
