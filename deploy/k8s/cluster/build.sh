#!/usr/bin/env bash
# deploy/k8s/cluster/build.sh — build the test cluster's binaries once into the
# cache ($(txagg_cache_dir)/k8s-v1.32.4, see lib.sh).  Warm: a few seconds.
#
#   build.sh           build whatever the cache lacks
#   build.sh --check   exit 0 when the cache is complete, 1 otherwise (no work)
#   build.sh --force   rebuild everything
#
# What it builds, and why this way (docs/TESTING.md "The Kubernetes test
# cluster"):
#   - Kubernetes v1.32.4 from the Go module proxy.  `go install` of the
#     components is impossible (the main module's go.mod replaces every
#     k8s.io/* staging module by ./staging/src/..., absent from the module
#     zip), so: `go mod download k8s.io/kubernetes@v1.32.4` in a scratch
#     module (GONOSUMDB: the checksum database refuses it), copy the module
#     directory out of the module cache, drop vendor/ and the stale go.work,
#     point each staging replace at the published k8s.io/X v0.32.4, build the
#     five components statically with the version stamped (else they report
#     v0.0.0 and kubectl/kubelet skew checks complain).  Cold ~5 min, 1.8 GB peak.
#   - CoreDNS v1.11.4 the same way (`go build .` in the copied module).
#   - etcd and the CNI plugins from the Debian packages etcd-server and
#     containernetworking-plugins: `apt-get download` + `dpkg-deb -x` into the
#     cache.  Never installed: installing etcd-server would start a system
#     etcd on 2379 from its init script, a host side effect.
#   - the sandbox image: pause.c linked statically, FROM scratch, built with
#     the Docker engine and kept as a `docker save` archive (the tag is removed
#     from Docker again unless it was there before).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=build
case ${1:-} in
"") ;;
--check) mode=check ;;
--force) mode=force ;;
-h | --help) sed -n '2,30p' "$0"; exit 0 ;;
*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
esac

if [ $mode = check ]; then k8s_binaries_present; exit; fi
if [ $mode = build ] && k8s_binaries_present; then
    k8s_log "cluster binaries cached in $K8S_CACHE"
    exit 0
fi

go=$(txagg_go) || k8s_die "no Go toolchain (go on PATH or /usr/local/go): needed to build Kubernetes $TXAGG_K8S_VERSION"
command -v gcc >/dev/null || k8s_die "gcc is needed for the pause image (make deps installs it)"
command -v docker >/dev/null && docker info >/dev/null 2>&1 || k8s_die "a working Docker engine is needed to build the pause image"

