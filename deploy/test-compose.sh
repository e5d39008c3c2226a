#!/usr/bin/env bash
# deploy/test-compose.sh — `make test-compose`: the compose stack, for real.
#
# Builds the image with deploy/Dockerfile and runs deploy/docker-compose.yml
# (+ deploy/docker-compose.test.yml, which only mounts the test's data) on this
# Docker engine, under its own project name, and checks (TAP lines, one
# summary line at the end):
#   - the image: non-root, a health check, every binary runs;
#   - up with aggregator ×3 and persistor ×2: every container healthy
#     (the time from `up` to healthy is printed), published ports on 127.0.0.1;
#   - import of the bundled sample (the importer service as defined) and of a
#     generated out-of-order file spanning more than RETENTION_DAYS (txgen):
#     old days archived to mongo, GET /stats over the whole range equal to an
#     independent computation (Python Decimal over the CSV, txgen --expect),
#     exact to the cent; one consumer per aggregator replica;
#   - a second generated import, paced, with `docker kill` of an aggregator in
#     the middle of it, then `docker restart` of redis (AOF): totals exact
#     again, nothing pending, nothing left frozen; a re-run of the importer
#     adds nothing ("already imported");
#   - the `monitoring` profile: Prometheus with the shipped rules scrapes every
#     replica and fires the dead-letter alert after the import with bad rows;
#   - every service exits 0 on `docker stop` (SIGTERM handled as PID 1);
#   - the same stack on a 6-node Redis Cluster (deploy/docker-compose.cluster.yml
#     over the base file), up with aggregator ×3: the cluster made by its
#     one-shot job, the sample and a generated file exact through /stats,
#     spread over the 3 primaries; then a primary killed (SIGKILL) during a
#     paced import: its replica promoted, totals exact, nothing pending.
# Always tears down (EXIT trap, also on failure or Ctrl-C): `down -v` of its
# project (containers, network, volumes) and the image tag it built.  Kept on
# purpose, for speed: the base images and stand-ins (deploy/stand-ins/build.sh
# builds those only where a tag is missing and cannot be pulled) and the
# build cache (`docker builder prune` reclaims it).
#
# Environment: TXAGG_COMPOSE (default: `docker compose`, else docker-compose),
# TXAGG_TEST_SCALE=small (fewer rows), TXAGG_KEEP_IMAGE=1 (keep the image tag).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/lib/common.sh
. tests/lib/tap.sh
. tests/lib/stream.sh
T0=$SECONDS

docker info >/dev/null 2>&1 || { echo "test-compose: no usable Docker engine (docker info fails)" >&2; exit 1; }
bash scripts/deps.sh --if-missing --with compose || exit 1
COMPOSE=$(txagg_compose) || { echo "test-compose: neither \`docker compose\` nor docker-compose is installed" >&2; exit 1; }
bash deploy/stand-ins/build.sh || exit 1

PROJECT=txaggtest$$
IMAGE=txagg:test-$PROJECT
TMP=$(mktemp -d /tmp/txagg-compose.XXXXXX)
ART=$ROOT/artifacts/test-logs
API_PORT_HOST=$(txagg_free_port)
API=http://127.0.0.1:$API_PORT_HOST
RETENTION=7
if [ "${TXAGG_TEST_SCALE:-}" = small ]; then ROWS1=5000 ROWS2=20000; else ROWS1=50000 ROWS2=200000; fi
echo "# $COMPOSE ($($COMPOSE version 2>/dev/null | head -1)), project $PROJECT, scratch $TMP"

