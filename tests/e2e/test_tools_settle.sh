#!/usr/bin/env bash
# The test tools that write Redis are as robust to a slow machine as the
# services: a reply that times out after a MULTI … EXEC was sent leaves its
# outcome unknown, and the tool settles it (tests/tools/settle.h: a marker
# written in the same MULTI, read back after a reconnect) instead of dying or
# sending the batch twice.  Its ledger or dump still equals Redis exactly.
#
# 1. Redis stops answering writes (CLIENT PAUSE … WRITE, longer than the
#    tool's REDIS_TIMEOUT_MS) while archive_probe's writer, txpub and
#    apiseed run: each runs to the end, report the unknown outcomes they settled, and the
#    ledger / dump equals what Redis holds.  (Before settle.h the writer died
#    on the first timeout with "redis pipeline failed" and the ledger missed
#    a batch Redis applied.)
# 2. The fault hook TXAGG_TOOL_DROP_EXEC=N (test tools only) drops the
#    connection right after the N-th batch's EXEC was written: the reply is
#    lost although Redis applied the batch; the tool must count it once.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/persistor.sh"
pst_setup # a directory of its own; RETENTION_DAYS=3; EXIT trap pst_cleanup
trap 'redis-cli -p "$REDIS_PORT" CLIENT UNPAUSE >/dev/null 2>&1; pst_cleanup' EXIT

field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$2"; }
# The pauses start once the tool is seen writing (a loaded machine starts it late).
lines_over() { [ "$(wc -l <"$1")" -gt "$2" ]; }
stream_longer_than() { [ "$(rcli XLEN transactions)" -gt "$1" ]; }

# --- 1. writes paused longer than the tool's reply timeout --------------------------
probe seed ledger 5 2026-01-01 10 500 || bail_out "seeding failed"
REDIS_TIMEOUT_MS=300 probe writer ledger 17 6000 5 200 >writer.out 2>writer.err &
writer=$!
PST_PIDS+=("$writer")
wait_until 60 lines_over ledger "$(wc -l <ledger)"
rcli CLIENT PAUSE 1500 WRITE >/dev/null
sleep 2.5
rcli CLIENT PAUSE 1500 WRITE >/dev/null
wait "$writer"
rc=$?
is "$rc" 0 "archive_probe writer runs to the end through two write pauses"
[ "$rc" = 0 ] || echo "# $(tail -3 writer.err)"
echo "# $(cat writer.out)"
check "it settled the batches whose reply timed out (unknown=$(field unknown writer.out))" \
    [ "$(field unknown writer.out)" -ge 1 ]
out=$(probe compare ledger 2>&1)
is "$?" 0 "its ledger equals Redis exactly ($out)"

rm -f dump.txt
REDIS_TIMEOUT_MS=300 "$TXAGG_TESTBIN/tools/txpub" --count 60000 --seed 3 --days 4 --batch 200 --rate 15000 \
    --dump dump.txt >txpub.out 2>txpub.err &
pub=$!
PST_PIDS+=("$pub")
wait_until 60 stream_longer_than 0
rcli CLIENT PAUSE 1500 WRITE >/dev/null
wait "$pub"
rc=$?
is "$rc" 0 "txpub runs to the end through a write pause"
[ "$rc" = 0 ] || echo "# $(tail -3 txpub.err)"
like "$(cat txpub.out)" '^published 60000 unknown=[1-9]' "it settled the batches whose reply timed out ($(cat txpub.out))"
is "$(rcli XLEN transactions)" 60000 "the stream holds every entry once"
is "$(wc -l <dump.txt)" 60000 "the dump lists every entry once"

