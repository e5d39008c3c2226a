#!/usr/bin/env bash
# The API contract, endpoint by endpoint and error by error, against a real
# bin/api, redis-server and MongoDB-wire server; /stats answers compared
# exactly with the ground truth the Python oracle invented (tests/lib/oracle.py).
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"
trap 'api_stop' EXIT

apicheck scenario 42 sc || bail_out "scenario generation failed"
seed <sc.seed || bail_out "seeding failed"
api_start MAX_RANGE_DAYS=400

json() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))" "$1" "$2"; }
header() { printf '%s\n' "$HTTP_HEADERS" | grep -i "^$1:" | head -1 | cut -d' ' -f2- ; }

# ---- exact answers over every tier ------------------------------------------------
for range in "2025-12-01 2026-01-31" "2026-01-01 2026-01-31" "2025-12-05 2025-12-05" "2026-01-11 2026-01-14" \
    "2026-01-09 2026-01-12" "2025-11-01 2026-02-28" "2026-01-15 2026-01-31"; do
    check "stats $range equals the ground truth (hot, cold, frozen, late rows)" \
        apicheck compare "$API_URL" $range sc.truth.json
done
check "a cold range read twice is answered the same from the cold cache" \
    apicheck compare "$API_URL" 2025-12-01 2026-01-10 sc.truth.json
http GET "/stats?from_date=2024-01-01&to_date=2024-01-31"
is "$HTTP_STATUS" 200 "a range without data answers 200"
is "$HTTP_BODY" '{"data":{}}' "a range without data answers an empty data object"
http GET "/stats?from_date=2026-01-11&to_date=2026-01-11"
is "$(header Content-Type)" "application/json" "stats answers application/json"
is "$(header Content-Length)" "$(printf '%s' "$HTTP_BODY" | wc -c)" "Content-Length is the body's length"
like "$(curl -s "$API_URL/metrics")" 'txagg_api_snapshots_total\{path="answer_cache"\} [1-9]' \
    "a range read again with nothing changed was answered from the answer cache"
# Two new ranges on one connection: the second is not cached, and the worker's
# layout hint from the first lets it take the MULTI/EXEC path.
multi0=$(curl -s "$API_URL/metrics" | sed -n 's/^txagg_api_snapshots_total{path="multi"} //p')
curl -s -o /dev/null -o /dev/null "$API_URL/stats?from_date=2026-01-02&to_date=2026-01-20" \
    "$API_URL/stats?from_date=2026-01-03&to_date=2026-01-20"
multi1=$(curl -s "$API_URL/metrics" | sed -n 's/^txagg_api_snapshots_total{path="multi"} //p')
check "a second range on one connection took the MULTI/EXEC snapshot path ($multi0 -> $multi1)" \
    test "${multi1:-0}" -gt "${multi0:-0}"
like "$(curl -s "$API_URL/metrics")" 'txagg_api_cold_cache_hits_total [1-9]' "repeated cold reads hit the cold cache"

# amounts print exactly: cents beyond 2^53, one cent, whole units
seed <<'EOF'
hot 2030-01-01 deposit big 900719925474099317
hot 2030-01-01 deposit cent 1
hot 2030-01-01 withdrawal round 10000
hot 2030-01-01 withdrawal tens 34340
EOF
http GET "/stats?from_date=2030-01-01&to_date=2030-01-01"
is "$HTTP_BODY" '{"data":{"2030-01-01":{"deposits":{"big":9007199254740993.17,"cent":0.01},"withdrawals":{"round":100.0,"tens":343.4}}}}' \
    "amounts print exactly from cents (beyond 2^53, 0.01, 100.0, 343.4)"
seed <<'EOF'
hot 2030-01-02 deposit only 5
EOF
http GET "/stats?from_date=2030-01-02&to_date=2030-01-02"
is "$HTTP_BODY" '{"data":{"2030-01-02":{"deposits":{"only":0.05},"withdrawals":{}}}}' \
    "a day with one side still has both keys"

