# deploy/k8s/cluster/lib.sh — what build.sh, up.sh, down.sh and test-k8s.sh
# share: versions, where things live, the cluster's fixed addresses, and the
# ways test-k8s.sh looks into and crashes the running system (containers,
# Jobs, RSS, an aggregator killed while it holds entries).  Source it; it
# defines variables and functions only.
#
# A single-node Kubernetes built on this machine from Debian packages and the
# Go module proxy (docs/TESTING.md "The Kubernetes test cluster" and the
# comments below).  Its files live where this file's location (the checkout),
# the cache directory (txagg_cache_dir of scripts/lib/common.sh, $TXAGG_CACHE)
# and the fixed run dir under /tmp say:
#
#   cache (built once, kept)     $(txagg_cache_dir)/k8s-v1.32.4/
#     bin/    kube-apiserver kube-controller-manager kube-scheduler kubelet
#             kube-proxy (from k8s.io/kubernetes), coredns, etcd (from the
#             Debian package etcd-server, extracted, never installed)
#     cni/    bridge host-local loopback (from the Debian package
#             containernetworking-plugins, extracted, never installed)
#     images/pause.tar   `docker save` of the sandbox image (a static C program)
#
#   run dir (one cluster per machine, removed by down.sh)   /tmp/txagg-k8s
#     (fixed: the test overlay's hostPath volumes live under it)
#     pki/ etcd/ containerd/ kubelet/ cni/ logs/ kubeconfig/ … and state.env,
#     the record down.sh undoes (pids, sysctls before, what we created).
#
# Nothing is installed on the host: packages are extracted into the cache,
# the second containerd has its own root, state, socket and runc root, the
# CNI IPAM keeps its leases in the run dir.

TXAGG_K8S_VERSION=v1.32.4
TXAGG_COREDNS_VERSION=v1.11.4

k8s_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
k8s_root=$(cd "$k8s_here/../../.." && pwd)
# shellcheck source=../../../scripts/lib/common.sh
. "$k8s_root/scripts/lib/common.sh"
# shellcheck source=../../../tests/lib/stream.sh
. "$k8s_root/tests/lib/stream.sh"

K8S_CACHE=$(txagg_cache_dir)/k8s-$TXAGG_K8S_VERSION
K8S_BIN=$K8S_CACHE/bin
K8S_CNI_BIN=$K8S_CACHE/cni
K8S_PAUSE_TAR=$K8S_CACHE/images/pause.tar
# The sandbox image, also the smoke-test server (`/pause --serve PORT`).
K8S_PAUSE_IMAGE=txagg.local/pause:1

# The project's namespace (deploy/k8s/base/namespace.yaml).
K8S_APP_NS=txagg

K8S_RUN=/tmp/txagg-k8s
K8S_STATE=$K8S_RUN/state.env

# Fixed cluster addresses.  The node, the kubelet, CoreDNS and the API's
# advertised address all live on our own bridge, so nothing listens on the
# machine's public interface; the API server listens on loopback only.
K8S_NODE=txagg-node
K8S_BRIDGE=txaggbr0
K8S_POD_CIDR=10.244.0.0/24
K8S_NODE_IP=10.244.0.1
K8S_SERVICE_CIDR=10.96.0.0/16
K8S_API_SERVICE_IP=10.96.0.1
K8S_API_PORT=${TXAGG_K8S_API_PORT:-16443}
K8S_ETCD_PORT=${TXAGG_K8S_ETCD_PORT:-12379}
K8S_ETCD_PEER_PORT=${TXAGG_K8S_ETCD_PEER_PORT:-12380}
# Ports of the components' own health/metrics listeners (loopback); the
# defaults (10248-10259) are moved so two clusters' leftovers never collide
# with an engineer's own kubelet on the same machine.
K8S_KUBELET_PORT=${TXAGG_K8S_KUBELET_PORT:-11250}
K8S_KUBELET_HEALTHZ_PORT=${TXAGG_K8S_KUBELET_HEALTHZ_PORT:-11248}
K8S_PROXY_HEALTHZ_PORT=${TXAGG_K8S_PROXY_HEALTHZ_PORT:-11256}
K8S_PROXY_METRICS_PORT=${TXAGG_K8S_PROXY_METRICS_PORT:-11249}
K8S_KCM_PORT=${TXAGG_K8S_KCM_PORT:-11257}
K8S_SCHED_PORT=${TXAGG_K8S_SCHED_PORT:-11259}
K8S_DNS_HEALTH_PORT=${TXAGG_K8S_DNS_HEALTH_PORT:-11253}

