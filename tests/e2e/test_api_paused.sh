#!/usr/bin/env bash
# MongoDB paused (SIGSTOP): a range that needs it answers 503 with a clear
# detail within 5 s, /ready answers 503, a range served from Redis alone keeps
# answering 200 — also while other workers wait on MongoDB — and everything
# recovers after SIGCONT.  MongoDB down (a closed port): the same 503 and
# hot 200.  Redis paused: /stats answers 503 within 5 s instead
# of hanging, /health stays 200, and it recovers.  The servers are shared by
# the test run: they are always continued (trap).
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"
MPID=${TXAGG_TEST_MONGO_PID:?the harness exports TXAGG_TEST_MONGO_PID}
RPID=${TXAGG_TEST_REDIS_PID:?the harness exports TXAGG_TEST_REDIS_PID}
trap 'kill -CONT "$MPID" "$RPID" 2>/dev/null; api_stop' EXIT

seed <<'EOF2'
version 3
through 2026-01-10
doc 2026-01-02 deposit visa 100
doc 2026-01-03 withdrawal paypal 250
doc 2026-01-09 deposit visa 7
hot 2026-01-15 deposit visa 4200
hot 2026-01-16 withdrawal crypto 99
EOF2
api_start LOG_LEVEL=INFO  # default timeouts: MONGODB_TIMEOUT_MS=2000, REDIS_TIMEOUT_MS=2000

HOT='/stats?from_date=2026-01-11&to_date=2026-01-31'
COLD='/stats?from_date=2026-01-01&to_date=2026-01-05'
CACHED='/stats?from_date=2026-01-08&to_date=2026-01-09'
http GET "$CACHED"
is "$HTTP_BODY" '{"data":{"2026-01-09":{"deposits":{"visa":0.07},"withdrawals":{}}}}' "a cold range answers before the pause"

kill -STOP "$MPID"
http GET "$COLD"
is "$HTTP_STATUS" 503 "a range that needs MongoDB answers 503 while MongoDB is paused"
like "$HTTP_BODY" '^\{"detail":"MongoDB unavailable: ' "the 503 detail names MongoDB"
check "the 503 came within 5 s (took ${HTTP_SECS}s)" python3 -c "import sys; sys.exit(not $HTTP_SECS < 5)"
like "$HTTP_HEADERS" 'Retry-After: 1' "the 503 says when to retry"

# A worker blocked on MongoDB must not stop the others.
curl -s -o /dev/null --max-time 30 "$API_URL$COLD" &
slow=$!
sleep 0.3
http GET "$HOT"
is "$HTTP_STATUS" 200 "a range served from Redis alone answers 200 while MongoDB is paused"
is "$HTTP_BODY" '{"data":{"2026-01-15":{"deposits":{"visa":42.0},"withdrawals":{}},"2026-01-16":{"deposits":{},"withdrawals":{"crypto":0.99}}}}' \
    "the hot answer is exact"
check "the hot range answered within 1 s while another worker waited on MongoDB (${HTTP_SECS}s)" \
    python3 -c "import sys; sys.exit(not $HTTP_SECS < 1)"
wait "$slow"
http GET "$CACHED"
is "$HTTP_STATUS" 200 "a cold range already in the cold cache (same archive version) still answers 200"
is "$HTTP_BODY" '{"data":{"2026-01-09":{"deposits":{"visa":0.07},"withdrawals":{}}}}' "and its answer is exact"
http GET /ready
is "$HTTP_STATUS" 503 "/ready answers 503 while MongoDB is paused"
like "$HTTP_BODY" '"redis":"ok"' "/ready says Redis is fine"
like "$HTTP_BODY" '"detail":"MongoDB unavailable: ' "/ready names MongoDB"
check "/ready answered within 5 s (${HTTP_SECS}s)" python3 -c "import sys; sys.exit(not $HTTP_SECS < 5)"
http GET "/ready?deps=redis"
is "$HTTP_STATUS" 200 "/ready?deps=redis stays 200 while only MongoDB is paused (the pod keeps serving hot ranges)"
like "$HTTP_BODY" '"mongodb":"[^o]' "/ready?deps=redis still reports MongoDB's state"
http GET /health
is "$HTTP_STATUS" 200 "/health answers 200 while MongoDB is paused (no I/O)"

