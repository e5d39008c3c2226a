#!/usr/bin/env bash
# Flow control: with no aggregator the group backlog stays within
# MAX_BACKLOG + BATCH_SIZE while the importer waits, and the import goes on
# as entries are acknowledged; pacing honours sleep_ms / IMPORT_SPEED (the
# import takes at least the scheduled time) and rows due together share a
# batch.  Timings are lower bounds only (sleeping is guaranteed, speed is not).
. "$TXAGG_ROOT/tests/lib/tap.sh"

ORACLE="/usr/bin/python3 $TXAGG_ROOT/tests/lib/oracle.py"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT
now_ms() { echo $(($(date +%s%N) / 1000000)); }
batches_of() { sed -n 's/.*msg="file summary".* batches=\([0-9]*\).*/\1/p' "$1"; }

# --- back-pressure -------------------------------------------------------------------
rcli FLUSHALL >/dev/null
MAX=5000 BATCH=500 ROWS=30000
"$TXAGG_BIN/txgen" --rows $ROWS --seed 11 --bad-every 50 --expect bp-exp.txt >bp.csv
IMPORT_SPEED=0 MAX_BACKLOG=$MAX BATCH_SIZE=$BATCH LOG_LEVEL=INFO "$TXAGG_BIN/importer" bp.csv 2>bp.log &
pid=$!
pids+=("$pid")
# Watch the stream until it stops growing (the importer is waiting).
max=0 last=-1 still=0
for _ in $(seq 1 600); do
    n=$(rcli XLEN transactions)
    [ "$n" -gt "$max" ] && max=$n
    if [ "$n" = "$last" ] && [ "$n" -gt 0 ]; then still=$((still + 1)); else still=0; fi
    [ "$still" -ge 10 ] && break
    last=$n
    sleep 0.05
done
check "with no aggregator the stream stops growing at $max <= MAX_BACKLOG + BATCH_SIZE" \
    test "$max" -le $((MAX + BATCH)) -a "$max" -ge "$MAX"
check "the importer is waiting, not finished" kill -0 "$pid"
wait_until 10 grep -q "backlog above MAX_BACKLOG" bp.log
like "$(cat bp.log)" 'msg="backlog above MAX_BACKLOG, waiting for the aggregators" backlog=[0-9]+ max_backlog=5000' \
    "the wait is logged when it starts"

# Now act as a slow aggregator: read and acknowledge, measuring the backlog.
peak=$(/usr/bin/python3 - "$REDIS_PORT" "$pid" <<'EOF'
import os, sys, time
import redis
r = redis.Redis(port=int(sys.argv[1])); pid = int(sys.argv[2])
def backlog():
    for g in r.xinfo_groups("transactions"):
        if g["name"] == b"aggregators":
            return g["pending"] + g["lag"]
peak = 0
deadline = time.time() + 120
while time.time() < deadline:
    peak = max(peak, backlog())
    got = r.xreadgroup("aggregators", "fake", {"transactions": ">"}, count=700, block=100)
    if got:
        ids = [e[0] for e in got[0][1]]
        r.xack("transactions", "aggregators", *ids)
    else:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
    time.sleep(0.01)
print(peak)
EOF
)
wait "$pid"; rc=$?
is "$rc" 0 "the import finishes once entries are acknowledged"
check "the backlog never exceeded MAX_BACKLOG + BATCH_SIZE while draining (peak $peak)" test "$peak" -le $((MAX + BATCH))
starts=$(grep -c 'msg="backlog above MAX_BACKLOG' bp.log)
ends=$(grep -c 'msg="backlog below MAX_BACKLOG' bp.log)
check "every wait is logged once when it starts and once when it ends ($starts/$ends)" test "$starts" -ge 1 -a "$starts" = "$ends"
$ORACLE stream "$REDIS_PORT" >bp-stream.txt
is "$(grep -v '^#' bp-stream.txt | md5sum)" "$(grep -v '^#' bp-exp.txt | md5sum)" "nothing was lost or doubled while waiting"

# --- pacing -----------------------------------------------------------------------------
rcli FLUSHALL >/dev/null
{
    echo "timestamp,type,payment_method,amount,sleep_ms"
    for i in $(seq 1 20); do echo "2026-01-05T00:00:$(printf %02d "$i"),deposit,visa,1.00,50"; done
} >paced.csv
t0=$(now_ms)
IMPORT_SPEED=1 "$TXAGG_BIN/importer" paced.csv 2>/dev/null
t1=$(now_ms)
check "IMPORT_SPEED=1: 20 rows 50 ms apart take at least 950 ms ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 950
IMPORT_SPEED=2 "$TXAGG_BIN/importer" --force paced.csv 2>/dev/null
t2=$(now_ms)
check "IMPORT_SPEED=2 takes at least half of it ($((t2 - t1)) ms)" test $((t2 - t1)) -ge 475
IMPORT_SPEED=0.5 "$TXAGG_BIN/importer" --force paced.csv 2>/dev/null
t3=$(now_ms)
check "IMPORT_SPEED=0.5 takes at least twice as long ($((t3 - t2)) ms)" test $((t3 - t2)) -ge 1900
is "$(rcli XLEN transactions)" 60 "every paced row was published"

# rows due at the same moment go out in one batch
rcli FLUSHALL >/dev/null
{
    echo "timestamp,type,payment_method,amount,sleep_ms"
    for g in 1 2 3 4 5 6; do
        for k in 1 2 3 4; do echo "2026-01-0${g}T00:00:0$k,deposit,visa,1.00,0"; done
        echo "2026-01-0${g}T00:00:05,deposit,visa,1.00,150"
    done
} >groups.csv
IMPORT_SPEED=1 LOG_LEVEL=INFO "$TXAGG_BIN/importer" groups.csv 2>groups.log
b=$(batches_of groups.log)
check "6 groups of rows due together need at most 6 batches, and pacing split them ($b)" test "$b" -ge 2 -a "$b" -le 6
IMPORT_SPEED=0 LOG_LEVEL=INFO "$TXAGG_BIN/importer" --force groups.csv 2>groups0.log
is "$(batches_of groups0.log)" 1 "IMPORT_SPEED=0: the 30 rows go out in one batch"
is "$(rcli XLEN transactions)" 60 "every grouped row was published"

done_testing
