#!/usr/bin/env bash
# bench.sh — `make bench`: every part under scripts/bench/, in name order.
#
# Each part starts the servers it needs (scripts/lib/common.sh), prints its
# figures as plain lines ("ingest: 251,000 rows/s …") and stops what it
# started.  Figures are printed, never asserted: timing targets live here, not
# in the tests.  BENCH_ONLY=ingest runs the parts whose name contains it.
set -euo pipefail
cd "$(dirname "$0")/.."
ran=0
for part in scripts/bench/*.sh; do
    [ -f "$part" ] || continue
    case $(basename "$part") in *"${BENCH_ONLY:-}"*) ;; *) continue ;; esac
    echo "=== bench: $(basename "$part" .sh)"
    bash "$part"
    ran=$((ran + 1))
done
[ $ran -gt 0 ] || { echo "bench: no benchmark parts found under scripts/bench/" >&2; exit 1; }
