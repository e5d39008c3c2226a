# scripts/lib/common.sh — shell helpers shared by the test harness, `make run`,
# `make bench` and the deployment tests.  Source it; it defines functions only.
#
#   txagg_cache_dir          where built tools are cached (FerretDB, Kubernetes…)
#   txagg_ferretdb_bin       path of the cached FerretDB binary
#   txagg_compose_bin        path of the cached Compose v2 CLI plugin binary
#   txagg_compose_plugin     where the Docker CLI looks for that plugin
#   txagg_compose            the compose command: "docker compose" (v2) or "docker-compose" (v1)
#   txagg_mongo_server       "mongod" when one is on PATH, else the FerretDB path
#   txagg_free_port          a free loopback TCP port
#   txagg_start_redis DIR PORT [redis-server args…]   sets TXAGG_REDIS_PID
#   txagg_start_mongo DIR PORT                        sets TXAGG_MONGO_PID
#   txagg_stop_pid PID       TERM, wait up to 10 s, then KILL
#   txagg_pid_running PID    the process runs (not gone, not a zombie)
#   txagg_wait_http URL [SECONDS]
#   txagg_wait_tcp HOST PORT [SECONDS]
#   txagg_wait_cmd SECONDS COMMAND…   poll COMMAND until it succeeds (false on timeout); the
#                            deployment tests' wait (tests/ use tests/lib/helpers.sh's wait_until)

TXAGG_FERRETDB_VERSION=v1.24.2
TXAGG_COMPOSE_VERSION=v2.29.7

txagg_cache_dir() {
    echo "${TXAGG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/txagg}"
}

txagg_ferretdb_bin() {
    echo "$(txagg_cache_dir)/ferretdb-$TXAGG_FERRETDB_VERSION/ferretdb"
}

txagg_compose_bin() {
    echo "$(txagg_cache_dir)/compose-$TXAGG_COMPOSE_VERSION/docker-compose"
}

txagg_compose_plugin() {
    echo "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
}

# Prints the compose command to use, v2 first; TXAGG_COMPOSE overrides
# (e.g. TXAGG_COMPOSE=docker-compose to exercise v1).  Fails when neither works.
txagg_compose() {
    if [ -n "${TXAGG_COMPOSE:-}" ]; then echo "$TXAGG_COMPOSE"
    elif docker compose version >/dev/null 2>&1; then echo "docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose
    else return 1
    fi
}

txagg_go() {
    if command -v go >/dev/null 2>&1; then command -v go
    elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
    else return 1
    fi
}

txagg_mongo_server() {
    if command -v mongod >/dev/null 2>&1; then echo mongod
    elif [ -x "$(txagg_ferretdb_bin)" ]; then txagg_ferretdb_bin
    else return 1
    fi
}

txagg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

txagg_wait_tcp() {
    local host=$1 port=$2 secs=${3:-20} i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

txagg_wait_http() {
    local url=$1 secs=${2:-20} i
    for ((i = 0; i < secs * 10; i++)); do
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

txagg_wait_cmd() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.5
    done
}

# txagg_start_redis DIR PORT [extra redis-server arguments]
txagg_start_redis() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
        --protected-mode yes --logfile "$dir/redis.log" --daemonize no "$@" &
    TXAGG_REDIS_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then return 0; fi
        sleep 0.1
    done
    echo "redis-server did not start on port $port (see $dir/redis.log)" >&2
    return 1
}

# txagg_start_mongo DIR PORT — mongod if installed, else FerretDB (SQLite backend).
txagg_start_mongo() {
    local dir=$1 port=$2 server
    mkdir -p "$dir"
    server=$(txagg_mongo_server) || { echo "no MongoDB-wire server: run scripts/deps.sh" >&2; return 1; }
    if [ "$server" = mongod ]; then
        mongod --bind_ip 127.0.0.1 --port "$port" --dbpath "$dir" --quiet >"$dir/mongod.log" 2>&1 &
        TXAGG_MONGO_PID=$!
        txagg_wait_tcp 127.0.0.1 "$port" 30 || { echo "mongod did not start (see $dir/mongod.log)" >&2; return 1; }
        return 0
    fi
    local dport
    dport=$(txagg_free_port)
    "$server" --handler=sqlite --sqlite-url="file:$dir/" --listen-addr="127.0.0.1:$port" \
        --debug-addr="127.0.0.1:$dport" --state-dir="$dir" --telemetry=disable \
        --log-level=warn >"$dir/ferretdb.log" 2>&1 &
    TXAGG_MONGO_PID=$!
    txagg_wait_http "http://127.0.0.1:$dport/debug/readyz" 30 &&
        txagg_wait_tcp 127.0.0.1 "$port" 10 ||
        { echo "FerretDB did not start (see $dir/ferretdb.log)" >&2; return 1; }
}

# True while PID runs: a zombie (exited, not yet reaped by this shell) has
# stopped, although kill -0 still succeeds on it.
txagg_pid_running() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "${st%% *}" != Z ]
}

txagg_stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        txagg_pid_running "$pid" || { wait "$pid" 2>/dev/null; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
