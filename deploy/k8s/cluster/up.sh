#!/usr/bin/env bash
# deploy/k8s/cluster/up.sh — bring up the single-node test cluster (root).
#
#   up.sh      start etcd, kube-apiserver, kube-controller-manager,
#              kube-scheduler, a second containerd, CoreDNS, kubelet and
#              kube-proxy; print the kubeconfig path; exit 0 when the node is
#              Ready.  Everything lives in /tmp/txagg-k8s; down.sh stops it
#              and undoes every host change (also after a failed up.sh).
#
# Binaries come from the cache (build.sh, run first when missing).  The
# cluster, and why each setting (docs/TESTING.md "The Kubernetes test cluster"
# has the measurements):
#   - etcd on loopback ports 12379/12380; the API server on 127.0.0.1:16443,
#     advertising the bridge address (pods do not use the API: every txagg
#     pod runs without a service-account token).
#   - our bridge txaggbr0 = 10.244.0.1/24 is created first: the node IP, the
#     kubelet (11250), CoreDNS (:53, the pods' DNS) all bind it, so nothing
#     listens on the machine's public interface.
#   - a SECOND containerd (never Docker's): own root, state, socket, runc
#     root and opt dir under the run dir; `restrict_oom_score_adj = true`
#     (this VM lacks CAP_SYS_RESOURCE: without it every sandbox fails with
#     "can't get final child's PID from pipe: EOF"); sandbox image = our
#     static pause image.
#   - CNI bridge with host-local IPAM (leases in the run dir), ipMasq off, a
#     default route in the IPAM config (else pods cannot reach ClusterIPs),
#     hairpin on.  Docker's FORWARD policy is DROP with br_netfilter: one rule
#     `DOCKER-USER -i txaggbr0 -o txaggbr0 -j ACCEPT`, deleted by down.sh.
#   - kubelet: cgroupfs driver (cgroup v1 here, failCgroupV1 false), no swap
#     check, no iptables utility chains, low eviction thresholds, root dir and
#     pod logs in the run dir.  It still sets 6 sysctls on every start and
#     writes a few host paths: recorded here, restored/removed by down.sh.
#   - kube-proxy in nftables mode (its own `ip kube-proxy` / `ip6 kube-proxy`
#     tables; iptables untouched), conntrack sysctls left alone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || k8s_die "up.sh needs root (network namespaces, cgroups, mounts)"
for t in containerd containerd-shim-runc-v2 runc ctr ip iptables nft openssl curl kubectl setsid mount; do
    command -v "$t" >/dev/null || k8s_die "missing tool: $t"
done

if [ -f "$K8S_STATE" ]; then
    k8s_log "a previous cluster's run dir exists: tearing it down first"
    bash "$k8s_here/down.sh"
fi
k8s_binaries_present || bash "$k8s_here/build.sh"

for p in "$K8S_API_PORT" "$K8S_ETCD_PORT" "$K8S_ETCD_PEER_PORT" "$K8S_KUBELET_HEALTHZ_PORT" \
    "$K8S_PROXY_HEALTHZ_PORT" "$K8S_PROXY_METRICS_PORT" "$K8S_KCM_PORT" "$K8S_SCHED_PORT" "$K8S_DNS_HEALTH_PORT"; do
    ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || k8s_die "port 127.0.0.1:$p is taken"
done
! ip link show "$K8S_BRIDGE" >/dev/null 2>&1 || k8s_die "a link named $K8S_BRIDGE exists already (a leftover? run down.sh)"
[ -z "$(ip -4 route show "$K8S_POD_CIDR" 2>/dev/null)" ] || k8s_die "a route for $K8S_POD_CIDR exists already"
! nft list table ip kube-proxy >/dev/null 2>&1 || k8s_die "nft table ip kube-proxy exists already (another cluster on this machine?)"

t_start=$(k8s_now_ms)
mkdir -p "$K8S_RUN"/{pki,kubeconfig,logs,etcd,cni/net.d,cni/ipam,containerd,kubelet,pod-logs,audit,volumes}
chmod 755 "$K8S_RUN"
: >"$K8S_STATE"
record() { echo "$1" >>"$K8S_STATE"; }
record "started_at=$(date -u +%FT%TZ)"

