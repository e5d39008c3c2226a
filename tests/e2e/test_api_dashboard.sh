#!/usr/bin/env bash
# The dashboard in headless Chromium: the page loads with no failed request
# (every request the browser made, counted by the server, answered 200), and
# draws one SVG bar per (day, side, method) that /stats returns; a screenshot
# is kept as artifacts/dashboard.png.  With API_TOKEN set the page asks for
# the token instead of failing silently.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"
trap 'api_stop' EXIT

CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || bail_out "chromium is not installed (scripts/deps.sh installs it)"
chrome() { # URL, then chromium flags
    local url=$1
    shift
    timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-dev-shm-usage --no-first-run --user-data-dir="$PWD/chrome-profile" \
        --virtual-time-budget=10000 "$@" "$url" 2>>chrome.log
}
non200() { # requests answered with anything but 200, all routes
    curl -s "$API_URL/metrics" | awk '/^txagg_api_requests_total/ && !/code="200"/ { n += $2 } END { print n + 0 }'
}
count() { # route: requests answered 200
    curl -s "$API_URL/metrics" | awk -v r="route=\"$1\",code=\"200\"" 'index($0, r) { print $2 }'
}

apicheck scenario 11 sc || bail_out "scenario generation failed"
seed <sc.seed || bail_out "seeding failed"
api_start
FROM=2025-12-01 TO=2026-01-31
PAGE="$API_URL/?from_date=$FROM&to_date=$TO"

bars=$(curl -s "$API_URL/stats?from_date=$FROM&to_date=$TO" | python3 -c '
import json, sys
from decimal import Decimal
d = json.load(sys.stdin, parse_float=Decimal)["data"]
print(sum(1 for day in d.values() for side in day.values() for v in side.values() if v != 0))')
check "the range has data to draw ($bars bars)" test "$bars" -gt 50

before_bad=$(non200)
before_page=$(count /)
before_stats=$(count /stats)
chrome "$PAGE" --dump-dom >dom.html
status=$(grep -o '<p id="status"[^>]*>' dom.html)
echo "# $status"
like "$status" 'data-state="ok"' "the page reports it drew the data"
like "$status" "data-bars=\"$bars\"" "the page drew one bar per (day, side, method) of /stats ($bars)"
is "$(grep -o '<rect [^>]*class="bar' dom.html | wc -l)" "$bars" "the SVG holds exactly those bars"
like "$status" 'data-failed="0"' "the browser saw no failed resource"
is "$(non200)" "$before_bad" "no request of the page load was answered with an error"
check "the browser fetched the page (200)" test "$(count /)" -gt "$before_page"
check "the page fetched /stats (200)" test "$(count /stats)" -gt "$before_stats"
like "$(grep -o '<tbody>.*</tbody>' dom.html)" '<td>visa</td>' "the totals table lists the methods"

mkdir -p "$TXAGG_ROOT/artifacts"
rm -f "$TXAGG_ROOT/artifacts/dashboard.png"
chrome "$PAGE" --window-size=1280,900 --hide-scrollbars --screenshot="$TXAGG_ROOT/artifacts/dashboard.png" >/dev/null
check "a screenshot is kept as artifacts/dashboard.png" test -s "$TXAGG_ROOT/artifacts/dashboard.png"
is "$(head -c 8 "$TXAGG_ROOT/artifacts/dashboard.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a "the screenshot is a PNG"
check "the screenshot is not blank (size $(stat -c %s "$TXAGG_ROOT/artifacts/dashboard.png") bytes)" \
    test "$(stat -c %s "$TXAGG_ROOT/artifacts/dashboard.png")" -gt 20000

# With a token required: the page says so and shows the token field.
api_stop_checked
api_start API_TOKEN=dashboard-secret
chrome "$API_URL/?from_date=$FROM&to_date=$TO" --dump-dom >dom-auth.html
like "$(grep -o '<p id="status"[^>]*>' dom-auth.html)" 'data-state="auth"' "with API_TOKEN set the page asks for the token"
like "$(grep -o '<label id="tokenbox"[^>]*>' dom-auth.html)" '^<label id="tokenbox">$' "the token field is shown"

api_stop_checked
done_testing
