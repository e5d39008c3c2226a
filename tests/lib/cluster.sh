# tests/lib/cluster.sh — real Redis topologies on 127.0.0.1 for tests: a Redis
# Cluster (3 primaries + 3 replicas, AOF on, cluster-node-timeout 1000 ms, each
# node its own directory, port and bus port) and a primary with one replica
# (no cluster).  Source it; it defines functions only (and sources
# scripts/lib/common.sh for the free-port and start/stop helpers and
# tests/lib/helpers.sh for wait_until).
#
# Everything a topology needs later lives under the directory DIR given to
# every function (DIR/nodes/PORT/{pid,busport,redis.log,…}), so a C test can
# call them one `bash -c` at a time (tests/lib/testcluster.c) and a shell test
# in one process.  Nodes are stopped by their recorded PID, never by name.
#
#   cluster_start DIR [P [R]]         P primaries with R replicas each (default 3 and 1: 3 + 3);
#                                     returns once every node says cluster_state:ok, all agree
#                                     on the slot map and every replica is in sync
#   cluster_stop DIR                  stop every node started under DIR (TERM, then KILL), remove DIR
#   cluster_seeds DIR                 127.0.0.1:P,… of every node (a REDIS_CLUSTER value)
#   cluster_ports DIR / cluster_live_ports DIR   every node's port / the running ones, one a line
#   cluster_pid DIR PORT              the node's PID
#   cluster_cli DIR PORT ARGS…        redis-cli on one node
#   cluster_wait_ok DIR [SECS]        wait until every running node says cluster_state:ok and all
#                                     agree on which primary serves which slots
#   cluster_owner DIR SLOT            port of the primary serving SLOT (as the running nodes see it)
#   cluster_other_primary DIR PORT    port of a primary other than PORT
#   cluster_node_id DIR PORT          the node's cluster id
#   cluster_kill_primary DIR SLOT [SECS]   kill -9 SLOT's primary, wait until its replica is
#                                     promoted and the state is ok again; prints "OLD NEW" ports
#   cluster_restart_node DIR PORT     start a stopped node again with its directory (it rejoins;
#                                     as a replica when it was replaced)
#   cluster_migrate_begin DIR SLOT TO [N]  SLOT IMPORTING on TO, MIGRATING on its primary, then
#                                     move N of its keys (default 0): SLOT is left mid-migration
#   cluster_migrate_finish DIR SLOT   move SLOT's other keys, SETSLOT … NODE on every primary,
#                                     wait until all nodes agree
#   cluster_move_slot DIR SLOT TO     both at once: a live move of one slot
#   cluster_uncover DIR FIRST LAST    unassign slots FIRST..LAST on every node and wait for
#                                     cluster_state:fail: a cluster without full coverage
#   cluster_pair_start DIR            a primary and a replica (--replicaof), no cluster mode;
#                                     returns once the replica is online
#   cluster_pair_port DIR primary|replica   their ports (cluster_pid gives their PIDs)
#   cluster_pair_failover DIR         what the clients of one Redis address see when a replica
#                                     is promoted: kill -9 the primary, SIGCONT + REPLICAOF NO ONE
#                                     the replica, then a new primary on the old primary's port
#                                     starts from a snapshot of it (the address now serves the
#                                     replica's data; clients reconnect to the same port)
#   cluster_pair_for_test DIR         an e2e test's pair: started (bail_out when not), REDIS_PORT
#                                     exported (the primary's), PAIR_REPLICA its replica's port, and
#                                     an EXIT trap that kills the PIDs the test adds to PAIR_PIDS,
#                                     calls api_stop when defined, and stops the pair
#
# Timing: `redis-cli --cluster create` ~1 s and a failover ~3 s (node-timeout
# 1000 ms); the waits around them poll with redis-cli, which a loaded machine
# makes slow (cluster_start 11-15 s at load 8-14).  Every wait has a generous
# deadline (60 s by default) and polls every 0.5 s.

if ! declare -F txagg_start_redis >/dev/null; then
    . "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib/common.sh"
fi
. "$(dirname "${BASH_SOURCE[0]}")/helpers.sh" # wait_until

CLUSTER_NODE_TIMEOUT_MS=1000

cluster_cli() {
    local dir=$1 port=$2
    shift 2
    redis-cli -h 127.0.0.1 -p "$port" "$@"
}

cluster_ports() { cat "$1/ports" 2>/dev/null; }

cluster_pid() {
    local pid
    read -r pid 2>/dev/null <"$1/nodes/$2/pid" && echo "$pid"
}

