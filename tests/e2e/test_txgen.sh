#!/usr/bin/env bash
# bin/txgen is deterministic, documents its flags, and its expectation (from
# the integers it generated) agrees with the independent Python oracle reading
# the CSV it wrote — two separate implementations of the input rules.
. "$TXAGG_ROOT/tests/lib/tap.sh"

ORACLE="/usr/bin/python3 $TXAGG_ROOT/tests/lib/oracle.py"
G="$TXAGG_BIN/txgen"

out=$("$G" --help); rc=$?
is "$rc" 0 "txgen --help exits 0"
for f in --rows --days --start --seed --methods --bad-every --sleep-ms --expect --plain; do
    like "$out" -- "$f" "txgen --help documents $f"
done
"$G" >/dev/null 2>&1; is "$?" 2 "txgen without --rows exits 2"
"$G" --rows 5 --start 2026-02-30 >/dev/null 2>&1; is "$?" 2 "txgen rejects an impossible --start"

"$G" --rows 20000 --seed 3 --bad-every 13 --expect e1.txt >a.csv
"$G" --rows 20000 --seed 3 --bad-every 13 --expect e2.txt >b.csv
is "$(md5sum <a.csv)" "$(md5sum <b.csv)" "the same flags give the same bytes"
is "$(md5sum <e1.txt)" "$(md5sum <e2.txt)" "the same flags give the same expectation"
"$G" --rows 20000 --seed 4 --bad-every 13 >c.csv
isnt "$(md5sum <a.csv)" "$(md5sum <c.csv)" "another seed gives other rows"
is "$(($(wc -l <a.csv) >= 20001))" 1 "a header and every row are written"

# the oracle reads the CSV with Python's csv module and Decimal
$ORACLE expect a.csv >oracle.txt
is "$(grep -v '^#' oracle.txt | md5sum)" "$(grep -v '^#' e1.txt | md5sum)" \
    "per day/type/method totals agree with the independent oracle"
for r in field_count timestamp type payment_method amount sleep_ms; do
    is "$(sed -n "s/^# bad_$r //p" oracle.txt)" "$(sed -n "s/^# bad_$r //p" e1.txt)" \
        "the oracle rejects the rows txgen made bad for $r, and only those"
done
is "$(sed -n 's/^# good //p' oracle.txt)" "$(sed -n 's/^# good //p' e1.txt)" "good rows agree"
is "$(sed -n 's/^# bad_sleep_ms //p' e1.txt)" 256 "every 13th row is bad, reasons rotating evenly (20000/13/6)"
like "$(cat a.csv)" '[+-][0-9]{2}:[0-9]{2},' "rows use UTC offsets"
like "$(cat a.csv)" $'\r' "some rows end in CRLF"
like "$(cat a.csv)" '"' "some fields are quoted"

# days and methods
"$G" --rows 5000 --days 3 --start 2024-02-28 --methods 10 --expect e3.txt >d.csv
is "$(grep -v '^#' e3.txt | cut -f1 | sort -u | tr '\n' ' ')" "2024-02-28 2024-02-29 2024-03-01 " \
    "--days 3 from 2024-02-28 crosses the leap day"
is "$(grep -v '^#' e3.txt | cut -f3 | sort -u | wc -l)" 10 "--methods 10 uses ten methods"
$ORACLE expect d.csv >oracle3.txt
is "$(grep -v '^#' oracle3.txt | md5sum)" "$(grep -v '^#' e3.txt | md5sum)" "offsets across the leap day land on the right UTC day"
"$G" --rows 3 --plain --sleep-ms 0 >p.csv
like "$(sed -n 2p p.csv)" '^2026-01-[0-9]{2}T[0-9:]{8},(deposit|withdrawal),[a-z_]+,[0-9]+\.[0-9]{2},0$' "--plain writes the sample's form"

done_testing