mkdir -p "$TMP/data"
cp deploy/data/transactions_1_month.csv "$TMP/data/"
# Settings of this run, through the compose file's own variables (the env
# file replaces deploy/.env; the shell's environment is not passed on).
cat >"$TMP/test.env" <<EOF
TXAGG_IMAGE=$IMAGE
TXAGG_TEST_DATA=$TMP/data
API_PUBLISH=127.0.0.1:$API_PORT_HOST
METRICS_PUBLISH_IP=127.0.0.1
IMPORT_SPEED=0
RETENTION_DAYS=$RETENTION
PERSIST_INTERVAL_MS=1000
PERSIST_LEASE_MS=3000
CLAIM_IDLE_MS=2000
LOG_LEVEL=INFO
EOF

# The compose files and env file of the phase running (the cluster phase adds
# deploy/docker-compose.cluster.yml and drops the monitoring profile).
COMPOSE_FILES=(-f "$ROOT/deploy/docker-compose.yml" -f "$ROOT/deploy/docker-compose.test.yml")
ENV_FILE=$TMP/test.env
dc() {
    env -i PATH="$PATH" HOME="$HOME" ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"} \
        ${DOCKER_CONFIG:+DOCKER_CONFIG="$DOCKER_CONFIG"} \
        $COMPOSE -p "$PROJECT" --env-file "$ENV_FILE" "${COMPOSE_FILES[@]}" "$@"
}
# Containers of this project (service filter optional), by label: the same
# for Compose v1 and v2, whose container names differ.
containers() {
    docker ps ${2:+-a} -q --filter "label=com.docker.compose.project=$PROJECT" \
        ${1:+--filter "label=com.docker.compose.service=$1"}
}
# The independent computation: tests/lib/oracle.py.
oracle() { /usr/bin/python3 "$ROOT/tests/lib/oracle.py" "$@"; }
# redis-cli inside the redis container (docker exec: much faster than
# `compose exec` in polling loops; `compose restart` keeps the container).
rcli() {
    [ -n "${REDIS_C:-}" ] || REDIS_C=$(containers redis)
    docker exec "$REDIS_C" redis-cli --raw "$@" 2>/dev/null
}

built_image=0
failed_once=0
teardown() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$TAP_FAILED" -gt 0 ] && failed_once=1
    if [ $failed_once = 1 ] || [ $rc != 0 ]; then
        mkdir -p "$ART"
        dc logs --no-color >"$ART/compose-$PROJECT.log" 2>&1
        echo "# compose logs kept in $ART/compose-$PROJECT.log; last lines:"
        tail -30 "$ART/compose-$PROJECT.log" | sed 's/^/#   | /'
    fi
    dc down -v --remove-orphans -t 20 >"$TMP/down.log" 2>&1 || cat "$TMP/down.log" >&2
    # One-off containers of this run (txgen) are labelled with the project.
    local left
    left=$(docker ps -aq --filter "label=org.txagg.test=$PROJECT")
    [ -z "$left" ] || docker rm -f $left >/dev/null 2>&1
    if [ $built_image = 1 ] && [ "${TXAGG_KEEP_IMAGE:-0}" != 1 ]; then docker rmi --no-prune "$IMAGE" >/dev/null 2>&1; fi
    # The classic builder (Compose v1) leaves the build stage as an untagged
    # image, labelled with this run's build id.
    left=$(docker images -q --filter dangling=true --filter "label=org.txagg.build-id=$PROJECT")
    # --no-prune keeps its parents: the classic builder's cache, not this run's.
    [ -z "$left" ] || docker rmi --no-prune $left >/dev/null 2>&1
    left="$(containers '' all)$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")"
    left+=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
    [ -z "$left" ] || echo "# WARNING: teardown left objects of project $PROJECT behind: $left"
    rm -rf "$TMP"
    echo "# test-compose wall time $((SECONDS - T0)) s"
    exit $rc
}
trap teardown EXIT
trap 'echo "# interrupted"; exit 130' INT TERM

