# deploy/k8s/cluster/lib.sh — what build.sh, up.sh, down.sh and test-k8s.sh
# share: versions, where things live, the cluster's fixed addresses.  Source
# it; it defines variables and functions only.
#
# A single-node Kubernetes built on this machine from Debian packages and the
# Go module proxy (docs: /work/shared/RECIPES.md §4 and the comments below):
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

K8S_CACHE=$(txagg_cache_dir)/k8s-$TXAGG_K8S_VERSION
K8S_BIN=$K8S_CACHE/bin
K8S_CNI_BIN=$K8S_CACHE/cni
K8S_PAUSE_TAR=$K8S_CACHE/images/pause.tar
# The sandbox image, also the smoke-test server (`/pause --serve PORT`).
K8S_PAUSE_IMAGE=txagg.local/pause:1

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
