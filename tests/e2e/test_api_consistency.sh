#!/usr/bin/env bash
# Exact at every instant during archival: while days move from Redis to
# MongoDB round after round (freeze, per-day guarded upsert, clean, with late
# rows re-created between rounds — the documented steps, performed by
# tests/tools/apiseed migrate until the persistor lands), hundreds of
# back-to-back full-range reads all hold exactly the base amounts and one
# common, never-decreasing count of late cents.  A read may be refused with
# 503 "moved" (bounded retries) but never be wrong.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"
MIG=
trap '[ -n "$MIG" ] && kill "$MIG" 2>/dev/null; api_stop' EXIT

READS=$(scaled 600 200)
MIN_ROUNDS=$(scaled 15 5)
FROM=2026-01-01 TO=2026-01-30
# Base data: days 01-01..01-15 already archived (documents, archived_through),
# 01-16..01-30 hot; the migration archives everything up to 01-23 each round.
python3 - "$FROM" "$TO" >base.seed <<'PY'
import json, random, sys, datetime
rnd = random.Random(5)
base = {}
d = datetime.date.fromisoformat(sys.argv[1])
end = datetime.date.fromisoformat(sys.argv[2])
print("version 1")
print("through 2026-01-15")
while d <= end:
    day = d.isoformat()
    base[day] = {}
    for t in ("deposit", "withdrawal"):
        for m in rnd.sample(["visa", "paypal", "crypto", "apple_pay", "bank_transfer"], 3):
            c = rnd.randint(1, 10**9)
            base[day].setdefault(t, {})[m] = c
            print(("doc %s %s %s %d" if day <= "2026-01-15" else "hot %s %s %s %d") % (day, t, m, c))
    if day <= "2026-01-15":
        print("docbatch %s init" % day)
    d += datetime.timedelta(days=1)
json.dump(base, open("base.json", "w"))
PY
seed <base.seed || bail_out "seeding failed"
api_start

rm -f stop progress
"$TXAGG_TESTBIN/tools/apiseed" migrate --stop-file stop --progress-file progress --min-rounds 3 --max-rounds 100000 \
    --late-from "$FROM" --late-to "$TO" --boundary 2026-01-23 --pause-us 2000 >migrate.out 2>migrate.err &
MIG=$!

out=$(apicheck consistency "$API_URL" "$FROM" "$TO" base.json "$FROM" "$TO" stop "$READS" 2 "$MIN_ROUNDS" progress \
    2>reads.err)
rc=$?
echo "# $out"
head -20 reads.err | sed 's/^/# /'
is "$rc" 0 "every full-range read during the migration was exact (at least $READS reads, $MIN_ROUNDS rounds)"
ok_reads=$(printf '%s' "$out" | sed -n 's/.*reads_ok=\([0-9]*\).*/\1/p')
check "most reads were answered, not refused (ok=$ok_reads of $READS)" test "${ok_reads:-0}" -ge $((READS / 2))

wait "$MIG"
mig_rc=$?
MIG=
is "$mig_rc" 0 "the migration rounds ran without error"
rounds=$(sed -n 's/^rounds=//p' migrate.out)
check "at least $MIN_ROUNDS archive rounds ran during the reads (rounds=$rounds)" test "${rounds:-0}" -ge "$MIN_ROUNDS"
distinct=$(printf '%s' "$out" | sed -n 's/.*distinct_late_values=\([0-9]*\).*/\1/p')
check "the reads saw the data change between rounds ($distinct distinct late counts)" test "${distinct:-0}" -ge 2
check "after the last round every day holds base + $rounds late cents" \
    apicheck final "$API_URL" "$FROM" "$TO" base.json "$FROM" "$TO" "$rounds"
metrics=$(curl -s "$API_URL/metrics")
echo "$metrics" | grep -E '^txagg_api_(consistency|cold_cache_(hits|misses)|snapshots|mongo_reads)' | sed 's/^/# /'
like "$metrics" 'txagg_api_cold_cache_misses_total [1-9]' "reads went to MongoDB as the archive version moved"

api_stop_checked
done_testing