# -- the image ---------------------------------------------------------------
docker image inspect "$IMAGE" >/dev/null 2>&1 || built_image=1
t=$SECONDS
dc build --build-arg TXAGG_BUILD_ID="$PROJECT" >"$TMP/build.log" 2>&1
rc=$?
check "the image builds from deploy/Dockerfile through the compose file" [ $rc = 0 ]
[ $rc = 0 ] || { tail -30 "$TMP/build.log" | sed 's/^/#   | /'; bail_out "no image, nothing else can run"; }
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "# image $IMAGE: $((size / 1000000)) MB, built in $((SECONDS - t)) s"
user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
check "the image runs as a non-root user ($user)" test -n "$user" -a "${user%%:*}" != 0 -a "${user%%:*}" != root
like "$(docker image inspect -f '{{json .Config.Healthcheck}}' "$IMAGE")" 'txagg-health' "the image has a HEALTHCHECK"
for b in importer aggregator persistor api; do
    is "$(docker run --rm --label "org.txagg.test=$PROJECT" "$IMAGE" "$b" --version 2>&1)" \
        "$b (txagg) $(cat VERSION)" "the image runs $b (command selects the service)"
done

# -- up, scaled ----------------------------------------------------------------
t_up=$(date +%s.%N)
dc up -d --scale aggregator=3 --scale persistor=2 redis mongo aggregator persistor api >"$TMP/up.log" 2>&1
rc=$?
check "up -d --scale aggregator=3 --scale persistor=2 starts the stack" [ $rc = 0 ]
[ $rc = 0 ] || { tail -20 "$TMP/up.log" | sed 's/^/#   | /'; bail_out "the stack did not start"; }

# All containers of the long-running services healthy (or report which are not).
wait_healthy() { # wait_healthy SECONDS N: N containers running, all healthy
    local deadline=$((SECONDS + $1)) want=$2 st n bad
    while :; do
        st=$(docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $(containers) 2>/dev/null)
        n=$(grep -c ' healthy$' <<<"$st")
        bad=$(grep -v ' healthy$' <<<"$st" | tr '\n' ' ')
        [ "$n" -ge "$want" ] && [ -z "${bad// /}" ] && return 0
        [ $SECONDS -lt $deadline ] || break
        sleep 0.5
    done
    echo "#   not healthy after $1 s: ${bad:-(only $n of $want containers)}"
    for c in $(containers '' all); do
        st=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")
        [ "$st" = "running healthy" ] && continue
        echo "#   $(docker inspect -f '{{.Name}}' "$c"): $st; last log lines:"
        docker logs --tail 5 "$c" 2>&1 | sed 's/^/#     | /'
    done
    return 1
}
# healthy_or_bail N WHAT: N containers healthy within 120 s (the time since
# t_up printed), or the test cannot go on.
healthy_or_bail() {
    if wait_healthy 120 "$1"; then
        ok "$2 are all healthy"
        echo "# up -> healthy: $(python3 -c "import time; print(round(time.time() - $t_up, 1))") s"
    else
        not_ok "$2 are all healthy"
        bail_out "the stack is not healthy; the checks below need it"
    fi
}
healthy_or_bail 8 "redis, mongo, 3 aggregators, 2 persistors and the api"
is "$(containers aggregator | wc -l)" 3 "aggregator runs 3 replicas"
is "$(containers persistor | wc -l)" 2 "persistor runs 2 replicas"
is "$(rcli config get appendonly | tail -1)" yes "redis runs with AOF on"
like "$(curl -sS --max-time 5 "$API/health")" '"ok"' "the api's /health answers on its published port 127.0.0.1:$API_PORT_HOST"
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$API/ready")" 200 "the api is ready (redis and mongo reachable)"
mport=$(dc port --index 2 aggregator 9101 2>/dev/null)
like "$mport" '^127\.0\.0\.1:[0-9]+$' "aggregator replica 2 publishes its metrics port on 127.0.0.1 ($mport)"
like "$(curl -sS --max-time 5 "http://$mport/metrics")" '^# (HELP|TYPE) ' "aggregator replica 2's /metrics answers on the host"

