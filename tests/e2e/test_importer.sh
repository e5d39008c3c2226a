#!/usr/bin/env bash
# The importer end to end against the real Redis: the sample and a rule-by-rule
# CSV land in the stream with exactly the totals an independent Python oracle
# computes (tests/lib/oracle.py: csv + Decimal, not the project's
# code); dead letters carry reason, file, line and raw record; a finished file
# is not imported twice unless --force; stdin and several files; exit codes
# 0/2/3; CSV_PATH; the /metrics and /ready listener.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/scripts/lib/common.sh"

ORACLE="/usr/bin/python3 $TXAGG_ROOT/tests/lib/oracle.py"
SAMPLE="$TXAGG_ROOT/deploy/data/transactions_1_month.csv"
RULES="$TXAGG_ROOT/tests/e2e/data/importer_rules.csv"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
flush() { rcli FLUSHALL >/dev/null; }
stream_longer_than() { [ "$(rcli XLEN transactions)" -gt "$1" ]; }
imp() { IMPORT_SPEED=${IMPORT_SPEED:-0} "$TXAGG_BIN/importer" "$@"; }
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT

# compare the stream with the oracle's expectation of a file (totals and reasons)
same_totals() { # FILE NAME
    $ORACLE expect "$1" >expect.txt
    $ORACLE stream "$REDIS_PORT" | grep -v -e '^# entries' -e '^# distinct_src' >stream.txt
    if diff expect.txt stream.txt >diff.txt; then ok "$2"; else not_ok "$2" "$(head -20 diff.txt)"; fi
}

# --- the sample ---------------------------------------------------------------
flush
out=$(LOG_LEVEL=INFO imp "$SAMPLE" 2>&1); rc=$?
is "$rc" 0 "importing the sample exits 0"
is "$(rcli XLEN transactions)" 5000 "the sample's 5000 rows are in the stream"
is "$(rcli XLEN transactions:rejected)" 0 "the sample has no rejected rows"
same_totals "$SAMPLE" "stream totals per day/type/method equal the Decimal oracle's for the sample"
is "$($ORACLE stream "$REDIS_PORT" | grep '^# distinct_src')" "# distinct_src 5000" "every entry has its own src"
is "$($ORACLE srcs "$REDIS_PORT" | head -1)" "transactions_1_month.csv:2" "src is the basename and the physical line"
like "$out" 'msg="file summary".*rows_read=5000 .*published=5000 rejected=0' "a summary line counts the file"
is "$(rcli XINFO GROUPS transactions | sed -n 2p)" aggregators "the group aggregators exists before any aggregator runs"
ck=$(rcli --scan --pattern 'import:checkpoint:*')
is "$(rcli HGET "$ck" rows)/$(rcli HGET "$ck" done)" "5000/1" "the checkpoint counts 5000 records, done"

# --- idempotency and --force --------------------------------------------------
cp "$SAMPLE" renamed-copy.csv
out=$(LOG_LEVEL=INFO imp renamed-copy.csv 2>&1); rc=$?
is "$rc" 0 "re-importing a finished file (renamed copy) exits 0"
like "$out" "already imported" "re-importing says the file was already imported"
is "$(rcli XLEN transactions)" 5000 "re-importing adds nothing"
out=$(LOG_LEVEL=INFO imp - <"$SAMPLE" 2>&1); rc=$?
like "$out" "already imported" "the same content on stdin is the same file"
imp --force "$SAMPLE" 2>/dev/null; rc=$?
is "$rc" 0 "--force exits 0"
is "$(rcli XLEN transactions)" 10000 "--force imports the file again"
is "$(rcli HGET "$ck" rows)/$(rcli HGET "$ck" done)" "5000/1" "--force leaves a finished checkpoint behind"

# --- every rule, plus generated rows, against the oracle ------------------------
flush
cp "$RULES" rules.csv
python3 - >>rules.csv <<'EOF'
import random
r = random.Random(42)
methods = ["visa", "Visa", "paypal", "apple_pay", "crypto", "bank-transfer", "x_1"]
for i in range(300):
    day = r.randrange(1, 29)
    ts = "2026-02-%02dT%02d:%02d:%02d" % (day, r.randrange(24), r.randrange(60), r.randrange(60))
    form = r.randrange(6)
    if form == 1: ts = ts.replace("T", " ")
    if form == 2: ts += "Z"
    if form == 3: ts += ".%d" % r.randrange(1000)
    if form == 4: ts += r.choice(["+05:30", "-11:00", "+23:59", "-00:45"])
    amount = "%d.%02d" % (r.randrange(0, 100000), r.randrange(100))
    if r.randrange(8) == 0: amount = "%d" % r.randrange(1, 1000)
    typ = r.choice(["deposit", "withdrawal", "Deposit", "WITHDRAWAL"])
    sleep = str(r.randrange(0, 30))
    if r.randrange(25) == 0: amount = r.choice(["0.00", "1.999", "abc"])
    if r.randrange(40) == 0: ts = "2026-02-30T00:00:00"
    note = r.choice(["", "x", '"a, b"', '"multi\nline"', '"q ""uoted"""'])
    print("%s,%s,%s,%s,%s,%s" % (note, amount, r.choice(methods), typ, ts, sleep))
EOF
imp rules.csv 2>/dev/null; rc=$?
is "$rc" 0 "a file with rejected rows still exits 0"
same_totals rules.csv "totals and rejection counts of every rule (350 rows) equal the oracle's"
dl=$($ORACLE rejected "$REDIS_PORT")
like "$dl" $'^field_count\trules.csv\t18\tfc-short,1,visa,deposit,2026-01-05T00:00:00$' \
    "a dead letter has reason, file, first line and raw record"