# --- the host as we found it (down.sh restores it and reports differences) ---
for s in "${K8S_SYSCTLS[@]}"; do
    v=$(sysctl -n "$s" 2>/dev/null) && echo "$s=$v" >>"$K8S_RUN/audit/sysctl.before"
done
for p in "${K8S_HOST_PATHS[@]}"; do [ -e "$p" ] || echo "$p" >>"$K8S_RUN/audit/paths.absent"; done
for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do [ -d "$c" ] && echo "$c" >>"$K8S_RUN/audit/cgroups.present"; done
touch "$K8S_RUN/audit/paths.absent" "$K8S_RUN/audit/cgroups.present"
ls /var/run/netns 2>/dev/null >"$K8S_RUN/audit/netns.before" || :
iptables-save 2>/dev/null | grep -v '^[#:]' | sort >"$K8S_RUN/audit/iptables.before" || :
nft list tables 2>/dev/null | sort >"$K8S_RUN/audit/nft.before" || :
sysctl -a 2>/dev/null | grep -vE '^(fs\.(dentry|inode|file-nr|quota)|kernel\.(random|ns_last_pid|pty\.nr|sched_domain)|net\.netfilter\.nf_conntrack_count|vm\.(stat|nr_)|dev\.)' |
    grep -vE '^net\.ipv[46]\.(conf|neigh)\.' | sort >"$K8S_RUN/audit/sysctl-all.before" || :

# --- PKI (EC P-256: fast, accepted by every component) ------------------------
pki=$K8S_RUN/pki
(
    cd "$pki"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -subj "/CN=txagg-k8s-ca" -days 3 -out ca.crt \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    # mkcert NAME SUBJECT EXTENDED-USAGE [SUBJECT-ALT-NAMES]
    mkcert() {
        openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
        openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
        {
            echo "basicConstraints=CA:FALSE"
            echo "keyUsage=critical,digitalSignature,keyEncipherment"
            echo "extendedKeyUsage=$3"
            [ -z "${4:-}" ] || echo "subjectAltName=$4"
        } >"$1.ext"
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
            -days 3 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
        rm -f "$1.csr" "$1.ext"
    }
    mkcert apiserver "/CN=kube-apiserver" serverAuth \
        "IP:127.0.0.1,IP:$K8S_API_SERVICE_IP,IP:$K8S_NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    mkcert admin "/O=system:masters/CN=txagg-admin" clientAuth
    mkcert kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
    mkcert kube-scheduler "/CN=system:kube-scheduler" clientAuth
    mkcert kubelet "/O=system:nodes/CN=system:node:$K8S_NODE" clientAuth
    mkcert kubelet-serving "/CN=$K8S_NODE" serverAuth "IP:$K8S_NODE_IP,DNS:$K8S_NODE"
    mkcert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
    mkcert kube-proxy "/CN=system:kube-proxy" clientAuth
    mkcert coredns "/CN=txagg:coredns" clientAuth
    openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
    openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
)

kubeconfig() { # NAME — a kubeconfig with NAME's client certificate
    cat >"$K8S_RUN/kubeconfig/$1.conf" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: txagg-k8s
    cluster:
      certificate-authority: $pki/ca.crt
      server: https://127.0.0.1:$K8S_API_PORT
users:
  - name: $1
    user:
      client-certificate: $pki/$1.crt
      client-key: $pki/$1.key
contexts:
  - name: txagg-k8s
    context:
      cluster: txagg-k8s
      user: $1
current-context: txagg-k8s
EOF
}
for n in admin kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do kubeconfig "$n"; done