# ---- /stats.csv: the same merge as CSV, exact cents ----------------------------------
for range in "2025-12-01 2026-01-31" "2026-01-11 2026-01-14" "2024-01-01 2024-01-31"; do
    set -- $range
    curl -s -D csv.headers -o csv.body "$API_URL/stats.csv?from_date=$1&to_date=$2"
    apicheck body-csv sc.truth.json "$1" "$2" >csv.want
    if cmp -s csv.body csv.want; then ok "stats.csv $range equals the ground truth, byte for byte"
    else not_ok "stats.csv $range equals the ground truth, byte for byte" "$(diff csv.want csv.body | head -5)"; fi
done
like "$(tr -d '\r' <csv.headers)" "Content-Type: text/csv; charset=utf-8; header=present" "stats.csv answers text/csv"
like "$(tr -d '\r' <csv.headers)" 'Content-Disposition: attachment; filename="txagg-2024-01-01-2024-01-31.csv"' \
    "stats.csv names the file of its range"
http GET "/stats.csv?from_date=2030-01-01&to_date=2030-01-02"
is "$HTTP_BODY" "$(printf 'date,type,method,amount\r\n2030-01-01,deposit,big,9007199254740993.17\r\n2030-01-01,deposit,cent,0.01\r\n2030-01-01,withdrawal,round,100.00\r\n2030-01-01,withdrawal,tens,343.40\r\n2030-01-02,deposit,only,0.05\r\n')" \
    "stats.csv prints two decimals exactly from the cents (beyond 2^53 too)"
http GET "/stats.csv?from_date=2026-02-01&to_date=2026-01-01"
is "$HTTP_STATUS" 400 "stats.csv refuses what /stats refuses"

# ---- /freshness: the clock, the archive boundary, the backlog -------------------------
redis-cli -p "$REDIS_PORT" SET system:virtual_clock 2026-01-31T23:59:58Z >/dev/null
redis-cli -p "$REDIS_PORT" XGROUP CREATE transactions aggregators '$' MKSTREAM >/dev/null
for i in 1 2 3; do redis-cli -p "$REDIS_PORT" XADD transactions '*' ts x >/dev/null; done
http GET /freshness
is "$HTTP_STATUS" 200 "GET /freshness answers 200"
is "$HTTP_BODY" "{\"newest_event\":\"2026-01-31T23:59:58Z\",\"newest_day\":\"2026-01-31\",\"archived_through\":\"$(redis-cli -p "$REDIS_PORT" GET system:archived_through)\",\"backlog\":3,\"max_range_days\":400}" \
    "/freshness reports the clock, its day, archived_through, the 3 entries not yet applied and MAX_RANGE_DAYS"
redis-cli -p "$REDIS_PORT" DEL transactions system:virtual_clock >/dev/null
http GET /freshness
like "$HTTP_BODY" '^\{"newest_event":null,"newest_day":null,"archived_through":"[0-9-]+","backlog":null,' \
    "before any event, /freshness says null"
http GET "/freshness?x=1"
is "$HTTP_STATUS" 400 "/freshness refuses parameters"

# ---- /stats errors: 400 {"detail": ...} -------------------------------------------
bad() { # QUERY EXPECTED-DETAIL-REGEX NAME
    http GET "/stats$1"
    is "$HTTP_STATUS" 400 "$3: 400"
    like "$(json "$HTTP_BODY" 'd["detail"]' 2>/dev/null)" "$2" "$3: detail says why"
}
bad "" "missing parameter from_date" "no parameters"
bad "?from_date=2026-01-01" "missing parameter to_date" "missing to_date"
bad "?to_date=2026-01-01" "missing parameter from_date" "missing from_date"
bad "?from_date=2026-1-1&to_date=2026-01-02" "from_date must be a date YYYY-MM-DD" "malformed from_date"
bad "?from_date=2026-01-01&to_date=yesterday" "to_date must be a date YYYY-MM-DD, got 'yesterday'" "malformed to_date"
bad "?from_date=&to_date=2026-01-02" "from_date must be a date" "empty from_date"
bad "?from_date=2026-02-30&to_date=2026-03-01" "2026-02-30 is not a real calendar date" "impossible date"
bad "?from_date=1969-12-31&to_date=2026-03-01" "not a real calendar date" "date before 1970"
bad "?from_date=2026-02-01&to_date=2026-01-01" "from_date 2026-02-01 is after to_date 2026-01-01" "from after to"
bad "?from_date=2025-01-01&to_date=2026-02-05" "spans 401 days, more than the limit of 400 \\(MAX_RANGE_DAYS\\)" \
    "range beyond MAX_RANGE_DAYS"
