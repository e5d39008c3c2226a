#!/usr/bin/env bash
# `make run` (scripts/run.sh) brings the system up on this machine with its
# data under a state directory, imports the bundled sample exactly (checked
# against Python's own Decimal reading of the CSV), prints the URLs, stops
# everything it started on Ctrl-C (SIGINT) and nothing else, says what it
# stopped and exits 0, and a second run reuses the data: the importer says
# "already imported", totals unchanged.  `make run` itself on a terminal
# (a pty): quiet build, and Ctrl-C ends it with exit 0 and no
# "make: *** ... Error 130"; V=1 shows the compiler's command lines.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/scripts/lib/common.sh"

# Until the services' issues land, their loops are placeholders that serve no
# /health; then there is nothing to run.
if "$TXAGG_BIN/importer" /dev/null 2>&1 | grep -q 'not implemented yet'; then
    ok "make run # SKIP the services are placeholders (importer: not implemented yet)"
    done_testing
    exit
fi

export TXAGG_STATE=$PWD/run-state
export TXAGG_REDIS_PORT=$(txagg_free_port) TXAGG_MONGO_PORT=$(txagg_free_port) API_PORT=$(txagg_free_port)
export TXAGG_AGGREGATOR_PORT=$(txagg_free_port) TXAGG_PERSISTOR_PORT=$(txagg_free_port)
export TXAGG_IMPORTER_PORT=$(txagg_free_port) API_PROBE_PORT=$(txagg_free_port)
unset IMPORT_SPEED
export LOG_LEVEL=INFO # the importer says "already imported" at INFO; the harness sets WARNING
ORACLE=(/usr/bin/python3 "$TXAGG_ROOT/tests/lib/oracle.py")
"${ORACLE[@]}" truth --tsv --csv "$TXAGG_ROOT/deploy/data/transactions_1_month.csv" >expected.tsv 2>/dev/null

run_pid=
# Job control on: the background run.sh gets SIGINT like a terminal's Ctrl-C
# would deliver it (without it, a background job ignores SIGINT).
set -m
start_run() { # start_run LOG: run.sh in the background until it prints its URLs
    bash "$TXAGG_ROOT/scripts/run.sh" >"$1" 2>&1 &
    run_pid=$!
    wait_until -i 0.2 180 run_started_or_gone "$1" && grep -q '^txagg is running' "$1"
}
run_started_or_gone() { grep -q '^txagg is running' "$1" || ! txagg_pid_running "$run_pid"; }
run_gone() { ! txagg_pid_running "$run_pid"; }
# The processes run.sh started, from its own lines "... (pid N ...)".
started_pids() { grep -o '(pid [0-9]*' "$1" | grep -o '[0-9]*'; }
stop_run() { # stop_run: SIGINT, as Ctrl-C; true when run.sh exits within 60 s (status in run_rc)
    kill -INT "$run_pid" 2>/dev/null
    wait_until -i 0.2 60 run_gone || return 1
    wait "$run_pid" 2>/dev/null
    run_rc=$?
    return 0
}
cleanup() {
    [ -n "$run_pid" ] && txagg_pid_running "$run_pid" && { kill -TERM "$run_pid"; sleep 5; }
    for f in run1.log run2.log; do
        [ -f "$f" ] && for p in $(started_pids "$f"); do kill -KILL "$p" 2>/dev/null; done
    done
    true
}
trap cleanup EXIT
stats_url() { sed -n 's/^  stats  *//p' "$1"; }
exact() { # the printed stats URL covers the expected days, and answers them exactly
    local url range
    url=$(stats_url "$1") range=$("${ORACLE[@]}" range expected.tsv)
    [ "$url" = "${url%%/stats*}/stats?from_date=${range% *}&to_date=${range#* }" ] || { echo "stats URL $url, expected days $range" >compare.out; return 1; }
    "${ORACLE[@]}" compare "$url" ${range} expected.tsv >compare.out 2>&1
}
sockets_closed() {
    local p
    for p in $TXAGG_REDIS_PORT $TXAGG_MONGO_PORT $API_PORT $API_PROBE_PORT $TXAGG_AGGREGATOR_PORT $TXAGG_PERSISTOR_PORT; do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 1
    done
    return 0
}