# start NAME COMMAND… — in its own session (a Ctrl-C of the caller does not
# reach it: down.sh stops it in order), log in logs/NAME.log, pid recorded.
start() {
    local name=$1
    shift
    setsid "$@" >"$K8S_RUN/logs/$name.log" 2>&1 </dev/null &
    record "pid_${name//-/_}=$!"
}
# alive NAME — the recorded process still runs (else show its log's tail).
alive() {
    local pid
    pid=$(sed -n "s/^pid_${1//-/_}=//p" "$K8S_STATE" | tail -1)
    kill -0 "$pid" 2>/dev/null && return 0
    k8s_log "$1 exited; last lines of $K8S_RUN/logs/$1.log:"
    tail -n 20 "$K8S_RUN/logs/$1.log" >&2
    return 1
}
# ready SECONDS NAME COMMAND… — wait for COMMAND while NAME is alive.
ready() {
    local secs=$1 name=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        alive "$name" || k8s_die "$name did not start"
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    k8s_log "last lines of $K8S_RUN/logs/$name.log:"
    tail -n 20 "$K8S_RUN/logs/$name.log" >&2
    k8s_die "$name not ready after ${secs}s"
}

# --- the bridge, before anything binds its address ---------------------------
ip link add name "$K8S_BRIDGE" type bridge
record "created_bridge=1"
ip addr add "$K8S_NODE_IP/${K8S_POD_CIDR#*/}" dev "$K8S_BRIDGE"
ip link set "$K8S_BRIDGE" up
# Pod-to-pod traffic crosses FORWARD (br_netfilter); Docker's policy there is
# DROP.  Allow our bridge only, in Docker's chain for user rules when it exists.
fwd_chain=FORWARD
iptables -S DOCKER-USER >/dev/null 2>&1 && fwd_chain=DOCKER-USER
if [ "$(iptables -S FORWARD 2>/dev/null | head -1)" = "-P FORWARD DROP" ] || [ $fwd_chain = DOCKER-USER ]; then
    iptables -I "$fwd_chain" -i "$K8S_BRIDGE" -o "$K8S_BRIDGE" -j ACCEPT
    record "iptables_rule_chain=$fwd_chain"
fi

# --- etcd ----------------------------------------------------------------------
start etcd "$K8S_BIN/etcd" --name txagg-k8s --data-dir "$K8S_RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
    --initial-cluster "txagg-k8s=http://127.0.0.1:$K8S_ETCD_PEER_PORT" --log-level warn
ready 30 etcd sh -c "curl -fsS http://127.0.0.1:$K8S_ETCD_PORT/health | grep -q '\"health\":\"true\"'"

# --- control plane ------------------------------------------------------------
t_api=$(k8s_now_ms)
start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$K8S_ETCD_PORT" \
    --bind-address=127.0.0.1 --secure-port="$K8S_API_PORT" --advertise-address="$K8S_NODE_IP" \
    --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --allow-privileged=false --profiling=false --event-ttl=30m
ready 60 kube-apiserver curl -fsS --cacert "$pki/ca.crt" "https://127.0.0.1:$K8S_API_PORT/readyz"
k8s_log "API server ready in $((($(k8s_now_ms) - t_api) / 1000)).$(((($(k8s_now_ms) - t_api) % 1000) / 100)) s"

# The API server calls the kubelet (logs, exec, port-forward) as this user;
# CoreDNS reads Services and EndpointSlices as txagg:coredns.
k8s_kubectl apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: txagg:apiserver-kubelet-client
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:kubelet-api-admin
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: kube-apiserver-kubelet-client
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: txagg:coredns
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: txagg:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: txagg:coredns
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: txagg:coredns
EOF

start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$K8S_RUN/kubeconfig/kube-controller-manager.conf" \
    --authentication-kubeconfig="$K8S_RUN/kubeconfig/kube-controller-manager.conf" \
    --authorization-kubeconfig="$K8S_RUN/kubeconfig/kube-controller-manager.conf" \
    --bind-address=127.0.0.1 --secure-port="$K8S_KCM_PORT" --leader-elect=false \
    --use-service-account-credentials=true --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" --cluster-name=txagg-k8s --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
    --allocate-node-cidrs=false --profiling=false \
    --flex-volume-plugin-dir="$K8S_RUN/kcm-volume-plugins"
start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$K8S_RUN/kubeconfig/kube-scheduler.conf" \
    --authentication-kubeconfig="$K8S_RUN/kubeconfig/kube-scheduler.conf" \
    --authorization-kubeconfig="$K8S_RUN/kubeconfig/kube-scheduler.conf" \
    --bind-address=127.0.0.1 --secure-port="$K8S_SCHED_PORT" --leader-elect=false --profiling=false