# Sysctls the kubelet sets on every start (setupKernelTunables) and the ones
# kube-proxy's conntrack settings would touch (we configure it not to): their
# values are recorded before and restored by down.sh.
K8S_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes
    net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
    net.netfilter.nf_conntrack_tcp_timeout_close_wait net.ipv4.ip_forward
    net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)

# Host paths the kubelet or the CNI libraries write whatever their root dir
# is; down.sh removes those that did not exist before up.sh.
K8S_HOST_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /etc/cni /opt/cni
    /run/containerd /var/run/netns /etc/kubernetes /usr/libexec/kubernetes)

k8s_log() { echo "k8s: $*" >&2; }
k8s_die() { echo "k8s: error: $*" >&2; exit 1; }

k8s_ctr() { ctr -a "$K8S_RUN/containerd.sock" -n k8s.io "$@"; }
k8s_kubectl() { kubectl --kubeconfig "$K8S_RUN/kubeconfig/admin.conf" "$@"; }

# k8s_binaries_present — the cache holds every binary the cluster runs.
k8s_binaries_present() {
    local b
    for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns etcd; do
        [ -x "$K8S_BIN/$b" ] || return 1
    done
    for b in bridge host-local loopback; do [ -x "$K8S_CNI_BIN/$b" ] || return 1; done
    [ -s "$K8S_PAUSE_TAR" ]
}

# k8s_now_ms — wall clock in milliseconds (for the printed figures).
k8s_now_ms() { date +%s%3N; }

# k8s_wait SECONDS DESCRIPTION COMMAND… — poll COMMAND every 0.2 s.
k8s_wait() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    k8s_log "timed out after ${secs}s waiting for $what"
    return 1
}

# --- the running system, as test-k8s.sh inspects and crashes it ---------------------

k8s_app() { k8s_kubectl -n "$K8S_APP_NS" "$@"; }
# k8s_redis_cli ARGS… — redis-cli in the redis-0 pod (raw output: no tty).
k8s_redis_cli() { k8s_app exec redis-0 -- redis-cli "$@" 2>/dev/null; }

# k8s_task_field ID COLUMN — a column of `ctr tasks ls` for one container
# (2: the host PID of its process, 3: its state, e.g. RUNNING or PAUSED).
k8s_task_field() { k8s_ctr tasks ls 2>/dev/null | awk -v id="$1" -v c="$2" '$1 == id {print $c}'; }

# k8s_container_id POD CONTAINER — the running container's id in the node's containerd.
k8s_container_id() {
    local id
    for id in $(k8s_ctr containers ls -q "labels.\"io.kubernetes.pod.name\"==$1,labels.\"io.kubernetes.container.name\"==$2" 2>/dev/null); do
        [ "$(k8s_task_field "$id" 3)" = RUNNING ] && echo "$id" && return 0
    done
    return 1
}

# k8s_job_done NAME SECONDS — 0 when the Job completed, 1 when it failed or timed out.
k8s_job_done() {
    local i s
    for ((i = 0; i < $2 * 2; i++)); do
        s=$(k8s_app get job "$1" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}' 2>/dev/null)
        case " $s " in *" Complete "*) return 0 ;; *" Failed "*) return 1 ;; esac
        sleep 0.5
    done
    return 1
}

# k8s_peak_rss POD CONTAINER FILE — run in the background: the container's
# peak RSS (VmHWM, kB) written to FILE until its process ends.
k8s_peak_rss() {
    local id= pid= hwm i
    for ((i = 0; i < 600; i++)); do id=$(k8s_container_id "$1" "$2") && break; sleep 0.1; done
    pid=$(k8s_task_field "$id" 2)
    while [ -n "$pid" ] && hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$hwm" ]; do
        echo "$hwm" >"$3"
        sleep 0.2
    done
}