# -- the monitoring profile (Prometheus with the shipped rules) ----------------
# monitoring_up: start the profile's Prometheus next to the running stack (the
# profile stays active for every later compose call, `down` included) and wait
# until it has scraped every replica.  monitoring_check: after an import with
# bad rows, its targets are up, the shipped rules loaded and evaluated, and
# TxaggDeadLettersArriving fires.
PROM_HOST_PORT=$(txagg_free_port)
PROM=http://127.0.0.1:$PROM_HOST_PORT
promq() { curl -fsS --max-time 5 "$PROM$1"; }
prom_targets() { /usr/bin/python3 "$ROOT/tests/lib/promcheck.py" targets "$PROM" aggregator persistor api; }
monitoring_up() {
    printf 'COMPOSE_PROFILES=monitoring\nPROMETHEUS_PUBLISH=127.0.0.1:%s\n' "$PROM_HOST_PORT" >>"$TMP/test.env"
    dc up -d prometheus >"$TMP/up-prometheus.log" 2>&1
    check "the monitoring profile starts Prometheus" [ $? = 0 ]
    prom_healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(containers prometheus)" 2>/dev/null)" = healthy ]; }
    check "Prometheus is healthy and published on 127.0.0.1:$PROM_HOST_PORT" txagg_wait_cmd 120 prom_healthy
    check "Prometheus scrapes every replica: 3 aggregators, 2 persistors, the api" txagg_wait_cmd 60 prom_targets
}
monitoring_check() {
    local out
    out=$(prom_targets)
    check "after the import every target is still up" [ $? = 0 ]
    like "$out" '# aggregator 3/3' "Prometheus found the 3 aggregator replicas through Docker's DNS"
    like "$out" '# persistor 2/2' "and the 2 persistor replicas"
    out=$(promq /api/v1/rules)
    like "$out" '"name":"TxaggIngestBacklogGrowing"' "Prometheus loaded deploy/prometheus/txagg-rules.yml"
    unlike_err() { ! grep -q '"health":"err' <<<"$1"; }
    check "every shipped rule evaluates without error" unlike_err "$out"
    dl_firing() { [ "$(/usr/bin/python3 "$ROOT/tests/lib/promcheck.py" alert-state "$PROM" TxaggDeadLettersArriving)" = firing ]; }
    check "TxaggDeadLettersArriving fires after an import with invalid rows" txagg_wait_cmd 90 dl_firing
}
monitoring_up

# -- data ----------------------------------------------------------------------
txgen() { # txgen NAME [txgen flags…]: data/NAME.csv and data/NAME.expect, with the image's txgen
    local name=$1
    shift
    docker run --rm --label "org.txagg.test=$PROJECT" --user "$(id -u):$(id -g)" -v "$TMP/data:/out" "$IMAGE" \
        txgen "$@" --expect "/out/$name.expect" >"$TMP/data/$name.csv" 2>"$TMP/$name.txgen.log"
}
# Every valid form of row, out of time order, every 50th row invalid.
txgen gen1 --rows "$ROWS1" --start 2026-01-01 --days 30 --seed 11 --bad-every 50
rc=$?
check "txgen writes a $ROWS1-row file over 30 days and its expected totals" test $rc = 0 -a -s "$TMP/data/gen1.expect"
[ $rc = 0 ] || { sed 's/^/#   | /' "$TMP/gen1.txgen.log"; bail_out "no generated data (bin/txgen)"; }
check "the generated file is out of time order" oracle unsorted "$TMP/data/gen1.csv"
span=$(oracle span "$TMP/data/gen1.expect")
check "the generated file spans $span days, more than RETENTION_DAYS=$RETENTION" [ "$span" -gt $RETENTION ]
out=$(oracle csv-vs-expect "$TMP/data/gen1.csv" "$TMP/data/gen1.expect")
check "txgen's expected totals agree with Python's own reading of its CSV" [ $? = 0 ]
echo "$out"
oracle truth --tsv --csv "$TMP/data/transactions_1_month.csv" "$TMP/data/gen1.expect" 2>&1 >"$TMP/expected1.tsv"

