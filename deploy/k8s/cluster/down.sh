#!/usr/bin/env bash
# deploy/k8s/cluster/down.sh — tear the test cluster down and leave the
# machine as up.sh found it (root).  Idempotent; works after a failed or
# interrupted up.sh (it reads what up.sh recorded in /tmp/txagg-k8s/state.env
# as it went).  Exit 0 when everything was undone, 1 when something could not
# be (each printed).
#
# Order: delete the workload namespaces while the cluster still runs (the
# kubelet stops the pods gracefully and tears their networks down through
# CNI), stop the kubelet, then the other components by PID; kill and delete
# whatever is left in OUR containerd, stop it and its shims (found by their
# -address, our socket); kill any process still in the kubepods cgroups;
# unmount everything under the run dir; remove leftover cni-* network
# namespaces created meanwhile, nft tables ip/ip6 kube-proxy, the bridge, the
# iptables rule, the kubepods cgroups; restore the recorded sysctls; remove
# the host paths the kubelet created; then compare iptables, nftables,
# sysctls and mounts with the snapshot taken before, print any difference,
# and remove the run dir.  Never flushes a table, never kills by name.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || k8s_die "down.sh needs root"
if [ ! -d "$K8S_RUN" ]; then
    k8s_log "no cluster run dir ($K8S_RUN): nothing to tear down"
    exit 0
fi
touch "$K8S_STATE"
problems=0
problem() { k8s_log "NOT UNDONE: $*"; problems=$((problems + 1)); }
state() { sed -n "s/^$1=//p" "$K8S_STATE" | tail -1; }
pid_of() { state "pid_${1//-/_}"; }
is_alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
stop() { # NAME… — SIGTERM to each, wait up to 15 s for all, then SIGKILL
    local n pid pids=() i
    for n in "$@"; do
        pid=$(pid_of "$n")
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    for ((i = 0; i < 150; i++)); do
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && break; pid=; done
        [ -z "${pid:-}" ] && return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && { k8s_log "pid $pid ignored SIGTERM for 15 s: SIGKILL"; kill -KILL "$pid"; }
    done
    sleep 0.2
}

# --- 1. workloads, gracefully, while the cluster runs ----------------------------
if is_alive kube-apiserver && is_alive kubelet; then
    nss=$(k8s_kubectl get ns -o name 2>/dev/null |
        grep -vE '^namespace/(default|kube-system|kube-public|kube-node-lease)$' || :)
    if [ -n "$nss" ]; then
        k8s_log "deleting $(echo "$nss" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        k8s_kubectl delete $nss --wait=true --timeout=120s >/dev/null 2>&1 ||
            k8s_log "namespaces not gone within 120 s; continuing (pods are killed below)"
    fi
    k8s_kubectl delete pods --all -n default --wait=true --timeout=60s >/dev/null 2>&1 || :
fi

# --- 2. the components, by PID ----------------------------------------------------
# The kubelet first (nothing restarts a container after it), etcd last.
stop kubelet
stop kube-proxy coredns kube-scheduler kube-controller-manager kube-apiserver
stop etcd

# --- 3. our containerd: what is left in it, then itself and its shims ------------
if is_alive containerd; then
    for id in $(k8s_ctr tasks ls -q 2>/dev/null); do
        k8s_ctr tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1
    done
    sleep 0.5
    for id in $(k8s_ctr tasks ls -q 2>/dev/null); do k8s_ctr tasks delete -f "$id" >/dev/null 2>&1; done
    for id in $(k8s_ctr containers ls -q 2>/dev/null); do k8s_ctr containers delete "$id" >/dev/null 2>&1; done
    stop containerd