start_run run1.log
check "make run starts and prints its URLs" [ $? = 0 ]
[ -n "$(stats_url run1.log)" ] || { sed 's/^/#   | /' run1.log; bail_out "make run did not come up"; }
for what in dashboard stats "API docs" metrics; do
    like "$(cat run1.log)" "^  $what +http://127\.0\.0\.1:$API_PORT/" "it prints the $what URL"
done
is "$(redis-cli -p "$TXAGG_REDIS_PORT" config get appendonly | tail -1)" yes "its redis-server runs with AOF on"
check "its state lives under TXAGG_STATE" test -d "$TXAGG_STATE/redis" -a -d "$TXAGG_STATE/mongo" -a -d "$TXAGG_STATE/logs"
check "/stats over the sample's dates equals the independent computation, exact to the cent" \
    wait_until -i 0.5 120 exact run1.log
sed 's/^#* */# /' compare.out
pids=$(started_pids run1.log)
like "$(cat run1.log)" "^  probes +http://127\.0\.0\.1:$API_PROBE_PORT/health" "it prints the api's probe URLs"
check "Ctrl-C (SIGINT) stops make run" stop_run
is "$run_rc" 0 "the clean stop exits 0"
like "$(cat run1.log)" '^run: stopped redis-server .*api; data kept in' "it says what it stopped"
still=
check "it names the 5 processes it started" [ "$(echo $pids | wc -w)" = 5 ]
for p in $pids; do txagg_pid_running "$p" && still+=" $p"; done
is "${still:-none}" none "every process it started is gone"
check "and nothing listens on its ports any more" sockets_closed

start_run run2.log
check "a second make run starts on the same state" [ $? = 0 ]
like "$(cat run2.log)" 'already imported' "its importer says the sample was already imported"
check "/stats is unchanged, still exact" wait_until -i 0.5 60 exact run2.log
sed 's/^#* */# /' compare.out
check "Ctrl-C stops it again" stop_run

# ---- `make run` itself, on a terminal ----------------------------------------------------
cat >pty_run.py <<'PY'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "-c", 'make --no-print-directory -C "$1" run SANITIZE="$2"; echo "make exit $?"', "-",
                       os.environ["TXAGG_ROOT"], os.environ.get("SANITIZE", "0")])
out, sent, deadline = b"", False, time.time() + 300
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if not sent and b"txagg is running" in out:
        time.sleep(1)
        os.write(fd, b"\x03")  # Ctrl-C, through the terminal as a person types it
        sent = True
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
PY
python3 pty_run.py >pty.log 2>&1
sed 's/^/#   | /' pty.log | tail -12
like "$(cat pty.log)" 'txagg is running' "make run on a terminal comes up"
like "$(cat pty.log)" '^make exit 0$' "Ctrl-C on the terminal ends make run with exit 0"
check "no 'make: *** ... Error' line" bash -c "! grep -Eq 'make(\[[0-9]+\])?: \*\*\*' pty.log"
like "$(cat pty.log)" '^run: stopped redis-server' "it says what it stopped"
check "make run printed no compiler command lines" bash -c "! grep -Eq '(^| )gcc ' pty.log"
for p in $(started_pids pty.log); do txagg_pid_running "$p" && kill -KILL "$p"; done

# ---- quiet builds: one object compiled into a scratch build directory ------------------------
mk() { make --no-print-directory -C "$TXAGG_ROOT" BUILD="$PWD/qb" BINDIR="$PWD/qb/bin" "$@" "$PWD/qb/common/money.o" 2>&1; rm -rf qb; }
out=$(mk)
like "$out" '^  CC +common/money\.c$' "make prints one short line per compiled file by default"
check "... and not the compiler's command line" bash -c '! grep -q "gcc " <<<"$1"' - "$out"
like "$(mk V=1)" 'gcc .*-c -o .*money\.o common/money\.c' "V=1 prints the compiler's command line"
is "$(mk -s)" "" "make -s (as make run builds) prints nothing"
done_testing