# Nothing pending: stream_drained (tests/lib/stream.sh) through rcli.
drain_diag() {
    echo "#   group: $(rcli xinfo groups transactions | tr '\n' ' ')"
    echo "#   stream: $(rcli xinfo stream transactions | awk 'NR % 2 { k = $0; next } k !~ /entry/ { printf "%s=%s ", k, $0 }')"
    echo "#   consumers: $(rcli xinfo consumers transactions aggregators | tr '\n' ' ')"
}
# Archival settled: no batch in flight and no hot day older than the window.
settled() {
    local clock cutoff d
    [ "$(rcli scard system:archive:pending)" = 0 ] || return 1
    clock=$(rcli get system:virtual_clock)
    [ -n "$clock" ] || return 1
    cutoff=$(date -u -d "${clock:0:10} - $((RETENTION + 1)) days" +%F) || return 1
    for d in $(rcli smembers system:tracked_days); do [[ ! "$d" < "$cutoff" ]] || return 1; done
    return 0
}
stats_exact() { # stats_exact EXPECTED NAME
    local from to
    read -r from to < <(oracle range "$1")
    out=$(oracle compare "$API" "$from" "$to" "$1" 2>&1)
    check "$2 (/stats $from..$to)" [ $? = 0 ]
    echo "$out" | sed 's/^#* */# /'
}

# -- import 1: the bundled sample (the importer service as defined) + gen1 ----
dc run --rm --no-deps -T importer >"$TMP/import-sample.log" 2>&1
rc=$?
check "the importer service imports the bundled sample (CSV_PATH) and exits 0" [ $rc = 0 ]
[ $rc = 0 ] || { tail -10 "$TMP/import-sample.log" | sed 's/^/#   | /'; bail_out "import failed; the checks below need the importer"; }
dc run --rm --no-deps -T importer importer /data/gen1.csv >"$TMP/import-gen1.log" 2>&1
check "the importer imports the generated file and exits 0" [ $? = 0 ]
check_drained() { # check_drained SECONDS NAME
    if txagg_wait_cmd "$1" stream_drained rcli; then ok "$2"; else not_ok "$2" "not drained after $1 s"; drain_diag; fi
}
check_drained 300 "every entry is delivered and acknowledged (nothing pending)"
check "days older than RETENTION_DAYS leave redis (archival settled)" txagg_wait_cmd 300 settled
check "system:archived_through is set: days were archived to mongo" test -n "$(rcli get system:archived_through)"
oldest=$(head -1 "$TMP/expected1.tsv" | cut -f1)
is "$(rcli keys "agg:$oldest:*" | grep -c .)" 0 "the oldest day ($oldest) is no longer in redis: only mongo holds it"
stats_exact "$TMP/expected1.tsv" "/stats equals the sample + the generated file, exact to the cent"
monitoring_check
# The consumer names come from each replica's start line: XINFO CONSUMERS is
# empty once the stream is drained (apply.lua deletes a consumer that has
# acknowledged all it held: XGROUP DELCONSUMER, APPLY_OWN_ALL).
n=0
for c in $(containers aggregator); do
    h=$(docker inspect -f '{{.Config.Hostname}}' "$c")
    # Into a variable first: piped into grep -q, a long log dies of SIGPIPE
    # when grep stops at the match, and pipefail fails the pipeline.
    logs=$(docker logs "$c" 2>&1)
    grep -Eq "msg=\"started\" .* consumer=$h-[0-9]+ group=aggregators " <<<"$logs" && n=$((n + 1))
done
is "$n" 3 "each aggregator replica reads as its own consumer (hostname-pid)"