start=$(k8s_now_ms)
work=$(mktemp -d /tmp/txagg-k8s-build.XXXXXX)
cleanup() { chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$K8S_BIN" "$K8S_CNI_BIN" "$(dirname "$K8S_PAUSE_TAR")"

# go_module_dir MODULE@VERSION — download into the module cache, print its dir.
go_module_dir() {
    (
        cd "$work"
        [ -f go.mod ] || "$go" mod init txagg-k8s-scratch >/dev/null 2>&1
        GOFLAGS=-mod=mod GONOSUMDB=k8s.io/kubernetes "$go" mod download -json "$1" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
    )
}

build_kubernetes() {
    local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy) b need=0
    for b in "${bins[@]}"; do [ -x "$K8S_BIN/$b" ] && [ $mode != force ] || need=1; done
    [ $need = 1 ] || return 0
    local t0 dir minor=${TXAGG_K8S_VERSION#v1.} pkgs=()
    minor=${minor%%.*}
    t0=$(k8s_now_ms)
    k8s_log "building Kubernetes $TXAGG_K8S_VERSION (${bins[*]}) with $("$go" version | cut -d' ' -f3); about 5 minutes cold"
    dir=$(go_module_dir "k8s.io/kubernetes@$TXAGG_K8S_VERSION")
    [ -d "$dir" ] || k8s_die "go mod download k8s.io/kubernetes@$TXAGG_K8S_VERSION gave no module directory"
    cp -r "$dir" "$work/kubernetes"
    chmod -R u+w "$work/kubernetes"
    (
        cd "$work/kubernetes"
        rm -rf vendor go.work go.work.sum
        # k8s.io/X => ./staging/src/k8s.io/X   becomes   k8s.io/X => k8s.io/X v0.<minor>.<patch>
        sed -i -E "s#^([[:space:]]*)(k8s\.io/[A-Za-z0-9._-]+) => \./staging/src/k8s\.io/[A-Za-z0-9._-]+#\1\2 => \2 v0.${TXAGG_K8S_VERSION#v1.}#" go.mod
        ! grep -q 'staging/src' go.mod || k8s_die "go.mod still points into staging/ after the rewrite"
        for b in "${bins[@]}"; do pkgs+=("./cmd/$b"); done
        GOSUMDB=off GOWORK=off CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" \
            "$go" build -trimpath -o "$work/out/" -ldflags "-s -w \
                -X k8s.io/component-base/version.gitVersion=$TXAGG_K8S_VERSION \
                -X k8s.io/component-base/version.gitMajor=1 \
                -X k8s.io/component-base/version.gitMinor=$minor \
                -X k8s.io/component-base/version.gitTreeState=clean \
                -X k8s.io/client-go/pkg/version.gitVersion=$TXAGG_K8S_VERSION" "${pkgs[@]}"
    )
    for b in "${bins[@]}"; do mv "$work/out/$b" "$K8S_BIN/$b"; done
    chmod -R u+w "$work/kubernetes" && rm -rf "$work/kubernetes"
    k8s_log "built Kubernetes in $((($(k8s_now_ms) - t0) / 1000)) s: $("$K8S_BIN/kubelet" --version)"
}

build_coredns() {
    [ -x "$K8S_BIN/coredns" ] && [ $mode != force ] && return 0
    local t0 dir
    t0=$(k8s_now_ms)
    k8s_log "building CoreDNS $TXAGG_COREDNS_VERSION"
    dir=$(go_module_dir "github.com/coredns/coredns@$TXAGG_COREDNS_VERSION")
    [ -d "$dir" ] || k8s_die "go mod download coredns gave no module directory"
    cp -r "$dir" "$work/coredns"
    chmod -R u+w "$work/coredns"
    (cd "$work/coredns" && CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" \
        "$go" build -trimpath -ldflags '-s -w' -o "$work/out/coredns" .)
    mv "$work/out/coredns" "$K8S_BIN/coredns"
    k8s_log "built CoreDNS in $((($(k8s_now_ms) - t0) / 1000)) s: $("$K8S_BIN/coredns" -version | head -1)"
}

# Debian packages, extracted (never installed).
extract_debs() {
    if [ -x "$K8S_BIN/etcd" ] && [ -x "$K8S_CNI_BIN/bridge" ] && [ $mode != force ]; then return 0; fi
    k8s_log "extracting etcd-server and containernetworking-plugins (apt-get download, dpkg-deb -x)"
    mkdir -p "$work/debs"
    if ! (cd "$work/debs" && apt-get -q -o APT::Sandbox::User=root download etcd-server containernetworking-plugins >/dev/null); then
        # A fresh machine may have no package lists yet.
        apt-get update -q >/dev/null
        (cd "$work/debs" && apt-get -q -o APT::Sandbox::User=root download etcd-server containernetworking-plugins >/dev/null)
    fi
    local d
    for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/debs/root"; done
    install -m 755 "$work/debs/root/usr/bin/etcd" "$K8S_BIN/etcd"
    for d in bridge host-local loopback; do
        install -m 755 "$work/debs/root/usr/lib/cni/$d" "$K8S_CNI_BIN/$d"
    done
    k8s_log "etcd $("$K8S_BIN/etcd" --version | sed -n 's/^etcd Version: //p'), CNI plugins $(ls "$K8S_CNI_BIN" | tr '\n' ' ')"
}

build_pause_image() {
    [ -s "$K8S_PAUSE_TAR" ] && [ $mode != force ] && return 0
    k8s_log "building the sandbox image $K8S_PAUSE_IMAGE (static pause.c, FROM scratch)"
    mkdir -p "$work/pause"
    gcc -std=c11 -Wall -Wextra -Werror -Os -static -s -o "$work/pause/pause" "$k8s_here/pause.c"
    cat >"$work/pause/Dockerfile" <<'EOF'
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
EOF
    local had=0
    docker image inspect "$K8S_PAUSE_IMAGE" >/dev/null 2>&1 && had=1
    docker build -q -t "$K8S_PAUSE_IMAGE" "$work/pause" >/dev/null
    docker save "$K8S_PAUSE_IMAGE" >"$K8S_PAUSE_TAR.tmp"
    mv "$K8S_PAUSE_TAR.tmp" "$K8S_PAUSE_TAR"
    [ $had = 1 ] || docker rmi "$K8S_PAUSE_IMAGE" >/dev/null
}

build_kubernetes
build_coredns
extract_debs
build_pause_image
k8s_binaries_present || k8s_die "the cache is still incomplete: $K8S_CACHE"
k8s_log "cluster binaries ready in $K8S_CACHE ($((($(k8s_now_ms) - start) / 1000)) s)"