bad "?from_date=2026-01-01%00&to_date=2026-01-02" "from_date contains a NUL byte" "NUL in a value"
bad "?from_date=2026-01-01&to_date=2026-01-02&from_date=2026-01-03" "given more than once" "repeated parameter"
bad "?from_date=2026-01-01&to_date=2026-01-02&limit=5" "unknown parameter 'limit'" "unknown parameter"
bad "?from_date=$(printf '9%.0s' $(seq 80))&to_date=2026-01-02" "from_date is too long \\(at most 64 bytes\\)" \
    "oversized value"
bad "?from_date=2026-01-01&to_date=2026-01-02&x=$(printf 'a%.0s' $(seq 1100))" \
    "query string too long \\(at most 1024 bytes\\)" "oversized query string"
http GET "/stats?from_date=2026-01-01&to_date=2026-01-02"
is "$HTTP_STATUS" 200 "a 400 does not disturb the next request"

# ---- other endpoints --------------------------------------------------------------
http GET /health
is "$HTTP_STATUS" 200 "GET /health answers 200"
is "$HTTP_BODY" '{"status":"ok"}' "GET /health says ok"
http HEAD /health -I
is "$HTTP_STATUS" 200 "HEAD /health answers 200"
is "$(header Content-Length)" 15 "HEAD /health announces the GET body's length"
http GET /ready
is "$HTTP_STATUS" 200 "GET /ready answers 200 with Redis and MongoDB up"
is "$(json "$HTTP_BODY" '(d["status"], d["redis"], d["mongodb"])')" "('ready', 'ok', 'ok')" "GET /ready names both checks"
http GET "/ready?deps=redis"
is "$HTTP_STATUS" 200 "GET /ready?deps=redis answers 200 with Redis up"
http GET "/ready?deps=mongo"
is "$HTTP_STATUS" 400 "GET /ready with another parameter is refused with 400"
like "$HTTP_BODY" '"detail":' "the refusal is the JSON error shape"
http GET /metrics
is "$HTTP_STATUS" 200 "GET /metrics answers 200"
like "$(header Content-Type)" "^text/plain; version=0.0.4" "metrics use the Prometheus text format"
like "$HTTP_BODY" 'txagg_api_requests_total\{route="/stats",code="400"\} [1-9]' "metrics count requests by route and status"
like "$HTTP_BODY" 'txagg_api_requests_total\{route="/stats",code="200"\} [1-9]' "metrics count successful /stats"
like "$HTTP_BODY" 'txagg_api_request_duration_seconds_bucket\{route="/stats",le="0.005"\} [0-9]+' \
    "metrics have a latency histogram per route"
for m in txagg_redis_errors_total txagg_mongo_errors_total txagg_api_consistency_retries_total \
    txagg_api_cold_cache_misses_total process_resident_memory_bytes; do
    like "$HTTP_BODY" "^$m [0-9]+" "metrics export $m"
done
http GET /openapi.json
is "$HTTP_STATUS" 200 "GET /openapi.json answers 200"
check "openapi.json is OpenAPI 3.1 and describes every endpoint, parameter and error" \
    python3 - "$HTTP_BODY" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
assert d["openapi"].startswith("3.1"), d["openapi"]
paths = d["paths"]
served = ["/stats", "/stats.csv", "/freshness", "/health", "/ready", "/metrics", "/openapi.json", "/docs", "/"]
assert sorted(paths) == sorted(served), sorted(paths)
for p in served:  # HEAD is served wherever GET is
    assert "get" in paths[p] and "head" in paths[p], p
ids = [op["operationId"] for item in paths.values() for op in item.values()]
assert len(ids) == len(set(ids)), ids
text = json.dumps(d)
for kind in ("responses", "parameters", "schemas"):  # nothing defined and never used
    for name in d["components"].get(kind, {}):
        assert text.count('"#/components/%s/%s"' % (kind, name)) > 0, (kind, name)
def deref(o):
    return d["components"]["parameters"][o["$ref"].rsplit("/", 1)[1]] if "$ref" in o else o