rcli FLUSHALL >/dev/null
hot_lines() { local i; for ((i = 0; i < $1; i++)); do echo "hot 2026-02-0$((i % 5 + 1)) deposit visa $((i % 7 + 1))"; done; }
{ for part in 1 2 3 4; do hot_lines 500; sleep 1; done; } | REDIS_TIMEOUT_MS=300 "$TXAGG_TESTBIN/tools/apiseed" 2>apiseed.err &
seeder=$!
PST_PIDS+=("$seeder")
wait_until 60 eval '[ "$(rcli EXISTS agg:2026-02-01:deposit)" = 1 ]'
rcli CLIENT PAUSE 1500 WRITE >/dev/null
wait "$seeder"
rc=$?
is "$rc" 0 "apiseed runs to the end through a write pause"
[ "$rc" = 0 ] || echo "# $(tail -3 apiseed.err)"
want=$(for part in 1 2 3 4; do hot_lines 500; done | awk '{ s[$2] += $5 } END { for (d in s) print d, s[d] }' | sort)
got=$(for d in 1 2 3 4 5; do echo "2026-02-0$d $(rcli HGET "agg:2026-02-0$d:deposit" visa)"; done)
is "$got" "$want" "every hot line was added exactly once"

# --- 2. the reply of an applied batch is lost ---------------------------------------
rcli FLUSHALL >/dev/null
rm -f ledger2
TXAGG_TOOL_DROP_EXEC=3 probe seed ledger2 9 2026-03-01 6 400 2>seed.err
is "$?" 0 "seed runs to the end when the reply of its 3rd batch is lost"
like "$(cat seed.err)" 'unknown=1 lost_replies=1 resent=0' "the batch is settled as applied, not sent again"
out=$(probe compare ledger2 2>&1)
is "$?" 0 "the ledger counts that batch once ($out)"
TXAGG_TOOL_DROP_EXEC=5 probe writer ledger2 21 1500 3 100 >writer2.out
is "$?" 0 "writer runs to the end when the reply of its 5th batch is lost"
like "$(cat writer2.out)" ' unknown=1 lost_replies=1 resent=0' "the batch is settled as applied"
out=$(probe compare ledger2 2>&1)
is "$?" 0 "the ledger still equals Redis exactly ($out)"

rm -f dump2.txt
TXAGG_TOOL_DROP_EXEC=2 "$TXAGG_TESTBIN/tools/txpub" --count 5000 --seed 4 --batch 1000 --dump dump2.txt >txpub2.out
is "$?" 0 "txpub runs to the end when the reply of its 2nd batch is lost"
is "$(cat txpub2.out)" "published 5000 unknown=1 lost_replies=1 resent=0" "the batch is settled as applied"
is "$(rcli XLEN transactions)" 5000 "the stream holds each entry once"
is "$(wc -l <dump2.txt)" 5000 "the dump lists each entry once"

rcli FLUSHALL >/dev/null
printf 'hot 2026-01-01 deposit visa 100\nhot 2026-01-02 deposit visa 100\nhot 2026-01-01 deposit visa 100\nhot 2026-01-03 deposit visa 5\n' |
    TXAGG_TOOL_DROP_EXEC=3 "$TXAGG_TESTBIN/tools/apiseed"
is "$?" 0 "apiseed runs to the end when the reply of its 3rd line is lost"
is "$(rcli HGET agg:2026-01-01:deposit visa) $(rcli HGET agg:2026-01-03:deposit visa)" "200 5" "that line counts once"
out=$(TXAGG_TOOL_DROP_EXEC=1 "$TXAGG_TESTBIN/tools/apiseed" migrate --stop-file no-such-file --min-rounds 1 \
    --max-rounds 1 --boundary 2026-01-02)
is "$?/$out" "0/rounds=1" "apiseed migrate runs its round when the reply of its INCR is lost"
is "$(rcli GET system:archive:seq)" 1 "the sequence was incremented once"
is "$(rcli GET system:archived_through) $(rcli SMEMBERS system:tracked_days)" "2026-01-02 2026-01-03" \
    "the round archived the days up to the boundary, with the batch id it read back"
is "$(rcli EXISTS agg:2026-01-01:deposit archive:frozen:t1:2026-01-01:deposit)" 0 "and cleaned up after itself"

done_testing