# -- import 2, paced, with an aggregator killed in the middle; redis restart --
txgen gen2 --rows "$ROWS2" --start 2026-01-20 --days 45 --seed 22 --bad-every 101 || bail_out "txgen failed"
oracle truth --tsv --csv "$TMP/data/transactions_1_month.csv" "$TMP/data/gen1.expect" "$TMP/data/gen2.expect" \
    2>&1 >"$TMP/expected2.tsv"
# Pace it to last ~20 s whatever the machine's speed: IMPORT_SPEED = total sleep_ms / 20000.
sleep_total=$(oracle sleep-total "$TMP/data/gen2.csv")
speed=$(python3 -c "print(max(0.001, round($sleep_total / 20000, 3)) if $sleep_total else 0)")
echo "# import 2: $ROWS2 rows, sleep_ms total $sleep_total, IMPORT_SPEED=$speed"
dc run --rm --no-deps -T -e IMPORT_SPEED="$speed" importer importer /data/gen2.csv >"$TMP/import-gen2.log" 2>&1 &
import_pid=$!
# Wait until the aggregators are working on it, then kill the replica that
# holds the most unacknowledged entries (SIGKILL: no batch finished).
victim= victim_name= victim_pending=
deadline=$((SECONDS + 120))
while [ $SECONDS -lt $deadline ]; do
    read -r victim_name victim_pending < <(stream_holders rcli) && break
    kill -0 $import_pid 2>/dev/null || break
    sleep 0.1
done
victim_pending=${victim_pending:-0}
for c in $(containers aggregator); do
    [ "$(docker inspect -f '{{.Config.Hostname}}' "$c")" = "${victim_name%-*}" ] && victim=$c
done
[ -n "$victim" ] || victim=$(containers aggregator | head -1)
docker kill "$victim" >/dev/null
importing=$(containers importer | wc -l)
check "an aggregator holding $victim_pending pending entries is killed (SIGKILL) while the import runs" \
    test "$importing" -ge 1 -a "$victim_pending" -gt 0
wait $import_pid
rc=$?
check "the paced import finishes with exit 0 despite the kill" [ $rc = 0 ]
[ $rc = 0 ] || tail -10 "$TMP/import-gen2.log" | sed 's/^/#   | /'
clock_before=$(rcli get system:virtual_clock)
dc restart -t 20 redis >"$TMP/restart.log" 2>&1
check "redis restarts" [ $? = 0 ]
redis_healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(containers redis)" 2>/dev/null)" = healthy ]; }
check "redis comes back healthy" txagg_wait_cmd 60 redis_healthy
clock_after=$(rcli get system:virtual_clock)
not_before() { [ -n "$1" ] && [ -n "$2" ] && ! [[ "$2" < "$1" ]]; }
check "the virtual clock survives the redis restart (AOF): $clock_before -> $clock_after" \
    not_before "$clock_before" "$clock_after"
check_drained 300 "after the kill and the restart every entry is delivered and acknowledged"
check "archival settles again" txagg_wait_cmd 300 settled
is "$(rcli xpending transactions aggregators | head -1)" 0 "XPENDING counts 0 entries in the group"
is "$(rcli keys 'archive:frozen:*' | grep -c .)" 0 "no frozen archive hash is left behind"
stats_exact "$TMP/expected2.tsv" "/stats equals sample + both generated files after kill and restart, exact to the cent"

# -- re-running the importer adds nothing --------------------------------------
out=$(dc run --rm --no-deps -T importer 2>&1)
check "a second run of the importer service exits 0" [ $? = 0 ]
like "$out" 'already imported' "it says the sample was already imported"
check_drained 30 "nothing is pending after the re-run"
stats_exact "$TMP/expected2.tsv" "/stats still equals the independent computation"

# -- SIGTERM as PID 1 ----------------------------------------------------------
dc stop -t 30 >"$TMP/stop.log" 2>&1
for c in $(containers '' all); do
    [ "$c" = "$victim" ] && continue
    svc=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$c")
    [ "$svc" = importer ] && continue
    is "$(docker inspect -f '{{.State.ExitCode}}' "$c")" 0 "$svc ($(docker inspect -f '{{.Name}}' "$c" | tr -d /)) exits 0 on docker stop"
