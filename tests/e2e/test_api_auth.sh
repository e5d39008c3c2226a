#!/usr/bin/env bash
# With API_TOKEN set, /stats, /stats.csv, /freshness, /metrics, /openapi.json and /docs answer 401
# JSON without the bearer token or with a wrong one, 200 with the right one;
# /health, /ready and the dashboard stay open.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"
trap 'api_stop' EXIT

TOKEN='t0k-3n.With_Symbols~42'
seed <<'EOF2'
hot 2026-01-05 deposit visa 12345
EOF2
api_start API_TOKEN="$TOKEN"

for p in "/stats?from_date=2026-01-01&to_date=2026-01-31" "/stats.csv?from_date=2026-01-01&to_date=2026-01-31" \
    /freshness /metrics /openapi.json /docs; do
    http GET "$p"
    is "$HTTP_STATUS" 401 "GET $p without a token answers 401"
    like "$HTTP_BODY" '^\{"detail":"[^"]*bearer token[^"]*"\}$' "GET $p without a token answers a JSON detail"
    like "$HTTP_HEADERS" 'WWW-Authenticate: Bearer' "GET $p without a token names the Bearer scheme"
    http GET "$p" -H "Authorization: Bearer wrong-token"
    is "$HTTP_STATUS" 401 "GET $p with a wrong token answers 401"
    http GET "$p" -H "Authorization: Bearer ${TOKEN}x"
    is "$HTTP_STATUS" 401 "GET $p with the token plus one byte answers 401"
    http GET "$p" -H "Authorization: Bearer ${TOKEN%?}"
    is "$HTTP_STATUS" 401 "GET $p with the token minus one byte answers 401"
    http GET "$p" -H "Authorization: Basic $TOKEN"
    is "$HTTP_STATUS" 401 "GET $p with another scheme answers 401"
    http GET "$p" -H "Authorization: Bearer $TOKEN"
    is "$HTTP_STATUS" 200 "GET $p with the right token answers 200"
done
http GET "/stats?from_date=2026-01-05&to_date=2026-01-05" -H "Authorization: bearer $TOKEN"
is "$HTTP_BODY" '{"data":{"2026-01-05":{"deposits":{"visa":123.45},"withdrawals":{}}}}' \
    "the scheme is case-insensitive and the answer is the data"
http GET "/stats?from_date=bad" -H "Authorization: Bearer wrong"
is "$HTTP_STATUS" 401 "the token is checked before the parameters"
for p in /health /ready /; do
    http GET "$p"
    is "$HTTP_STATUS" 200 "GET $p stays open without a token"
done
http GET /nope
is "$HTTP_STATUS" 404 "an unknown path is 404 with or without a token"
http POST /stats
is "$HTTP_STATUS" 405 "a wrong method is 405 before the token check"
like "$(curl -s -H "Authorization: Bearer $TOKEN" "$API_URL/metrics")" \
    'txagg_api_requests_total\{route="/stats",code="401"\} [1-9]' "401s are counted in the metrics"
if grep -q -- "$TOKEN" api.log; then not_ok "the token never appears in the log"; else ok "the token never appears in the log"; fi

api_stop_checked
done_testing
