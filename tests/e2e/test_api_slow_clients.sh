#!/usr/bin/env bash
# Slow clients cannot take the api's probes down.  2 × API_THREADS
# connections that send an unfinished request head (a byte at a time, like a
# slowloris) hold every worker of the main port; meanwhile /health and /ready
# on the probe port (API_PROBE_PORT: its own listener, its own threads, state
# kept by the api's loop) answer within 1 s, and the main port cuts each head
# after API_HEAD_TIMEOUT_S and serves again.  The probe's /ready follows the
# dependencies (?deps=redis as on the main port); a probe port in use stops
# the api at start.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/tests/lib/apitest.sh"
holder=
trap '[ -n "$holder" ] && kill "$holder" 2>/dev/null; api_stop' EXIT

THREADS=4 HEAD=2
N=$((2 * THREADS))
probe=$(txagg_free_port)
api_start API_THREADS=$THREADS API_HEAD_TIMEOUT_S=$HEAD API_PROBE_PORT=$probe
PROBE="http://127.0.0.1:$probe"
code() { curl -s -o /dev/null --max-time "${2:-10}" -w '%{http_code}' "$1"; }

is "$(code "$PROBE/health")" 200 "the probe port answers /health"
check "the probe port's /ready turns 200 once the loop has seen Redis and MongoDB" txagg_wait_http "$PROBE/ready" 30
is "$(code "$PROBE/ready?deps=redis")" 200 "the probe port answers /ready?deps=redis"
is "$(code "$PROBE/ready?deps=mongo")" 400 "the probe port refuses another /ready query"
is "$(code "$PROBE/metrics")" 404 "the probe port does not serve /metrics (it stays behind the token)"
is "$(code "$PROBE/stats?from_date=2026-01-01&to_date=2026-01-02")" 404 "the probe port serves no data"

# --- hold every worker with unfinished heads ---------------------------------------
cat >hold.py <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    s.setblocking(False)
    socks.append(s)
open("held", "w").write("%d\n" % n)
t0, open_ = time.monotonic(), set(range(n))
while open_ and time.monotonic() - t0 < 120:
    for i in sorted(open_):
        try:
            socks[i].send(b"X")  # one byte of a header that never ends
            if socks[i].recv(4096) == b"":
                raise ConnectionError
        except BlockingIOError:
            pass
        except OSError:
            open_.discard(i)
            print("closed %d after %.1f s" % (i, time.monotonic() - t0), flush=True)
    time.sleep(0.25)
print("still open %d" % len(open_), flush=True)
PY
rm -f held
python3 hold.py "${API_URL##*:}" "$N" >hold.log 2>&1 &
holder=$!
check "$N unfinished heads are sent (API_THREADS=$THREADS)" wait_until -i 0.5 30 test -s held
t0=$(date +%s.%N)

fast=0
for _ in 1 2 3; do
    [ "$(code "$PROBE/health" 1)" = 200 ] && [ "$(code "$PROBE/ready?deps=redis" 1)" = 200 ] && { fast=1; break; }
done
check "while every worker is held, the probe port answers /health and /ready within 1 s" [ "$fast" = 1 ]
isnt "$(code "$API_URL/health" 1)" 200 "… while the main port does not answer within 1 s (its workers are held)"

check "the main port serves again once the heads are cut" txagg_wait_http "$API_URL/health" 60
t1=$(date +%s.%N)
wait "$holder"
holder=
secs=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
echo "# main port back after $secs s; $(tail -1 hold.log)"
is "$(grep -c '^closed' hold.log)" "$N" "the server closed every unfinished head"
# Two waves of API_THREADS heads, each cut after API_HEAD_TIMEOUT_S; civetweb's
# former 10 s request timeout would have taken 20 s.
check "the heads were cut after API_HEAD_TIMEOUT_S, not civetweb's 10 s ($secs s for two waves)" \
    python3 -c "import sys; sys.exit(0 if $secs < 4 * $HEAD + 6 else 1)"
is "$(code "$API_URL/stats?from_date=2026-01-01&to_date=2026-01-02")" 200 "/stats answers again"

# --- the probe's /ready follows the dependencies ----------------------------------------
api_stop_checked
dead=$(txagg_free_port)
p2=$(txagg_free_port)
api_start API_PROBE_PORT=$p2 MONGODB_URI="mongodb://127.0.0.1:$dead" MONGODB_TIMEOUT_MS=300
# (before the loop's first check both are unknown, i.e. not ready)
redis_ready() { [ "$(code "http://127.0.0.1:$p2/ready?deps=redis")" = 200 ]; }
check "MongoDB down: the probe's /ready?deps=redis turns 200 once the loop has seen Redis" wait_until -i 0.5 30 redis_ready
is "$(code "http://127.0.0.1:$p2/ready")" 503 "MongoDB down: the probe's /ready is 503"
is "$(code "http://127.0.0.1:$p2/health")" 200 "MongoDB down: /health stays 200"
api_stop_checked

# --- a probe port in use is a start-up error -------------------------------------------
blocker=$(txagg_free_port)
api_start API_PROBE_PORT=$blocker
out=$(API_PORT=$(txagg_free_port) API_PROBE_PORT=$blocker timeout 60 "$TXAGG_BIN/api" 2>&1); rc=$?
is "$rc" 1 "a second api on the same probe port exits 1"
like "$out" "msg=\"cannot start\".*listen 127\\.0\\.0\\.1:$blocker" "its error names the probe address"
api_stop_checked
done_testing