params = {deref(p)["name"]: deref(p) for p in paths["/stats"]["get"]["parameters"]}
assert params["from_date"]["required"] and params["to_date"]["required"], params
for code in ["200", "400", "401", "500", "503"]:
    assert code in paths["/stats"]["get"]["responses"], code
assert "Error" in d["components"]["schemas"], d["components"]["schemas"].keys()
assert "bearer" in json.dumps(d["components"]["securitySchemes"]).lower()
EOF
for p in "/stats?from_date=2026-01-01&to_date=2026-01-02" "/stats.csv?from_date=2026-01-01&to_date=2026-01-02" \
    /freshness /health /ready /metrics /openapi.json /docs /; do
    # /metrics (and /freshness's ages) change between two requests: a few
    # tries settle it, a HEAD that announces a wrong length fails them all.
    for try in 1 2 3 4 5; do
        get_len=$(curl -s "$API_URL$p" | wc -c)
        http HEAD "$p" -I
        [ "$HTTP_STATUS $(header Content-Length)" = "200 $get_len" ] && break
    done
    is "$HTTP_STATUS $(header Content-Length)" "200 $get_len" "HEAD ${p%%\?*} answers 200 with the GET body's length, as documented"
done
http GET /docs
is "$HTTP_STATUS" 200 "GET /docs answers 200"
like "$(header Content-Type)" "^text/html" "docs are HTML"
for p in /stats /stats.csv /freshness /health /ready /metrics /openapi.json from_date to_date MAX_RANGE_DAYS API_TOKEN \
    API_PROBE_PORT API_HEAD_TIMEOUT_S; do
    like "$HTTP_BODY" "$p" "docs mention $p"
done
http GET /
is "$HTTP_STATUS" 200 "GET / (the dashboard) answers 200"
like "$HTTP_BODY" "<svg" "the dashboard page draws with SVG"
if printf '%s' "$HTTP_BODY" | grep -Eiq '<script[^>]+src=|<link[^>]+href="?https?:'; then
    not_ok "the dashboard loads nothing from elsewhere"
else ok "the dashboard loads nothing from elsewhere"; fi

# ---- 404, 405, 414, oversized requests ------------------------------------------------
for p in /nope /stats/ /health/x "/%2e%2e/etc/passwd" "/stats%00x" "/%73tats"; do
    http GET "$p"
    is "$HTTP_STATUS" 404 "GET $p answers 404"
    is "$HTTP_BODY" '{"detail":"not found"}' "GET $p answers a JSON detail"
done
for m in POST PUT DELETE PATCH; do
    http $m "/stats?from_date=2026-01-01&to_date=2026-01-02"
    is "$HTTP_STATUS" 405 "$m /stats answers 405"
    is "$(header Allow)" "GET, HEAD" "$m /stats names the allowed methods"
done
http POST /health -d x
is "$HTTP_STATUS" 405 "POST /health answers 405"
http GET "/$(printf 'a%.0s' $(seq 1100))"
is "$HTTP_STATUS" 414 "a path over 1024 bytes answers 414"
long=$(printf 'b%.0s' $(seq 9000))
http GET /health -H "X-Filler: $long"
isnt "$HTTP_STATUS" 200 "a request head over 8 KiB is refused"
like "$HTTP_STATUS" '^(4[0-9][0-9]|000)$' "a request head over 8 KiB gets a 4xx (or the connection closed)"
http GET /health
is "$HTTP_STATUS" 200 "the server still answers after an oversized request"

# ---- keep-alive -------------------------------------------------------------------
check "keep-alive: three requests on one connection, each complete" python3 - "$API_URL" <<'EOF'
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
socks = set()
for path in ["/health", "/stats?from_date=2026-01-01&to_date=2026-01-31", "/nope"]:
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    assert len(body) == int(r.getheader("Content-Length")), path
    assert not r.will_close, path
    socks.add(id(c.sock))
assert len(socks) == 1
EOF

check "pipelined requests, some with unread bodies, are each answered in order" python3 - "$API_URL" <<'EOF'
import re, socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port))
s.settimeout(3)
s.sendall(b"POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world"
          b"GET /stats?from_date=2026-01-11&to_date=2026-01-11 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
          b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    data += c
codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
assert codes == [b"405", b"200", b"404", b"200"], codes
EOF

api_stop_checked
done_testing
