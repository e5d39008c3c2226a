#!/usr/bin/env bash
# The dashboard a person opens first, in headless Chromium, on the bundled
# sample imported by the real importer and aggregator.  Opened with no
# parameters it shows the 30 days ending at the newest day with data (the
# virtual clock, from /freshness), not the last 30 wall-clock days; the daily
# net, the range net and the CSV download are exact against this test's own
# sums of the CSV (Python, Decimal); presets 7 d / 90 d / all choose their
# ranges; freshness names the newest event, the backlog and the archive
# boundary; every bar colour has at least 3:1 contrast on the page; nothing
# overflows a 420 px phone screen.  Screenshots at 420 px and 1400 px are
# kept as artifacts/dashboard-420.png and artifacts/dashboard-1400.png.  With
# API_TOKEN set the page asks for the token instead of failing silently.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"
agg_pid=
trap '[ -n "$agg_pid" ] && kill -KILL "$agg_pid" 2>/dev/null; api_stop' EXIT

CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || bail_out "chromium is not installed (scripts/deps.sh installs it)"
chrome() { # URL, then chromium flags
    local url=$1
    shift
    timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-dev-shm-usage --no-first-run --user-data-dir="$PWD/chrome-profile" \
        --virtual-time-budget=15000 "$@" "$url" 2>>chrome.log
}
non200() { # requests answered with anything but 200, all routes
    curl -s "$API_URL/metrics" | awk '/^txagg_api_requests_total/ && !/code="200"/ { n += $2 } END { print n + 0 }'
}
count() { # route: requests answered 200
    curl -s "$API_URL/metrics" | awk -v r="route=\"$1\",code=\"200\"" 'index($0, r) { n += $2 } END { print n + 0 }'
}
SAMPLE=$TXAGG_ROOT/deploy/data/transactions_1_month.csv

# The test's own sums: Python's reading of the CSV by the input rules.
apicheck truth --tsv --csv "$SAMPLE" >sums.tsv 2>/dev/null || bail_out "the oracle could not read the sample"
read -r FIRST LAST < <(apicheck range sums.tsv)

# The sample through the real services.
CONSUMER_NAME=dashboard "$TXAGG_BIN/aggregator" 2>aggregator.log &
agg_pid=$!
IMPORT_SPEED=0 "$TXAGG_BIN/importer" "$SAMPLE" 2>importer.log || bail_out "import failed: $(tail -3 importer.log)"
api_start
check "the sample is aggregated: /stats $FIRST..$LAST equals the test's sums" \
    wait_until -i 0.5 120 apicheck compare "$API_URL" "$FIRST" "$LAST" sums.tsv

# dash.py: what the page must show, from sums.tsv and the rendered DOM.
cat >dash.py <<'EOF'
import datetime as dt, html, re, sys
from collections import defaultdict
sums = defaultdict(int)   # (day, type, method) -> cents
for line in open("sums.tsv"):
    if line.startswith("#") or not line.strip():
        continue
    day, typ, method, cents = line.rstrip("\n").split("\t")
    sums[(day, typ, method)] += int(cents)

def days_in(frm, to):
    return sorted({d for (d, _, _) in sums if frm <= d <= to})

def net(frm, to):
    return sum(c if t == "deposit" else -c for (d, t, _), c in sums.items() if frm <= d <= to)

def attrs(tag):
    return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}

def tags(dom, name, cls=None):
    out = []
    for t in re.findall(r"<%s\b[^>]*>" % name, dom):
        a = attrs(t)
        if cls is None or cls in a.get("class", "").split():
            out.append(a)
    return out

def status(dom):
    return attrs(re.search(r'<p id="status"[^>]*>', dom).group(0))

def lum(hexc):
    r, g, b = (int(hexc[i:i + 2], 16) / 255 for i in (1, 3, 5))
    f = lambda c: c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "minus":          # DAY N: the day N days before DAY
    print((dt.date.fromisoformat(args[0]) - dt.timedelta(days=int(args[1]))).isoformat())
elif cmd == "cells":        # FROM TO: (day, side, method) cells with an amount
    print(sum(1 for (d, _, _), c in sums.items() if args[0] <= d <= args[1] and c))
elif cmd == "ndays":
    print(len(days_in(*args)))
elif cmd == "net":
    print(net(*args))