# --- the second containerd -------------------------------------------------------
cat >"$K8S_RUN/containerd/config.toml" <<EOF
version = 2
root = "$K8S_RUN/containerd/root"
state = "$K8S_RUN/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$K8S_RUN/containerd.sock"
[ttrpc]
  address = "$K8S_RUN/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$K8S_RUN/containerd/opt"
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "$K8S_RUN/containerd/runc-v1"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K8S_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$K8S_RUN/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$K8S_CNI_BIN"
    conf_dir = "$K8S_RUN/cni/net.d"
    max_conf_num = 1
EOF
cat >"$K8S_RUN/cni/net.d/10-txagg.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "txagg-k8s",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$K8S_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$K8S_RUN/cni/ipam",
        "ranges": [[{"subnet": "$K8S_POD_CIDR", "gateway": "$K8S_NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
start containerd containerd --config "$K8S_RUN/containerd/config.toml" --log-level warn
ready 30 containerd k8s_ctr version
k8s_ctr images import - <"$K8S_PAUSE_TAR" >/dev/null

# --- CoreDNS on the host, on the bridge address: the pods' DNS server -------------
cat >"$K8S_RUN/Corefile" <<EOF
.:53 {
    bind $K8S_NODE_IP
    errors
    health 127.0.0.1:$K8S_DNS_HEALTH_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $K8S_RUN/kubeconfig/coredns.conf txagg-k8s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 5
}
EOF
start coredns "$K8S_BIN/coredns" -conf "$K8S_RUN/Corefile"
ready 30 coredns curl -fsS "http://127.0.0.1:$K8S_DNS_HEALTH_PORT/health"

# --- kubelet ---------------------------------------------------------------------
cat >"$K8S_RUN/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $K8S_NODE_IP
port: $K8S_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $K8S_KUBELET_HEALTHZ_PORT
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $pki/ca.crt
authorization:
  mode: Webhook
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
containerRuntimeEndpoint: unix://$K8S_RUN/containerd.sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
clusterDNS: [$K8S_NODE_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: $K8S_RUN/pod-logs
volumePluginDir: $K8S_RUN/kubelet/volume-plugins
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
  imagefs.inodesFree: 1%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
maxPods: 110
EOF
t_kubelet=$(k8s_now_ms)
start kubelet "$K8S_BIN/kubelet" --config="$K8S_RUN/kubelet/config.yaml" \
    --kubeconfig="$K8S_RUN/kubeconfig/kubelet.conf" --root-dir="$K8S_RUN/kubelet" \
    --hostname-override="$K8S_NODE" --node-ip="$K8S_NODE_IP" --v=1
ready 60 kubelet curl -fsS "http://127.0.0.1:$K8S_KUBELET_HEALTHZ_PORT/healthz"

# --- kube-proxy --------------------------------------------------------------------
cat >"$K8S_RUN/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: $K8S_RUN/kubeconfig/kube-proxy.conf
hostnameOverride: $K8S_NODE
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$K8S_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$K8S_PROXY_METRICS_PORT
clusterCIDR: $K8S_POD_CIDR
nodePortAddresses: ["$K8S_NODE_IP/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
start kube-proxy "$K8S_BIN/kube-proxy" --config="$K8S_RUN/kube-proxy.yaml"
record "nft_tables=1"
ready 60 kube-proxy curl -fsS "http://127.0.0.1:$K8S_PROXY_HEALTHZ_PORT/healthz"

# --- the node Ready ----------------------------------------------------------------
ready 120 kubelet sh -c "kubectl --kubeconfig '$K8S_RUN/kubeconfig/admin.conf' get node '$K8S_NODE' \
    -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
t_ready=$(k8s_now_ms)
record "ready_at=$(date -u +%FT%TZ)"
k8s_log "node $K8S_NODE Ready $((($t_ready - t_kubelet) / 1000)).$(((($t_ready - t_kubelet) % 1000) / 100)) s after the kubelet started," \
    "$((($t_ready - t_start) / 1000)).$(((($t_ready - t_start) % 1000) / 100)) s after up.sh began"
echo "KUBECONFIG=$K8S_RUN/kubeconfig/admin.conf"