# k8s_rss — "CONTAINER (POD): X MB now, Y MB peak" for every running
# container of the project's pods (its PID 1 is the service binary).
k8s_rss() {
    local pod cs c id pid
    k8s_app get pods -o jsonpath='{range .items[*]}{.metadata.name}{range .spec.containers[*]}{" "}{.name}{end}{"\n"}{end}' |
        while read -r pod cs; do
            for c in $cs; do
                id=$(k8s_container_id "$pod" "$c") && pid=$(k8s_task_field "$id" 2) && [ -r "/proc/$pid/status" ] || continue
                echo "$c ($pod): $(awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "%.1f MB now, %.1f MB peak", r/1024, h/1024}' "/proc/$pid/status")"
            done
        done
}

# k8s_crash_aggregator — crash one aggregator replica that holds entries of
# the stream group, as a real crash leaves them, and print what happened:
#   "POD HELD LEFT READ CONTAINER STATE" — the pod, its pending entries when
#   frozen, those still pending after its death (the other replicas must
#   claim them after CLAIM_IDLE_MS), the group's entries-read at the crash,
#   its container id and last task state ("gone" once removed).
# How: freeze every aggregator (cgroup freezer, through the node's
# containerd), read 0.3 s later each consumer's pending count (consumer =
# hostname-pid = <pod>-1; the pause lets Redis run an apply script a replica
# sent just before the freeze, which acknowledges its batch), delete the pod
# of the one holding the most and SIGKILL its container while it is frozen
# (else the kubelet may restart the container under the same consumer name,
# which re-reads and applies its own pending entries), thaw the rest.  Tried
# 30 times; when none held an entry, one is crashed anyway (HELD 0).
k8s_crash_aggregator() {
    local -A cid=()
    local p i n held=0 victim= vid vstate= read_at left
    for p in $(k8s_app get pods -l app.kubernetes.io/name=aggregator --field-selector=status.phase=Running \
        -o jsonpath='{.items[*].metadata.name}'); do
        cid[$p]=$(k8s_container_id "$p" aggregator) || unset "cid[$p]"
    done
    for ((i = 0; i < 30 && ${#cid[@]} > 0; i++)); do
        for p in "${!cid[@]}"; do k8s_ctr tasks pause "${cid[$p]}" >/dev/null 2>&1; done
        sleep 0.3
        while read -r n held; do
            [ -n "${cid[${n%-*}]:-}" ] && { victim=${n%-*}; break; }
        done < <(stream_holders k8s_redis_cli)
        [ -z "$victim" ] || k8s_kill_pod "$victim" "${cid[$victim]}"
        for p in "${!cid[@]}"; do k8s_ctr tasks resume "${cid[$p]}" >/dev/null 2>&1; done
        [ -n "$victim" ] && break
        sleep 0.2
    done
    if [ -z "$victim" ]; then
        held=0
        victim=$(k8s_app get pods -l app.kubernetes.io/name=aggregator -o jsonpath='{.items[0].metadata.name}')
        k8s_kill_pod "$victim" "${cid[$victim]:-}"
    fi
    vid=${cid[$victim]:-}
    read_at=$(stream_group_field entries-read k8s_redis_cli)
    for ((i = 0; i < 50 && ${#vid} > 0; i++)); do # dead
        vstate=$(k8s_task_field "$vid" 3)
        case $vstate in RUNNING | PAUSED | PAUSING) sleep 0.1 ;; *) break ;; esac
    done
    sleep 0.5
    left=$(stream_holders k8s_redis_cli | awk -v c="$victim-1" '$1 == c {print $2}')
    echo "$victim ${held:-0} ${left:-0} ${read_at:-0} ${vid:-none} ${vstate:-gone}"
}

# k8s_kill_pod POD [CONTAINER-ID] — delete the pod at once (no grace) and
# SIGKILL its container.
k8s_kill_pod() {
    k8s_app delete pod "$1" --grace-period=0 --force --wait=false >/dev/null 2>&1
    [ -z "${2:-}" ] || k8s_ctr tasks kill -s SIGKILL "$2" >/dev/null 2>&1
}
