#!/usr/bin/env bash
# libmongoc's own log goes through common/log: with MongoDB paused (SIGSTOP)
# under cold /stats reads and /ready probes, every line the api writes is
# logfmt with svc=api — no line in the driver's own format — the driver's
# per-call I/O failures ("Failed to buffer 4 bytes") come at DEBUG as
# msg="mongodb driver" with its domain, never as warnings, and the outage is
# logged once when it starts and once when it ends.  The shared MongoDB-wire
# server is always continued (trap).
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"
MPID=${TXAGG_TEST_MONGO_PID:?the harness exports TXAGG_TEST_MONGO_PID}
trap 'kill -CONT "$MPID" 2>/dev/null; api_stop' EXIT
# One archived day (MongoDB is asked up to 2026-01-10) and one hot day.
printf '%s\n' "version 1" "through 2026-01-10" "doc 2026-01-02 deposit visa 100" "hot 2026-01-15 deposit visa 4200" |
    seed || bail_out "seeding failed"
COLD='/stats?from_date=2026-01-01&to_date=2026-01-05'
cold_answers() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$API_URL$COLD")" = 200 ]; }

# outage LEVEL: a fresh api at LOG_LEVEL, cold reads and probes while MongoDB
# is paused, then recovered; its log in LEVEL.log.
outage() {
    # quick heartbeats: the driver sees the server back sooner after SIGCONT
    api_start LOG_LEVEL="$1" MONGODB_TIMEOUT_MS=1000 MONGODB_URI="${MONGODB_URI%/}/?heartbeatFrequencyMS=500"
    check "[$1] the driver keeps no shared-memory counters (MONGOC_DISABLE_SHM=1 from the harness)" \
        test ! -e "/dev/shm/mongoc-$API_PID"
    http GET /ready
    is "$HTTP_STATUS" 200 "[$1] the api is ready before the pause"
    kill -STOP "$MPID"
    local i
    for i in 1 2; do
        http GET "/stats?from_date=2026-01-0$i&to_date=2026-01-05"
        [ "$HTTP_STATUS" = 503 ] || break
        http GET /ready
    done
    is "$HTTP_STATUS" 503 "[$1] cold reads and /ready answer 503 while MongoDB is paused"
    kill -CONT "$MPID"
    check "[$1] the cold range answers again after MongoDB continues" wait_until 60 cold_answers
    api_stop_checked
    mv api.log "$1.log"
}

# Bytes, not characters: a driver message is not promised to be UTF-8.
not_logfmt() { LC_ALL=C grep -Ev '^ts=[0-9T:.Z-]+ level=(debug|info|warning|error) svc=api msg="[^"]*"( [a-z_]+=.*)?$' "$1"; }

outage DEBUG
bad=$(not_logfmt DEBUG.log)
is "$bad" "" "at DEBUG every line of the api's log is logfmt with svc=api (no line in libmongoc's own format)"
like "$(cat DEBUG.log)" 'level=debug svc=api msg="mongodb driver" domain=[a-z_]+ detail="' \
    "the driver's lines come through common/log (level=debug, msg=\"mongodb driver\", domain, detail)"
is "$(grep 'msg="mongodb driver"' DEBUG.log | grep -vc '^ts=[^ ]* level=debug ')" 0 \
    "every line of the driver during the outage is at DEBUG"
is "$(grep 'msg="mongodb driver"' DEBUG.log | grep -c 'level=warning.*domain=stream')" 0 \
    "no per-call I/O failure of the driver is a warning"

outage INFO
bad=$(not_logfmt INFO.log)
is "$bad" "" "at INFO every line of the api's log is logfmt with svc=api"
is "$(grep -c 'Failed to buffer\|Failed to read' INFO.log | tr -d ' ')" \
    "$(grep 'Failed to buffer\|Failed to read' INFO.log | grep -c 'msg="dependency unreachable, retrying"')" \
    "at INFO the driver's per-call failures appear only inside the one outage line"
is "$(grep -c 'msg="dependency unreachable, retrying" dep=mongodb' INFO.log)" 1 "the outage is logged once when it starts"
is "$(grep -c 'msg="dependency reachable again" dep=mongodb' INFO.log)" 1 "and once when it ends"
done_testing