# True while PID is a running redis-server (not a recycled PID, not a zombie).
# Shell built-ins only: this runs for every node at every poll.
_cluster_pid_alive() {
    local comm stat
    [ -n "$1" ] && read -r comm 2>/dev/null <"/proc/$1/comm" && [ "$comm" = redis-server ] &&
        read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

cluster_live_ports() {
    local p
    for p in $(cluster_ports "$1"); do
        _cluster_pid_alive "$(cluster_pid "$1" "$p")" && echo "$p"
    done
    return 0
}

cluster_seeds() {
    cluster_ports "$1" | sed 's/^/127.0.0.1:/' | paste -sd, -
}

cluster_node_id() { cluster_cli "$1" "$2" CLUSTER MYID; }

# _cluster_node_start DIR PORT BUSPORT [redis-server args…] — one node, its PID recorded.
_cluster_node_start() {
    local dir=$1 port=$2 bus=$3 d
    shift 3
    d="$dir/nodes/$port"
    mkdir -p "$d"
    echo "$bus" >"$d/busport"
    # The server must not hold our stdout: a caller reading it (popen) would never see EOF.
    txagg_start_redis "$d" "$port" "$@" </dev/null >/dev/null 2>>"$d/start.err" || return 1
    echo "$TXAGG_REDIS_PID" >"$d/pid"
}

_cluster_node_args() {
    echo --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT_MS" --cluster-port "$1" --appendonly yes --set-proc-title no
}

# N distinct free loopback ports in one go (one interpreter start, not 2 per node).
_cluster_free_ports() {
    python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# _cluster_spawn DIR cluster|plain PORT BUSPORT [redis-server args…] — a node; when
# another process took a port between the probe and the bind, again on new ports.
_cluster_spawn() {
    local dir=$1 kind=$2 port=$3 bus=$4 try args
    shift 4
    for try in 1 2 3; do
        args=()
        [ "$kind" = cluster ] && read -ra args <<<"$(_cluster_node_args "$bus")"
        if _cluster_node_start "$dir" "$port" "$bus" "${args[@]}" "$@"; then
            echo "$port" >>"$dir/ports"
            return 0
        fi
        txagg_stop_pid "$TXAGG_REDIS_PID"
        rm -rf "${dir:?}/nodes/$port"
        read -r port bus <<<"$(_cluster_free_ports 2)"
    done
    echo "cluster: could not start a redis-server under $dir" >&2
    return 1
}

# 1 or 2 primaries, no replicas: even slot ranges by hand, then every node meets the first.
_cluster_create_small() {
    local dir=$1 primaries=$2 replicas=$3 i p first lo hi
    [ "$replicas" = 0 ] || { echo "fewer than 3 primaries: replicas are not supported here"; return 1; }
    i=0
    for p in $(cluster_ports "$dir"); do
        lo=$((i * 16384 / primaries)) hi=$(((i + 1) * 16384 / primaries - 1))
        cluster_cli "$dir" "$p" CLUSTER ADDSLOTSRANGE "$lo" "$hi" | grep -qx OK || return 1
        [ -n "${first:-}" ] || first=$p
        [ "$p" = "$first" ] || cluster_cli "$dir" "$p" CLUSTER MEET 127.0.0.1 "$first" "$(cat "$dir/nodes/$first/busport")" |
            grep -qx OK || return 1
        i=$((i + 1))
    done
}

cluster_start() {
    local dir=$1 primaries=${2:-3} replicas=${3:-1} i n ports
    n=$((primaries * (1 + replicas)))
    mkdir -p "$dir/nodes"
    : >"$dir/ports"
    read -ra ports <<<"$(_cluster_free_ports $((2 * n)))"
    for ((i = 0; i < n; i++)); do
        _cluster_spawn "$dir" cluster "${ports[i]}" "${ports[i + n]}" || return 1
    done
    if [ "$primaries" -lt 3 ]; then # `--cluster create` wants 3 primaries at least
        _cluster_create_small "$dir" "$primaries" "$replicas" >"$dir/create.log" 2>&1 ||
            { echo "cluster_start: creating a $primaries-primary cluster failed (see $dir/create.log)" >&2; return 1; }
    elif ! redis-cli --cluster create $(cluster_ports "$dir" | sed 's/^/127.0.0.1:/') \
        --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1; then
        echo "cluster_start: redis-cli --cluster create failed (see $dir/create.log)" >&2
        return 1
    fi
    cluster_wait_ok "$dir" 60 || { echo "cluster_start: cluster_state not ok on every node" >&2; return 1; }
    wait_until -i 0.5 60 _cluster_replicas_online "$dir" ||
        { echo "cluster_start: replicas not in sync" >&2; return 1; }
}

cluster_stop() {
    local dir=$1 p
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    for p in "$dir"/nodes/*/pid; do
        [ -f "$p" ] || continue
        _cluster_pid_alive "$(cat "$p")" && txagg_stop_pid "$(cat "$p")"
    done
    rm -rf "$dir"
}

# One node's view in one redis-cli call: its "cluster_state:…" line, then a
# "PORT FIRST-LAST …" line per primary holding slots (migration markers left
# out), sorted — equal views, equal text.
_cluster_view() {
    printf 'CLUSTER INFO\nCLUSTER NODES\n' | redis-cli -h 127.0.0.1 -p "$2" 2>/dev/null | tr -d '\r' | awk '
        /^cluster_state:/ { print; next }
        $2 ~ /@/ && $3 ~ /master/ {
            r = ""
            for (i = 9; i <= NF; i++) if ($i !~ /^\[/) r = r " " $i
            if (r != "") { split($2, a, "@"); n = split(a[1], b, ":"); print b[n] r }
        }' | sort
}

# The port serving slot $2 in a view on stdin.
_cluster_view_owner() {
    awk -v s="$1" '$1 ~ /^[0-9]+$/ {
        for (i = 2; i <= NF; i++) {
            n = split($i, r, "-"); lo = r[1] + 0; hi = (n > 1 ? r[2] : r[1]) + 0
            if (s >= lo && s <= hi) { print $1; exit }
        }
    }'
}

_cluster_ok() {
    local dir=$1 p v first=
    for p in $(cluster_live_ports "$dir"); do
        v=$(_cluster_view "$dir" "$p")
        case $v in *cluster_state:ok*) ;; *) return 1 ;; esac
        if [ -z "$first" ]; then first=$v; elif [ "$v" != "$first" ]; then return 1; fi
    done
    [ -n "$first" ]
}

cluster_wait_ok() { wait_until -i 0.5 "${2:-60}" _cluster_ok "$1"; }

# Every running replica has its link to the primary up and no sync in progress,
# and each is "online" on its primary's side too (what ROLE and WAIT count).
_cluster_replicas_online() {
    local dir=$1 p info replicas=0 online=0
    for p in $(cluster_live_ports "$dir"); do
        info=$(cluster_cli "$dir" "$p" INFO replication 2>/dev/null | tr -d '\r') || return 1
        case $info in
        *role:slave*)
            grep -qx 'master_link_status:up' <<<"$info" || return 1
            grep -qx 'master_sync_in_progress:0' <<<"$info" || return 1
            replicas=$((replicas + 1)) ;;
        *) # the primary's side: a replica counts for WAIT only once it is online there
            online=$((online + $(grep -c '^slave[0-9]*:.*state=online' <<<"$info"))) ;;
        esac
    done
    [ "$replicas" = "$online" ]
}

cluster_owner() {
    local dir=$1 slot=$2 p owner
    for p in $(cluster_live_ports "$dir"); do
        owner=$(_cluster_view "$dir" "$p" | _cluster_view_owner "$slot")
        [ -n "$owner" ] && { echo "$owner"; return 0; }
    done
    echo "cluster_owner: no running node knows who serves slot $slot" >&2
    return 1
}

cluster_other_primary() {
    local dir=$1 not=$2 p
    for p in $(cluster_live_ports "$dir"); do
        _cluster_view "$dir" "$p" | awk -v not="$not" '$1 ~ /^[0-9]+$/ && $1 != not { print $1; exit }'
        return 0
    done
    return 1
}

_cluster_owner_is_not() { local o; o=$(cluster_owner "$1" "$2" 2>/dev/null) && [ "$o" != "$3" ]; }

cluster_kill_primary() {
    local dir=$1 slot=$2 secs=${3:-60} old pid new
    old=$(cluster_owner "$dir" "$slot") || return 1
    pid=$(cluster_pid "$dir" "$old")
    _cluster_pid_alive "$pid" || { echo "cluster_kill_primary: $old is not running" >&2; return 1; }
    { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null # reaped here when it is our child
    wait_until -i 0.5 10 eval "! txagg_pid_running $pid" || return 1
    if ! wait_until -i 0.5 "$secs" _cluster_owner_is_not "$dir" "$slot" "$old" ||
        ! cluster_wait_ok "$dir" "$secs"; then
        echo "cluster_kill_primary: slot $slot not served again within ${secs}s after killing $old" >&2
        return 1
    fi
    new=$(cluster_owner "$dir" "$slot") || return 1
    echo "$old $new"
}

cluster_restart_node() {
    local dir=$1 port=$2 bus
    bus=$(cat "$dir/nodes/$port/busport") || return 1
    _cluster_node_start "$dir" "$port" "$bus" $(_cluster_node_args "$bus")
}

# _cluster_migrate_keys DIR SLOT FROM TO [MAX] — MIGRATE up to MAX keys of SLOT (all by default).
_cluster_migrate_keys() {
    local dir=$1 slot=$2 from=$3 to=$4 max=${5:-} moved=0 batch keys out
    while [ -z "$max" ] || [ "$moved" -lt "$max" ]; do
        batch=100
        [ -n "$max" ] && [ $((max - moved)) -lt $batch ] && batch=$((max - moved))
        mapfile -t keys < <(cluster_cli "$dir" "$from" CLUSTER GETKEYSINSLOT "$slot" "$batch" | tr -d '\r')
        [ ${#keys[@]} -gt 0 ] && [ -n "${keys[0]}" ] || return 0
        out=$(cluster_cli "$dir" "$from" MIGRATE 127.0.0.1 "$to" "" 0 10000 KEYS "${keys[@]}")
        case $out in OK | NOKEY) ;; *)
            echo "cluster: MIGRATE of slot $slot to $to failed: $out" >&2
            return 1
            ;;
        esac
        moved=$((moved + ${#keys[@]}))
    done
}

_cluster_expect_ok() {
    local what=$1 out
    shift
    out=$("$@")
    [ "$out" = OK ] || { echo "cluster: $what: $out" >&2; return 1; }
}

cluster_migrate_begin() {
    local dir=$1 slot=$2 to=$3 n=${4:-0} from
    from=$(cluster_owner "$dir" "$slot") || return 1
    [ "$from" != "$to" ] || { echo "cluster_migrate_begin: slot $slot is already on $to" >&2; return 1; }
    echo "$from $to" >"$dir/migrating.$slot"
    _cluster_expect_ok "SETSLOT $slot IMPORTING on $to" \
        cluster_cli "$dir" "$to" CLUSTER SETSLOT "$slot" IMPORTING "$(cluster_node_id "$dir" "$from")" || return 1
    _cluster_expect_ok "SETSLOT $slot MIGRATING on $from" \
        cluster_cli "$dir" "$from" CLUSTER SETSLOT "$slot" MIGRATING "$(cluster_node_id "$dir" "$to")" || return 1
    [ "$n" -eq 0 ] || _cluster_migrate_keys "$dir" "$slot" "$from" "$to" "$n"
}

cluster_migrate_finish() {
    local dir=$1 slot=$2 from to to_id p
    read -r from to <"$dir/migrating.$slot" || return 1
    _cluster_migrate_keys "$dir" "$slot" "$from" "$to" || return 1
    to_id=$(cluster_node_id "$dir" "$to")
    # The importing node first (it takes the slot with a new epoch), then the
    # migrating one, then the other primaries so they need not wait for gossip.
    _cluster_expect_ok "SETSLOT $slot NODE on $to" cluster_cli "$dir" "$to" CLUSTER SETSLOT "$slot" NODE "$to_id" ||
        return 1
    _cluster_expect_ok "SETSLOT $slot NODE on $from" \
        cluster_cli "$dir" "$from" CLUSTER SETSLOT "$slot" NODE "$to_id" || return 1
    for p in $(cluster_live_ports "$dir"); do
        [ "$p" = "$to" ] || [ "$p" = "$from" ] && continue
        cluster_cli "$dir" "$p" ROLE | head -1 | grep -q master || continue
        cluster_cli "$dir" "$p" CLUSTER SETSLOT "$slot" NODE "$to_id" >/dev/null
    done
    rm -f "$dir/migrating.$slot"
    wait_until -i 0.5 60 _cluster_owner_everywhere "$dir" "$slot" "$to" && cluster_wait_ok "$dir" 60
}

_cluster_owner_everywhere() {
    local dir=$1 slot=$2 want=$3 p
    for p in $(cluster_live_ports "$dir"); do
        [ "$(_cluster_view "$dir" "$p" | _cluster_view_owner "$slot")" = "$want" ] || return 1
    done
}

cluster_move_slot() {
    cluster_migrate_begin "$1" "$2" "$3" 0 && cluster_migrate_finish "$1" "$2"
}

# Unassign FIRST..LAST on every running node that still has them assigned; true
# once none has.  (A heartbeat sent before its primary let go can give a node
# the slots back: hence again, until no node has them.)
_cluster_unassign() {
    local dir=$1 first=$2 last=$3 p info acted=0
    for p in $(cluster_live_ports "$dir"); do
        info=$(cluster_cli "$dir" "$p" CLUSTER INFO 2>/dev/null | tr -d '\r')
        grep -qx 'cluster_state:fail' <<<"$info" && ! grep -qx 'cluster_slots_assigned:16384' <<<"$info" && continue
        cluster_cli "$dir" "$p" CLUSTER DELSLOTSRANGE "$first" "$last" >/dev/null 2>&1
        acted=1
    done
    [ $acted = 0 ]
}

cluster_uncover() {
    # primaries first: a replica takes its view of the slots from its primary
    local dir=$1 first=$2 last=$3 p
    for p in $(cluster_live_ports "$dir"); do
        cluster_cli "$dir" "$p" ROLE | head -1 | grep -q master &&
            cluster_cli "$dir" "$p" CLUSTER DELSLOTSRANGE "$first" "$last" >/dev/null
    done
    wait_until -i 0.5 60 _cluster_unassign "$dir" "$first" "$last"
}

_cluster_replica_online() {
    cluster_cli "$1" "$2" INFO replication 2>/dev/null | tr -d '\r' | grep -q '^slave0:.*state=online'
}

cluster_pair_start() {
    local dir=$1 primary replica ports
    mkdir -p "$dir/nodes"
    : >"$dir/ports"
    read -ra ports <<<"$(_cluster_free_ports 4)"
    _cluster_spawn "$dir" plain "${ports[0]}" "${ports[1]}" || return 1
    primary=$(tail -1 "$dir/ports")
    _cluster_spawn "$dir" plain "${ports[2]}" "${ports[3]}" --replicaof 127.0.0.1 "$primary" || return 1
    replica=$(tail -1 "$dir/ports")
    echo "$primary" >"$dir/pair.primary"
    echo "$replica" >"$dir/pair.replica"
    wait_until -i 0.5 60 _cluster_replica_online "$dir" "$primary" ||
        { echo "cluster_pair_start: the replica on $replica did not come online" >&2; return 1; }
}

cluster_pair_port() { cat "$1/pair.$2"; }

cluster_pair_failover() {
    local dir=$1 primary replica bus
    primary=$(cluster_pair_port "$dir" primary)
    replica=$(cluster_pair_port "$dir" replica)
    kill -KILL "$(cluster_pid "$dir" "$primary")" 2>/dev/null
    kill -CONT "$(cluster_pid "$dir" "$replica")" 2>/dev/null
    cluster_cli "$dir" "$replica" REPLICAOF NO ONE >/dev/null || return 1
    # The address must never serve a replica (a client would read a stale or
    # empty checkpoint there): the new server starts as a primary from a
    # snapshot of the promoted replica.
    cluster_cli "$dir" "$replica" SAVE >/dev/null || return 1
    read -r bus <"$dir/nodes/$primary/busport"
    wait_until 30 _cluster_port_free "$primary" || { echo "cluster_pair_failover: port $primary still busy" >&2; return 1; }
    rm -f "$dir/nodes/$primary/"*.rdb "$dir/nodes/$primary/"*.aof
    cp "$dir/nodes/$replica/dump.rdb" "$dir/nodes/$primary/dump.rdb" || return 1
    _cluster_node_start "$dir" "$primary" "$bus"
}

_cluster_port_free() { ! redis-cli -h 127.0.0.1 -p "$1" PING >/dev/null 2>&1; }

# The EXIT trap of cluster_pair_for_test: our own processes first (waited
# for by PID only: the new primary is a child of this shell too), then the
# pair.
_cluster_pair_test_cleanup() {
    local p
    for p in "${PAIR_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if declare -F api_stop >/dev/null; then api_stop; fi
    cluster_stop "$PAIR_DIR"
}

cluster_pair_for_test() {
    PAIR_DIR=$1
    PAIR_PIDS=()
    trap _cluster_pair_test_cleanup EXIT
    cluster_pair_start "$PAIR_DIR" || bail_out "the primary and replica did not start"
    REDIS_PORT=$(cluster_pair_port "$PAIR_DIR" primary)
    export REDIS_PORT
    PAIR_REPLICA=$(cluster_pair_port "$PAIR_DIR" replica)
}