elif cmd == "csv":          # FROM TO: the exact body of /stats.csv
    rows = sorted((d, t, m) for (d, t, m), c in sums.items() if args[0] <= d <= args[1])
    sys.stdout.write("date,type,method,amount\r\n" +
                     "".join("%s,%s,%s,%d.%02d\r\n" % (d, t, m, sums[(d, t, m)] // 100, sums[(d, t, m)] % 100)
                             for d, t, m in rows))
elif cmd == "status":       # DOM ATTR
    print(status(open(args[0]).read()).get(args[1], ""))
elif cmd == "attr":         # DOM ID ATTR: an attribute of the element with that id
    dom = open(args[0]).read()
    m = re.search(r'<[a-z]+ [^>]*id="%s"[^>]*>' % re.escape(args[1]), dom)
    print(attrs(m.group(0)).get(args[2], "") if m else "")
elif cmd == "daily-net":    # DOM FROM TO: every day's net in the table and on the chart equals the sums
    dom = open(args[0]).read()
    want = {d: str(net(d, d)) for d in days_in(args[1], args[2])}
    rows = {a["data-day"]: a["data-net"] for a in tags(dom, "tr") if "data-net" in a}
    dots = {a["data-day"]: a["data-cents"] for a in tags(dom, "circle", "net")}
    bad = [d for d in want if rows.get(d) != want[d] or dots.get(d) != want[d]]
    if bad or set(rows) != set(want) or set(dots) != set(want):
        print("days differ: %s" % [(d, want.get(d), rows.get(d), dots.get(d)) for d in (bad or sorted(set(rows) ^ set(want)))[:5]])
        sys.exit(1)
elif cmd == "contrast":     # DOM: the lowest contrast of a bar colour against white
    fills = {a["fill"].lower() for a in tags(open(args[0]).read(), "rect", "bar")}
    assert fills and all(re.fullmatch(r"#[0-9a-f]{6}", f) for f in fills), fills
    print("%.2f" % min(1.05 / (lum(f) + 0.05) for f in fills))
elif cmd == "opaque":       # DOM: no bar drawn see-through
    rects = tags(open(args[0]).read(), "rect", "bar")
    print(sum(1 for a in rects if "fill-opacity" in a or "opacity" in a))
EOF
dash() { python3 dash.py "$@"; }

# ---- the default range: the 30 days ending at the newest day with data ----------------
FROM30=$(dash minus "$LAST" 29)
before_bad=$(non200)
before_page=$(count /)
before_stats=$(count /stats)
chrome "$API_URL/" --window-size=1400,1100 --dump-dom >dom.html
echo "# $(grep -o '<p id="status"[^>]*>' dom.html)"
is "$(dash status dom.html data-state)" ok "the page reports it drew the data"
is "$(dash status dom.html data-from) $(dash status dom.html data-to)" "$FROM30 $LAST" \
    "opened with no parameters it shows the 30 days ending at the newest day with data ($FROM30..$LAST)"
is "$(dash status dom.html data-days)" "$(dash ndays "$FROM30" "$LAST")" "it shows every day of the sample in that range"
bars=$(dash cells "$FROM30" "$LAST")
is "$(dash status dom.html data-bars)" "$bars" "it drew one bar per (day, side, method) of the sums ($bars)"
is "$(grep -o '<rect [^>]*class="bar' dom.html | wc -l)" "$bars" "the SVG holds exactly those bars"
is "$(dash status dom.html data-failed)" 0 "the browser saw no failed resource"
is "$(non200)" "$before_bad" "no request of the page load was answered with an error"
check "the browser fetched the page (200)" test "$(count /)" -gt "$before_page"
check "the page fetched /stats (200)" test "$(count /stats)" -gt "$before_stats"
check "the page fetched /freshness (200)" test "$(count /freshness)" -gt 0
like "$(grep -o '<tbody>.*</tbody>' dom.html)" '<td>visa</td>' "the totals table lists the methods"

# ---- net, exact ----------------------------------------------------------------------------
check "every day's net (deposits − withdrawals) in the table and on the chart equals the sums" \
    dash daily-net dom.html "$FROM30" "$LAST"
want_net=$(dash net "$FROM30" "$LAST")
is "$(dash attr dom.html range-net data-cents)" "$want_net" "the range's net equals the sums ($want_net cents)"
is "$(dash status dom.html data-net)" "$want_net" "the status carries the same net"
like "$(grep -o '<td id="range-net"[^<]*<' dom.html)" '>−?[0-9,]+\.[0-9]{2}<' "the range net is printed with its sign and two decimals"
like "$(cat dom.html)" '↓ withdrawals' "the lower axis is labelled withdrawals"
like "$(grep -o '<text[^>]*>−[0-9.]*[kMBT]\?</text>' dom.html | head -1)" '−' "values below zero carry a minus sign"

# ---- the CSV download, exact ---------------------------------------------------------------
href=$(dash attr dom.html csv href)
is "$href" "stats.csv?from_date=$FROM30&to_date=$LAST" "the download link asks /stats.csv for the range shown"
curl -s "$API_URL/$href" >got.csv
dash csv "$FROM30" "$LAST" >want.csv
if cmp -s got.csv want.csv; then ok "the CSV download equals the sums, byte for byte ($(wc -l <got.csv) lines)"
else not_ok "the CSV download equals the sums, byte for byte" "$(diff want.csv got.csv | head -5)"; fi

# ---- freshness ---------------------------------------------------------------------------
clock=$(redis-cli -p "$REDIS_PORT" GET system:virtual_clock)
is "$(dash attr dom.html fresh data-newest-event)" "$clock" "freshness shows the newest event time ($clock)"
is "${clock:0:10}" "$LAST" "… whose day is the sample's newest day"
is "$(dash attr dom.html fresh data-backlog)" 0 "freshness shows the ingest backlog (0: all applied)"
is "$(dash attr dom.html fresh data-archived-through)" "$(redis-cli -p "$REDIS_PORT" GET system:archived_through)" \
    "freshness shows the newest archived day (none without a persistor)"

# ---- presets -------------------------------------------------------------------------------
chrome "$API_URL/?range=7d" --window-size=1400,1100 --dump-dom >dom7.html
is "$(dash status dom7.html data-from) $(dash status dom7.html data-to)" "$(dash minus "$LAST" 6) $LAST" "preset 7 d: the 7 days ending at the newest day"
is "$(dash attr dom7.html range-net data-cents)" "$(dash net "$(dash minus "$LAST" 6)" "$LAST")" "preset 7 d: its net is exact"
chrome "$API_URL/?range=all" --window-size=1400,1100 --dump-dom >domall.html
is "$(dash status domall.html data-from) $(dash status domall.html data-to)" "$FIRST $LAST" "preset all: from the first to the newest day with data"
is "$(dash status domall.html data-days)" "$(dash ndays "$FIRST" "$LAST")" "preset all: every day of the sample"
is "$(dash attr domall.html range-net data-cents)" "$(dash net "$FIRST" "$LAST")" "preset all: its net is exact"
like "$(cat domall.html)" 'data-preset="90d"' "a 90 d preset is offered"

# ---- readable: colours and a phone screen ------------------------------------------------------
c=$(dash contrast dom.html)
check "every bar colour has at least 3:1 contrast against the white page (lowest $c:1)" \
    python3 -c "import sys; sys.exit(0 if $c >= 3 else 1)"
is "$(dash opaque dom.html)" 0 "no bar is drawn see-through (withdrawals as solid as deposits)"
chrome "$API_URL/" --window-size=420,900 --dump-dom >dom420.html
is "$(dash status dom420.html data-state)" ok "at 420 px the page draws the data"
# (headless Chromium may lay a narrow window out a little wider: the page
# reports the width it had)
vw=$(dash status dom420.html data-viewport)
check "a phone-sized window ($vw px wide)" test "${vw:-0}" -le 500
is "$(dash status dom420.html data-overflow)" 0 "on a phone-sized screen nothing is wider than the screen"
viewbox=$(dash attr dom420.html chart viewBox)
check "on a phone-sized screen the chart is drawn for its width, not shrunk from a desktop one ($viewbox)" \
    python3 -c "import sys; w = float('$viewbox'.split()[2]); sys.exit(0 if 300 <= w <= $vw else 1)"

mkdir -p "$TXAGG_ROOT/artifacts"
for w in 420 1400; do
    png="$TXAGG_ROOT/artifacts/dashboard-$w.png"
    rm -f "$png"
    h=1100
    [ "$w" = 420 ] && h=1800
    chrome "$API_URL/" --window-size=$w,$h --hide-scrollbars --screenshot="$png" >/dev/null
    is "$(head -c 8 "$png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a "a $w px screenshot is kept as artifacts/dashboard-$w.png"
    check "the $w px screenshot is not blank ($(stat -c %s "$png" 2>/dev/null) bytes)" test "$(stat -c %s "$png" 2>/dev/null || echo 0)" -gt 20000
done

# ---- with a token required: the page says so and shows the token field -------------------------
api_stop_checked
api_start API_TOKEN=dashboard-secret
chrome "$API_URL/" --dump-dom >dom-auth.html
is "$(dash status dom-auth.html data-state)" auth "with API_TOKEN set the page asks for the token"
like "$(grep -o '<label id="tokenbox"[^>]*>' dom-auth.html)" '^<label id="tokenbox">$' "the token field is shown"

api_stop_checked
kill -TERM "$agg_pid"
wait "$agg_pid"
is "$?" 0 "the aggregator exits 0"
agg_pid=
done_testing