done

# -- the same stack on a 6-node Redis Cluster ----------------------------------
# A fresh project state (down -v: node 0 of the cluster reuses the redis
# volume), the cluster override over the base file, no monitoring profile.
dc down -v --remove-orphans -t 20 >"$TMP/down-single.log" 2>&1
check "the one-Redis stack comes down with its volumes" [ $? = 0 ]
COMPOSE_FILES+=(-f "$ROOT/deploy/docker-compose.cluster.yml")
# BATCH_SIZE=200: the importer's stripes (BATCH_SIZE records each, round-robin
# over the 16 partitions) reach every partition even with the 5,000-row sample.
{ grep -v -e '^COMPOSE_PROFILES=' -e '^PROMETHEUS_PUBLISH=' "$TMP/test.env"; echo BATCH_SIZE=200; } >"$TMP/cluster.env"
ENV_FILE=$TMP/cluster.env
REDIS_C=
NODES="redis redis-1 redis-2 redis-3 redis-4 redis-5"
node() { containers "$1"; } # node SERVICE: its container
ncli() { # ncli CONTAINER ARGS…: redis-cli inside one node
    local c=$1
    shift
    docker exec "$c" redis-cli --raw "$@" 2>/dev/null
}
primaries() { # the containers of the nodes that are primaries now
    local n c
    for n in $NODES; do
        c=$(node "$n")
        [ -n "$c" ] && [ "$(ncli "$c" role | head -1)" = master ] && echo "$c"
    done
}
part_streams() { ncli "$1" --scan --pattern 'transactions{p*'; } # CONTAINER: its partition streams
# Drained on the cluster: every partition stream on every primary delivered
# and acknowledged (stream_drained, per stream), at least one stream found.
cluster_drained() {
    local c k found=0
    for c in $(primaries); do
        for k in $(part_streams "$c"); do
            STREAM_KEY=$k stream_drained ncli "$c" || return 1
            found=1
        done
    done
    [ $found = 1 ]
}
cluster_ok() {
    local n c
    for n in $NODES; do
        c=$(node "$n")
        # CLUSTER INFO's lines end in CRLF, --raw or not.
        [ -n "$c" ] && ncli "$c" cluster info | tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
    done
}
stats_equal() { oracle compare "$API" "$1" "$2" "$3" >/dev/null 2>&1; } # FROM TO EXPECTED

t_up=$(date +%s.%N)
dc up -d --scale aggregator=3 --scale persistor=2 >"$TMP/up-cluster.log" 2>&1
rc=$?
check "up -d --scale aggregator=3 with the cluster override starts the stack" [ $rc = 0 ]
[ $rc = 0 ] || { tail -20 "$TMP/up-cluster.log" | sed 's/^/#   | /'; bail_out "the cluster stack did not start"; }
init=$(containers redis-cluster-init all)
is "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$init")" "exited 0" "redis-cluster-init made the cluster and exited 0"
like "$(docker logs "$init" 2>&1)" 'creating the cluster on' "it created the cluster (6 addresses from Docker's DNS)"
check "every node sees the cluster ok" txagg_wait_cmd 60 cluster_ok
out=$(ncli "$(node redis)" cluster info)
like "$out" 'cluster_known_nodes:6' "the cluster has 6 nodes"
like "$out" 'cluster_size:3' "3 of them primaries serving slots"
importer_c=$(containers importer all)
check "the importer service (the bundled sample) runs once the aggregators are healthy" test -n "$importer_c"
timeout 300 docker wait "$importer_c" >/dev/null 2>&1
is "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$importer_c")" "exited 0" "the importer service imports the sample through the cluster and exits 0"
healthy_or_bail 13 "6 Redis nodes, mongo, 3 aggregators, 2 persistors and the api"
is "$(containers aggregator | wc -l)" 3 "aggregator runs 3 replicas on the cluster"
dc run --rm --no-deps -T importer importer /data/gen1.csv >"$TMP/import-gen1-cluster.log" 2>&1
check "the importer imports the generated file through the cluster and exits 0" [ $? = 0 ]
read -r from to < <(oracle range "$TMP/expected1.tsv")
check "/stats equals the sample + the generated file on the cluster, exact to the cent (settled within 300 s)" \
    txagg_wait_cmd 300 stats_equal "$from" "$to" "$TMP/expected1.tsv"