fi
# The shims outlive containerd; they are ours when their -address is our socket.
our_procs() { # PIDs whose command line names our run dir (not the grep itself)
    local p
    for p in $(grep -lasF -- "$K8S_RUN/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        [ "$p" != $$ ] && [ -d "/proc/$p" ] && echo "$p"
    done
}
for pid in $(our_procs); do
    grep -qaF -- "-address" "/proc/$pid/cmdline" 2>/dev/null || continue
    k8s_log "stopping containerd shim pid $pid"
    kill -TERM "$pid" 2>/dev/null
done
sleep 0.5
# Anything still in the kubepods cgroups is a container process of ours.
if ! grep -q . "$K8S_RUN/audit/cgroups.present" 2>/dev/null; then
    for f in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
        [ -d "$f" ] || continue
        for pid in $(find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
            k8s_log "killing container process $pid left in $f"
            kill -KILL "$pid" 2>/dev/null
        done
    done
fi
for pid in $(our_procs); do
    grep -qaF -- "-address" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
done

# --- 4. mounts under the run dir, network namespaces -------------------------------
for i in 1 2 3; do
    mps=$(awk -v run="$K8S_RUN/" 'index($5, run) == 1 {print $5}' /proc/self/mountinfo | awk '{print length, $0}' |
        sort -rn | cut -d' ' -f2-)
    [ -n "$mps" ] || break
    while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; done <<<"$mps"
done
[ -z "$(awk -v run="$K8S_RUN/" 'index($5, run) == 1' /proc/self/mountinfo)" ] || problem "mounts left under $K8S_RUN"
if [ -d /var/run/netns ]; then
    for ns in /var/run/netns/cni-*; do
        [ -e "$ns" ] || continue
        grep -qxF "$(basename "$ns")" "$K8S_RUN/audit/netns.before" 2>/dev/null && continue
        ip netns delete "$(basename "$ns")" 2>/dev/null || { umount "$ns" 2>/dev/null; rm -f "$ns"; }
    done
fi

# --- 5. network: nft tables, the bridge, the iptables rule ---------------------------
if [ -n "$(state nft_tables)" ]; then
    for fam in ip ip6; do
        grep -qx "table $fam kube-proxy" "$K8S_RUN/audit/nft.before" 2>/dev/null && continue
        if nft list table "$fam" kube-proxy >/dev/null 2>&1; then
            nft delete table "$fam" kube-proxy || problem "nft table $fam kube-proxy"
        fi
    done
fi
if [ -n "$(state created_bridge)" ] && ip link show "$K8S_BRIDGE" >/dev/null 2>&1; then
    # A pod's host-side veth goes with its network namespace; any still on
    # our bridge is ours.
    for l in $(ip -o link show master "$K8S_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
        k8s_log "removing leftover pod link $l"
        ip link delete "$l" 2>/dev/null
    done
    ip link delete "$K8S_BRIDGE" || problem "bridge $K8S_BRIDGE"
fi
chain=$(state iptables_rule_chain)
if [ -n "$chain" ] && iptables -C "$chain" -i "$K8S_BRIDGE" -o "$K8S_BRIDGE" -j ACCEPT 2>/dev/null; then
    iptables -D "$chain" -i "$K8S_BRIDGE" -o "$K8S_BRIDGE" -j ACCEPT || problem "iptables rule in $chain"
fi

# --- 6. cgroups, sysctls, host paths ----------------------------------------------------
for f in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$f" ] || continue
    grep -qxF "$f" "$K8S_RUN/audit/cgroups.present" 2>/dev/null && continue
    for i in 1 2 3 4 5; do
        find "$f" -depth -type d -exec rmdir {} \; 2>/dev/null
        [ -d "$f" ] || break
        sleep 0.5
    done
    [ -d "$f" ] && problem "cgroup $f"
done
if [ -f "$K8S_RUN/audit/sysctl.before" ]; then
    while IFS='=' read -r key val; do
        now=$(sysctl -n "$key" 2>/dev/null) || continue
        if [ "$now" != "$val" ]; then
            sysctl -qw "$key=$val" >/dev/null && k8s_log "restored $key=$val (was set to $now)" || problem "sysctl $key"
        fi
    done <"$K8S_RUN/audit/sysctl.before"
fi
if [ -f "$K8S_RUN/audit/paths.absent" ]; then
    while read -r p; do
        [ -e "$p" ] || continue
        case $p in
        # Shared with Docker's containerd shims / iproute2: only if empty.
        /run/containerd | /var/run/netns)
            find "$p" -depth -type d -empty -exec rmdir {} \; 2>/dev/null
            [ -e "$p" ] && k8s_log "left $p in place: not empty (someone else uses it)" ;;
        *)
            rm -rf --one-file-system "$p" || problem "path $p" ;;
        esac
    done <"$K8S_RUN/audit/paths.absent"
fi

# --- 7. audit: the machine as up.sh found it ----------------------------------------------
diffs() { # NAME NOW-FILE
    local d
    d=$(diff "$K8S_RUN/audit/$1.before" "$2" | grep '^[<>]' || :)
    [ -z "$d" ] && return 0
    k8s_log "$1 differs from before up.sh ('<' before, '>' now):"
    echo "$d" | head -20 | sed 's/^/k8s:   /' >&2
    return 1
}
now=$K8S_RUN/audit/now
mkdir -p "$now"
if [ -f "$K8S_RUN/audit/iptables.before" ]; then
    # Docker adds and removes rules for other engineers' networks meanwhile:
    # compare the rules a cluster could have made (our bridge, KUBE-*, CNI-*).
    ours='txaggbr0|KUBE-|CNI-'
    iptables-save 2>/dev/null | grep -v '^[#:]' | grep -E "$ours" | sort >"$now/iptables"
    grep -E "$ours" "$K8S_RUN/audit/iptables.before" >"$now/iptables.before" || :
    mv "$now/iptables.before" "$K8S_RUN/audit/iptables.before"
    diffs iptables "$now/iptables" || problem "iptables rules changed"
fi
if [ -f "$K8S_RUN/audit/nft.before" ]; then
    nft list tables 2>/dev/null | sort >"$now/nft"
    diffs nft "$now/nft" || problem "nftables tables changed"
fi
! ip link show "$K8S_BRIDGE" >/dev/null 2>&1 || problem "bridge $K8S_BRIDGE still exists"
if [ -f "$K8S_RUN/audit/sysctl-all.before" ]; then
    sysctl -a 2>/dev/null | grep -vE '^(fs\.(dentry|inode|file-nr|quota)|kernel\.(random|ns_last_pid|pty\.nr|sched_domain)|net\.netfilter\.nf_conntrack_count|vm\.(stat|nr_)|dev\.)' |
        grep -vE '^net\.ipv[46]\.(conf|neigh)\.' | sort >"$now/sysctl-all"
    diffs sysctl-all "$now/sysctl-all" || k8s_log "note: the sysctls above changed while the cluster ran (not restored unless listed in lib.sh K8S_SYSCTLS)"
fi
left=$(our_procs || :)
[ -z "$left" ] || problem "processes still naming $K8S_RUN: $left"

rm -rf --one-file-system "$K8S_RUN" || problem "run dir $K8S_RUN"
if [ $problems = 0 ]; then
    k8s_log "cluster torn down; the host is as up.sh found it"
else
    k8s_log "cluster torn down with $problems thing(s) not undone (see above)"
    exit 1
fi