kill -CONT "$MPID"
http_until_ok "$COLD"
is "$HTTP_STATUS" 200 "the cold range answers 200 again after MongoDB continues"
is "$HTTP_BODY" '{"data":{"2026-01-02":{"deposits":{"visa":1.0},"withdrawals":{}},"2026-01-03":{"deposits":{},"withdrawals":{"paypal":2.5}}}}' \
    "the recovered cold answer is exact"
http GET /ready
is "$HTTP_STATUS" 200 "/ready answers 200 again"
metrics=$(curl -s "$API_URL/metrics")
like "$metrics" 'txagg_mongo_errors_total [1-9]' "MongoDB errors are counted"
like "$metrics" 'txagg_api_requests_total\{route="/stats",code="503"\} [1-9]' "the 503s are counted"
n=$(grep -c 'dependency unreachable, retrying.*dep=mongodb' api.log)
check "the MongoDB outage is logged once, not per request (logged $n times)" test "$n" -ge 1 -a "$n" -le 2
like "$(cat api.log)" 'dependency reachable again.*dep=mongodb' "the recovery is logged"

# ---- Redis paused -------------------------------------------------------------------
kill -STOP "$RPID"
http GET "$HOT"
is "$HTTP_STATUS" 503 "/stats answers 503 while Redis is paused"
like "$HTTP_BODY" '^\{"detail":"Redis unavailable: ' "the 503 detail names Redis"
check "the 503 came within 5 s (took ${HTTP_SECS}s)" python3 -c "import sys; sys.exit(not $HTTP_SECS < 5)"
http GET /health
is "$HTTP_STATUS" 200 "/health answers 200 while Redis is paused"
http GET /ready
is "$HTTP_STATUS" 503 "/ready answers 503 while Redis is paused"
like "$HTTP_BODY" '"detail":"Redis unavailable: ' "/ready names Redis"
http GET "/ready?deps=redis"
is "$HTTP_STATUS" 503 "/ready?deps=redis answers 503 while Redis is paused"
check "/ready answered within 5 s (${HTTP_SECS}s)" python3 -c "import sys; sys.exit(not $HTTP_SECS < 5)"
kill -CONT "$RPID"
http_until_ok "$HOT"
is "$HTTP_STATUS" 200 "/stats answers 200 again after Redis continues"
is "$HTTP_BODY" '{"data":{"2026-01-15":{"deposits":{"visa":42.0},"withdrawals":{}},"2026-01-16":{"deposits":{},"withdrawals":{"crypto":0.99}}}}' \
    "the recovered answer is exact"
like "$(curl -s "$API_URL/metrics")" 'txagg_api_redis_failures_total [1-9]' "failed Redis calls are counted"

# ---- MongoDB down (nothing listens) ---------------------------------------------------
api_stop_checked
api_start MONGODB_URI="mongodb://127.0.0.1:$(txagg_free_port)"
http GET "$COLD"
is "$HTTP_STATUS" 503 "with MongoDB down (nothing listening) a cold range answers 503"
like "$HTTP_BODY" '^\{"detail":"MongoDB unavailable: ' "the detail names MongoDB"
check "the 503 came within 5 s (took ${HTTP_SECS}s)" python3 -c "import sys; sys.exit(not $HTTP_SECS < 5)"
http GET "$HOT"
is "$HTTP_STATUS" 200 "with MongoDB down a hot range answers 200"
http GET /ready
is "$HTTP_STATUS" 503 "with MongoDB down /ready answers 503"

api_stop_checked
done_testing