like "$dl" $'amount\trules.csv\t50\t"multi\\\\nline, rejected",0,visa' "a multi-line record's dead letter keeps its line breaks"
like "$dl" $'timestamp\trules.csv\t47\torder-ts-before-amount' "the first failing rule is the reason"
is "$($ORACLE srcs "$REDIS_PORT" | sed -n 3p)" "rules.csv:4" "a record spanning lines 4-5 has src line 4"

# --- several files, stdin, bad files and exit 2 --------------------------------
flush
"$TXAGG_BIN/txgen" --rows 300 --seed 1 >a.csv
"$TXAGG_BIN/txgen" --rows 200 --seed 2 >b.csv
"$TXAGG_BIN/txgen" --rows 100 --seed 3 >c.csv
printf 'timestamp,type,amount,sleep_ms\n2026-01-01T00:00:00,deposit,1.00,0\n' >nomethod.csv
out=$(imp a.csv missing.csv nomethod.csv - c.csv <b.csv 2>&1); rc=$?
is "$rc" 2 "a missing file or a header without a required column makes the exit status 2"
like "$out" 'file="missing.csv" err="No such file or directory"' "the missing file is named"
like "$out" "file=\"nomethod.csv\" err=\"header has no 'payment_method' column" "the missing column is named"
is "$(rcli XLEN transactions)" 600 "the other files (and stdin) are imported in full"
is "$($ORACLE srcs "$REDIS_PORT" | grep -c '^stdin:')" 200 "stdin rows have src stdin:<line>"
is "$($ORACLE srcs "$REDIS_PORT" | grep -c '^nomethod.csv:')" 0 "nothing of the bad file is published"
out=$(imp empty.csv 2>&1 </dev/null); rc=$?
is "$rc" 2 "a missing file alone exits 2"
: >empty.csv
out=$(imp empty.csv 2>&1); rc=$?
is "$rc" 2 "an empty file (no header) exits 2"
like "$out" "no header" "an empty file is reported as having no header"

# standard input longer than the 1 MiB its identity is taken from
flush
"$TXAGG_BIN/txgen" --rows 40000 --seed 12 >bigstdin.csv
imp - <bigstdin.csv 2>/dev/null; rc=$?
is "$rc:$(rcli XLEN transactions)" "0:40000" "a stdin stream over 1 MiB is imported in full"
out=$(LOG_LEVEL=INFO imp - <bigstdin.csv 2>&1)
like "$out" "already imported" "the same long stdin stream is recognised as imported"
is "$(rcli XLEN transactions)" 40000 "and adds nothing"

# --- CSV_PATH ---------------------------------------------------------------------
flush
CSV_PATH=c.csv imp 2>/dev/null; rc=$?
is "$rc:$(rcli XLEN transactions)" "0:100" "CSV_PATH is imported when no FILE is given"

# --- SIGTERM: exit 3, and a rerun resumes ----------------------------------------
flush
"$TXAGG_BIN/txgen" --rows 400 --seed 9 --sleep-ms 10 >paced.csv
IMPORT_SPEED=1 LOG_LEVEL=INFO "$TXAGG_BIN/importer" paced.csv 2>term.log &
pid=$!
pids+=("$pid")
wait_until 10 stream_longer_than 20
kill -TERM "$pid"
wait "$pid"; rc=$?
is "$rc" 3 "SIGTERM stops the import with exit status 3"
like "$(cat term.log)" "a rerun resumes" "the stop says a rerun resumes"
n=$(rcli XLEN transactions)
check "some but not all rows were published before the stop ($n)" test "$n" -gt 0 -a "$n" -lt 400
ck=$(rcli --scan --pattern 'import:checkpoint:*')
is "$(rcli HGET "$ck" rows)" "$n" "the checkpoint matches what was published (the batch in hand was committed)"
out=$(LOG_LEVEL=INFO imp paced.csv 2>&1); rc=$?
is "$rc" 0 "the rerun finishes"
like "$out" "resuming after the checkpoint.*rows=$n" "the rerun resumes after the checkpoint"
is "$($ORACLE stream "$REDIS_PORT" | grep -e '^# entries' -e '^# distinct')" $'# entries 400\n# distinct_src 400' \
    "after stop and resume every row is in the stream exactly once"

# --- /metrics and /ready ----------------------------------------------------------
flush
port=$(txagg_free_port)
IMPORT_SPEED=1 METRICS_PORT=$port "$TXAGG_BIN/importer" paced.csv 2>metrics.log &
pid=$!
pids+=("$pid")
txagg_wait_http "http://127.0.0.1:$port/ready" 20
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" 200 "/ready is 200 while Redis answers"
wait_until 10 stream_longer_than 20
m=$(curl -s "http://127.0.0.1:$port/metrics")
like "$m" 'txagg_importer_rows_read_total [1-9]' "/metrics counts rows read"
like "$m" 'txagg_importer_rows_rejected_total\{reason="amount"\} 0' "/metrics has a rejected counter per reason"
like "$m" 'txagg_importer_batches_total [1-9]' "/metrics counts batches"
like "$m" 'txagg_importer_backpressure_waits_total 0' "/metrics counts back-pressure waits"
# a second importer on the same port: a listener asked for and not started is
# a start-up error, before anything is published
# (the paced importer above is still publishing paced.csv meanwhile)
out=$(METRICS_PORT=$port imp a.csv 2>&1); rc=$?
is "$rc" 1 "a metrics port in use stops the importer with exit 1"
like "$out" "msg=\"cannot start\".*listen 127\.0\.0\.1:$port" "the error names the address"
is "$(rcli XRANGE transactions - + | grep -c '[ ]a\.csv:[0-9]')" 0 "it published none of its rows"
kill -TERM "$pid"; wait "$pid"

done_testing