oracle compare "$API" "$from" "$to" "$TMP/expected1.tsv" 2>&1 | sed 's/^#* */# /'
check "every partition stream on every primary is drained (nothing pending)" txagg_wait_cmd 120 cluster_drained
n=0 total=0
for c in $(primaries); do
    k=$(part_streams "$c" | grep -c .)
    total=$((total + k))
    [ "$k" -gt 0 ] && n=$((n + 1))
done
is "$n" 3 "the rows spread over all 3 primaries ($total partition streams)"
# Archival: the oldest day's hashes leave every primary (only mongo holds it).
oldest_gone() {
    local c
    for c in $(primaries); do
        [ -z "$(ncli "$c" --scan --pattern "agg:$oldest:*")" ] || return 1
    done
}
check "the oldest day ($oldest) leaves the cluster within 300 s: only mongo holds it" txagg_wait_cmd 300 oldest_gone

# A primary killed during a paced import: the one that holds partition 0.
txgen gen3 --rows "$ROWS1" --start 2026-02-01 --days 20 --seed 33 --bad-every 97 || bail_out "txgen failed"
oracle truth --tsv --csv "$TMP/data/transactions_1_month.csv" "$TMP/data/gen1.expect" "$TMP/data/gen3.expect" \
    2>&1 >"$TMP/expected3.tsv"
sleep_total=$(oracle sleep-total "$TMP/data/gen3.csv")
speed=$(python3 -c "print(max(0.001, round($sleep_total / 15000, 3)) if $sleep_total else 0)")
victim=
for c in $(primaries); do part_streams "$c" | grep -q '^transactions{p0:' && victim=$c; done
victim_name=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$victim" 2>/dev/null)
dc run --rm --no-deps -T -e IMPORT_SPEED="$speed" importer importer /data/gen3.csv >"$TMP/import-gen3.log" 2>&1 &
import_pid=$!
sleep 5
t_kill=$SECONDS
docker kill "$victim" >/dev/null 2>&1
check "the primary holding partition 0 ($victim_name) is killed (SIGKILL) during the import" \
    test -n "$victim" -a "$(containers importer | wc -l)" -ge 1
promoted() { [ "$(primaries | grep -vc "^$victim")" -ge 3 ]; }
if txagg_wait_cmd 60 promoted; then
    ok "a replica is promoted: 3 primaries serve the slots again"
    echo "# failover: a replica promoted $((SECONDS - t_kill)) s after the kill"
else
    not_ok "a replica is promoted: 3 primaries serve the slots again"
fi
wait $import_pid
rc=$?
check "the paced import through the failover exits 0" [ $rc = 0 ]
[ $rc = 0 ] || tail -10 "$TMP/import-gen3.log" | sed 's/^/#   | /'
read -r from to < <(oracle range "$TMP/expected3.tsv")
check "/stats equals sample + both files after the failover, exact to the cent (settled within 300 s)" \
    txagg_wait_cmd 300 stats_equal "$from" "$to" "$TMP/expected3.tsv"
oracle compare "$API" "$from" "$to" "$TMP/expected3.tsv" 2>&1 | sed 's/^#* */# /'
check "after the failover every partition stream is drained" txagg_wait_cmd 120 cluster_drained
check "and the oldest day is still only in mongo" oldest_gone

done_testing
