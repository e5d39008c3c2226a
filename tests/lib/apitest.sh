# tests/lib/apitest.sh — helpers for the API's end-to-end tests (tests/e2e/test_api_*.sh).
#
#   . "$TXAGG_ROOT/tests/lib/tap.sh"; . "$TXAGG_ROOT/tests/lib/apitest.sh"
#   api_start [VAR=value…]       start bin/api on a free loopback port; sets API_PID, API_URL
#   api_stop                     stop it (TERM, then KILL) — call from the EXIT trap
#   api_stop_checked             stop it and check it exits 0 within 10 s with no sanitizer report
#   http GET /path [curl args…]  sets HTTP_STATUS, HTTP_BODY, HTTP_HEADERS (and HTTP_SECS)
#   http_until_ok /path          http GET /path again (every 0.2 s, for at least 20 s and
#                                100 tries) until it answers 200; HTTP_* of the last answer
#   seed < commands              tests/tools/apiseed (hot / frozen / pending / doc … lines)
#   apicheck SUBCOMMAND …        tests/lib/oracle.py (the Python oracle)
# (sizes: scaled FULL SMALL from tests/lib/helpers.sh, via tests/lib/tap.sh)
#
# The harness exports REDIS_PORT, MONGODB_URI, MONGODB_DATABASE (one per test
# file) and API_HOST=127.0.0.1; the scratch directory is the working directory.

. "$TXAGG_ROOT/scripts/lib/common.sh"

API_PID=
API_URL=

api_start() {
    local port
    port=$(txagg_free_port)
    env "$@" API_PORT="$port" "$TXAGG_BIN/api" >>api.log 2>&1 &
    API_PID=$!
    API_URL="http://127.0.0.1:$port"
    txagg_wait_http "$API_URL/health" 30 || bail_out "api did not start: $(tail -5 api.log)"
}

api_stop() {
    [ -n "$API_PID" ] && txagg_stop_pid "$API_PID"
    API_PID=
}

api_stop_checked() {
    local pid=$API_PID rc
    API_PID=
    kill -TERM "$pid" 2>/dev/null
    wait_until 10 eval "! kill -0 $pid 2>/dev/null"
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null
        not_ok "api stops within 10 s of SIGTERM"
        return
    fi
    wait "$pid"
    rc=$?
    is "$rc" 0 "api exits 0 on SIGTERM"
    if grep -Eq 'Sanitizer|runtime error:' api.log; then
        not_ok "api ran without a sanitizer report" "$(grep -E -m3 'Sanitizer|runtime error:' api.log)"
    else
        ok "api ran without a sanitizer report"
    fi
}

# http METHOD PATH [extra curl arguments]
http() {
    local method=$1 path=$2 t0 t1
    shift 2
    t0=$(date +%s.%N)
    HTTP_STATUS=$(curl -s -o http.body -D http.headers -X "$method" --max-time 30 -w '%{http_code}' "$@" "$API_URL$path")
    t1=$(date +%s.%N)
    HTTP_BODY=$(cat http.body)
    HTTP_HEADERS=$(tr -d '\r' <http.headers)
    HTTP_SECS=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
}

_http_ok() { http GET "$1" && [ "$HTTP_STATUS" = 200 ]; }
http_until_ok() { wait_until -i 0.2 20 _http_ok "$1"; }

seed() {
    "$TXAGG_TESTBIN/tools/apiseed" "$@"
}

apicheck() {
    /usr/bin/python3 "$TXAGG_ROOT/tests/lib/oracle.py" "$@"
}
