#!/usr/bin/env bash
# deploy/k8s/test-k8s.sh — `make test-k8s`: the Kubernetes manifests on a real
# single-node cluster built on this machine (deploy/k8s/cluster/), in TAP.
#
#   1. offline: `kubectl kustomize` renders base and every overlay; the
#      base's image tag is VERSION.
#   2. cluster: build.sh (cached), up.sh; a node Ready; a 2-replica
#      Deployment of the locally built pause image (cluster/smoke/smoke.yaml)
#      Available, reachable through its Service (kube-proxy) and by DNS name
#      (CoreDNS).
#   3. every overlay validated with `kubectl apply --dry-run=server`, with no
#      Pod Security warning (the namespace enforces "restricted"), and the
#      rendered objects checked by check_manifests.py.
#   4. the system: the project image (deploy/Dockerfile) and the stand-ins
#      for redis:7 / mongo:7 (deploy/stand-ins/build.sh, only for tags Docker
#      lacks) loaded with `docker save | ctr import`; the test overlay
#      applied; every StatefulSet ready and Deployment Available; the
#      importer Job completes on the bundled sample; /stats through the api
#      Service equals tests/lib/oracle.py's computation, exact to the cent.
#   5. a second import (bin/txgen --expect) during which an aggregator that
#      holds entries is crashed (k8s_crash_aggregator, cluster/lib.sh) and
#      aggregator is scaled to 3: totals exact again, the stream drained.
#      The RSS of every service pod (VmRSS now, VmHWM = peak) is printed.
#   6. teardown (also on failure or Ctrl-C, by trap): down.sh leaves the host
#      as it found it, and says so.
#
# Needs root and a working Docker engine; without them it prints one SKIP
# line and exits 0.  Figures (build, up, Ready, import, wall time, RSS) are
# printed as "# figure:" lines; nothing is asserted on time.
#
# Environment: TXAGG_K8S_ROWS (second import, default 400000),
# TXAGG_K8S_DAYS (default 60), TXAGG_K8S_KEEP=1 (leave the cluster up for
# inspection; tear down later with deploy/k8s/cluster/down.sh).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
. deploy/k8s/cluster/lib.sh
. tests/lib/tap.sh

if [ "$(id -u)" != 0 ] || ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
    echo "1..0 # SKIP make test-k8s needs root and a working Docker engine (root: $([ "$(id -u)" = 0 ] && echo yes || echo no), docker: $(docker info >/dev/null 2>&1 && echo yes || echo no))"
    exit 0
fi

T0=$(k8s_now_ms)
ROWS=${TXAGG_K8S_ROWS:-400000}
DAYS=${TXAGG_K8S_DAYS:-60}
OVERLAYS=(base overlays/self-contained overlays/external overlays/test)
ART=$ROOT/artifacts/test-k8s
SCRATCH=$(mktemp -d /tmp/txagg-test-k8s.XXXXXX)
VOL=$K8S_RUN/volumes # the test overlay's hostPath volumes
RUN_TAG=txagg-k8s-test:$$
BUILD_ID=txagg-k8s-test-$$
IMAGE_TAG= CLUSTER_UP=0 TORN_DOWN=0 SAMPLER=
rm -rf "$ART" && mkdir -p "$ART"

secs_since() { local ms=$(($(k8s_now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $(((ms % 1000) / 100)); }
figure() { echo "# figure: $*"; }
kc() { k8s_kubectl "$@"; }
rendered() { echo "$SCRATCH/render-${1//\//-}.yaml"; }
oracle() { /usr/bin/python3 tests/lib/oracle.py "$@"; }

# --- the steps, in the order the scenario at the bottom runs them ---------------------

render_offline() {
    local o
    for o in "${OVERLAYS[@]}"; do
        if kubectl kustomize "deploy/k8s/$o" >"$(rendered "$o")" 2>"$SCRATCH/render.err"; then
            ok "kubectl kustomize renders deploy/k8s/$o offline ($(grep -c '^kind:' "$(rendered "$o")") objects)"
        else
            not_ok "kubectl kustomize renders deploy/k8s/$o offline" "$(cat "$SCRATCH/render.err")"
        fi
    done
    TAG=$(sed -n 's/^ *newTag: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' deploy/k8s/base/kustomization.yaml)
    is "$TAG" "$(cat VERSION)" "the base's image tag (txagg:$TAG) is the project VERSION"
}

cluster_up() {
    local t cached=built rc
    t=$(k8s_now_ms)
    k8s_binaries_present && cached="cache hit"
    bash deploy/k8s/cluster/build.sh 2>&1 | sed 's/^/# /'
    [ "${PIPESTATUS[0]}" = 0 ] || bail_out "cluster binaries could not be built (deploy/k8s/cluster/build.sh)"
    ok "the cluster binaries are built (cache $K8S_CACHE)"
    figure "cluster binaries: build.sh $(secs_since "$t") s ($cached)"
    t=$(k8s_now_ms)
    CLUSTER_UP=1
    bash deploy/k8s/cluster/up.sh >"$SCRATCH/up.out" 2>&1
    rc=$?
    sed 's/^/# /' "$SCRATCH/up.out"
    is "$rc" 0 "up.sh brings the single-node cluster up"
    [ "$rc" = 0 ] || bail_out "no cluster"
    figure "up.sh $(secs_since "$t") s; $(grep -o 'node .* Ready .*' "$SCRATCH/up.out")"
    is "$(kc get node "$K8S_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" True "the node $K8S_NODE is Ready"
}

smoke_test() {
    local t ip got i
    t=$(k8s_now_ms)
    sed "s|PAUSE_IMAGE|$K8S_PAUSE_IMAGE|" deploy/k8s/cluster/smoke/smoke.yaml | kc apply -f - >/dev/null
    if kc -n txagg-smoke wait --for=condition=Available deploy/smoke --timeout=120s >/dev/null 2>&1; then
        ok "a 2-replica Deployment of the locally built image is Available"
        figure "smoke Deployment Available $(secs_since "$t") s after apply"
    else
        not_ok "a 2-replica Deployment of the locally built image is Available" "$(kc -n txagg-smoke get pods -o wide 2>&1)"
    fi
    is "$(kc -n txagg-smoke get deploy smoke -o jsonpath='{.status.availableReplicas}')" 2 "both smoke replicas are available"
    ip=$(kc -n txagg-smoke get svc smoke -o jsonpath='{.spec.clusterIP}')
    # kube-proxy programs a new Service within its sync period: poll, then judge.
    for ((i = 0; i < 60; i++)); do
        got=$(curl -sS -m 5 "http://$ip/" 2>&1) && [ "$got" = ok ] && break
        sleep 0.5
    done
    is "$got" ok "the smoke Service answers on its ClusterIP $ip (kube-proxy nftables)"
    is "$(python3 deploy/k8s/cluster/dns_a.py smoke.txagg-smoke.svc.cluster.local "$K8S_NODE_IP" 2>&1)" "$ip" \
        "CoreDNS resolves smoke.txagg-smoke.svc.cluster.local to the ClusterIP"
    kc delete ns txagg-smoke --wait=false >/dev/null 2>&1
}

dry_run_overlays() {
    local o out
    # The namespace must exist first, or every namespaced object is refused.
    kc apply -f deploy/k8s/base/namespace.yaml >/dev/null
    for o in "${OVERLAYS[@]}"; do
        if out=$(kc apply --dry-run=server -f "$(rendered "$o")" 2>&1); then
            ok "kubectl apply --dry-run=server accepts deploy/k8s/$o ($(echo "$out" | grep -c 'server dry run') objects)"
        else
            not_ok "kubectl apply --dry-run=server accepts deploy/k8s/$o" "$out"
        fi
        if echo "$out" | grep -qi 'PodSecurity'; then
            not_ok "deploy/k8s/$o meets Pod Security \"restricted\"" "$(echo "$out" | grep -i PodSecurity)"
        else
            ok "deploy/k8s/$o meets Pod Security \"restricted\" (no warning from the API server)"
        fi
    done
    # What the issue requires of the manifests, checked on the rendered objects
    # (converted to JSON by kubectl, which needs the API server for the kinds).
    for o in self-contained test external; do
        kc create --dry-run=client -o json -f "$(rendered "overlays/$o")" >"$SCRATCH/$o.json" 2>>"$SCRATCH/convert.err"
    done
    if python3 deploy/k8s/check_manifests.py "$TAG" "$SCRATCH/self-contained.json" "$SCRATCH/test.json" \
        "$SCRATCH/external.json" >"$SCRATCH/checks.out" 2>&1; then
        while read -r verdict line; do
            case $verdict in
            PASS) ok "$line" ;;
            *) not_ok "${line%%: *}" "${line#*: }" ;;
            esac
        done <"$SCRATCH/checks.out"
    else
        not_ok "check_manifests.py checks the rendered overlays" "$(cat "$SCRATCH/convert.err" "$SCRATCH/checks.out")"
    fi
}

# Images: the stand-ins only where Docker lacks the tag, the project image
# under a temporary tag; into the node's containerd with docker save | ctr import.
load_images() {
    local t image=docker.io/library/txagg:$TAG
    t=$(k8s_now_ms)
    bash deploy/stand-ins/build.sh debian:bookworm debian:bookworm-slim redis:7 mongo:7 2>&1 | sed 's/^/# /'
    [ "${PIPESTATUS[0]}" = 0 ] || bail_out "the stand-in images could not be built"
    ok "stand-ins for redis:7 and mongo:7 (and the Debian base images) are present"
    IMAGE_TAG=$RUN_TAG
    if ! docker build -q -f deploy/Dockerfile --build-arg "TXAGG_BUILD_ID=$BUILD_ID" -t "$IMAGE_TAG" . >"$SCRATCH/build.log" 2>&1; then
        IMAGE_TAG=
        tail -20 "$SCRATCH/build.log" | sed 's/^/# /'
        bail_out "docker build -f deploy/Dockerfile failed"
    fi
    ok "the project image builds from deploy/Dockerfile"
    figure "images (stand-ins + project) $(secs_since "$t") s; project image $(docker image inspect -f '{{.Size}}' "$IMAGE_TAG" | awk '{printf "%.1f MB", $1/1e6}')"
    t=$(k8s_now_ms)
    docker save "$IMAGE_TAG" redis:7 mongo:7 | k8s_ctr images import - >/dev/null &&
        k8s_ctr images tag --force "docker.io/library/$IMAGE_TAG" "$image" >/dev/null &&
        k8s_ctr images rm "docker.io/library/$IMAGE_TAG" >/dev/null
    check "docker save | ctr import loads $image, redis:7 and mongo:7 into the node's containerd" \
        images_loaded "$image" docker.io/library/redis:7 docker.io/library/mongo:7
    figure "image load $(secs_since "$t") s"
}

images_loaded() { # IMAGE… — each is in the node's containerd
    local have i
    have=$(k8s_ctr images ls -q)
    for i in "$@"; do grep -qx "$i" <<<"$have" || return 1; done
}

# deploy_system: the test overlay on pre-created hostPath volumes; everything up.
deploy_system() {
    local t out rc
    mkdir -p "$VOL/import-data" "$VOL/data-redis-0" "$VOL/data-mongo-0"
    chown 999:999 "$VOL/data-redis-0" "$VOL/data-mongo-0"
    install -m 644 deploy/data/transactions_1_month.csv "$VOL/import-data/transactions_1_month.csv"
    chmod 755 "$VOL/import-data"
    t=$(k8s_now_ms)
    out=$(kc apply -k deploy/k8s/overlays/test 2>&1)
    rc=$?
    is "$rc" 0 "kubectl apply -k deploy/k8s/overlays/test"
    [ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
    check "StatefulSet redis ready" k8s_app rollout status sts/redis --timeout=180s
    check "StatefulSet mongo ready" k8s_app rollout status sts/mongo --timeout=180s
    figure "StatefulSets ready $(secs_since "$t") s after apply"
    if k8s_app wait --for=condition=Available deploy --all --timeout=180s >"$SCRATCH/wait.out" 2>&1; then
        ok "every Deployment (aggregator, persistor, api) is Available"
    else
        not_ok "every Deployment (aggregator, persistor, api) is Available" "$(cat "$SCRATCH/wait.out")" "$(k8s_app get pods -o wide 2>&1)"
    fi
    figure "Deployments Available $(secs_since "$t") s after apply"
    API_URL=http://$(k8s_app get svc api -o jsonpath='{.spec.clusterIP}'):8000
}

# job_completes JOB SECONDS NAME — the Job completes (figure: how long it was awaited).
job_completes() {
    local t
    t=$(k8s_now_ms)
    if k8s_job_done "$1" "$2"; then
        ok "$3"
        figure "Job $1 complete $(secs_since "$t") s later"
    else
        not_ok "$3" "$(k8s_app logs "job/$1" --tail=20 2>&1)"
    fi
}

# stats_exact TRUTH SECONDS NAME — /stats through the api Service equals
# TRUTH over its days (polled: the aggregators and the persistor work
# asynchronously); the last comparison's output is printed.
stats_exact() {
    local t from to
    t=$(k8s_now_ms)
    read -r from to < <(oracle range "$1")
    if txagg_wait_cmd "$2" oracle compare "$API_URL" "$from" "$to" "$1" >/dev/null 2>&1; then
        ok "$3"
        figure "totals exact $(secs_since "$t") s later"
    else
        not_ok "$3"
    fi
    oracle compare "$API_URL" "$from" "$to" "$1" 2>&1 | sed 's/^#* */# /'
}

# second_import: a generated file imported by a copy of the importer Job;
# aggregators crashed once a tenth of it is read, then scaled to 3.
second_import() {
    local base_read ipod state pod held left read_at vid vstate round i
    make --no-print-directory -s bin/txgen >"$SCRATCH/txgen-build.log" 2>&1 &&
        bin/txgen --rows "$ROWS" --days "$DAYS" --seed 10 --bad-every 97 --expect "$SCRATCH/gen.expect" \
            >"$VOL/import-data/generated.csv" 2>"$SCRATCH/txgen.err" ||
        bail_out "bin/txgen: $(cat "$SCRATCH/txgen.err" "$SCRATCH/txgen-build.log" | head -c 300)"
    chmod 644 "$VOL/import-data/generated.csv"
    oracle truth --tsv --csv deploy/data/transactions_1_month.csv "$SCRATCH/gen.expect" >"$SCRATCH/expect2.tsv" 2>"$SCRATCH/oracle.err" ||
        bail_out "oracle: $(cat "$SCRATCH/oracle.err")"
    python3 deploy/k8s/check_manifests.py importer-job "$SCRATCH/test.json" importer-generated /import/generated.csv \
        >"$SCRATCH/job2.json" || bail_out "could not derive the second importer Job"
    base_read=$(stream_group_field entries-read k8s_redis_cli)
    k8s_app apply -f "$SCRATCH/job2.json" >/dev/null
    ok "second importer Job started ($ROWS generated rows over $DAYS days)"
    sleep 0.5
    ipod=$(k8s_app get pods -l job-name=importer-generated -o jsonpath='{.items[0].metadata.name}' 2>/dev/null)
    k8s_peak_rss "$ipod" importer "$SCRATCH/importer.hwm" &
    SAMPLER=$!
    for ((i = 0; i < 600; i++)); do # in the middle: a tenth of the rows read by the group
        read_at=$(stream_group_field entries-read k8s_redis_cli)
        [ "${read_at:-0}" -ge $((${base_read:-0} + ROWS / 10)) ] 2>/dev/null && break
        sleep 0.2
    done
    # If the crashed replica left nothing behind (its last batch was already
    # acknowledged), another one is crashed: at most 3.
    for ((round = 1; round <= 3; round++)); do
        state="no longer running"
        k8s_container_id "$ipod" importer >/dev/null && state="still running"
        read -r pod held left read_at vid vstate < <(k8s_crash_aggregator)
        ok "aggregator $pod crashed (SIGKILL, container ${vid:0:12} $vstate), pod deleted, when the group had read $((read_at - ${base_read:-0})) of the $ROWS rows: it held $held pending entries when frozen, $left left behind; the importer was $state"
        [ "$left" -gt 0 ] && break
    done
    k8s_app scale deploy/aggregator --replicas=3 >/dev/null
    if k8s_app rollout status deploy/aggregator --timeout=180s >/dev/null 2>&1 &&
        [ "$(k8s_app get deploy aggregator -o jsonpath='{.status.availableReplicas}')" = 3 ]; then
        ok "aggregator scaled to 3 replicas, all Available"
    else
        not_ok "aggregator scaled to 3 replicas, all Available" "$(k8s_app get deploy aggregator -o wide 2>&1)" "$(k8s_app get hpa 2>&1)"
    fi
    job_completes importer-generated 600 "the second importer Job completes"
}

print_rss() {
    [ -s "$SCRATCH/importer.hwm" ] && figure "RSS importer: $(awk '{printf "%.1f MB peak", $1/1024}' "$SCRATCH/importer.hwm")"
    k8s_rss | while read -r line; do figure "RSS $line"; done
}

# Everything a failure needs to be understood, kept under artifacts/test-k8s.
collect() {
    [ "$CLUSTER_UP" = 1 ] || return 0
    { kc get nodes -o wide; kc get all,pvc,pv,hpa,pdb,events -A -o wide; } >"$ART/cluster-state.txt" 2>&1
    local p
    for p in $(k8s_app get pods -o name 2>/dev/null); do
        k8s_app logs "$p" --all-containers --tail=200 >"$ART/$(basename "$p").log" 2>&1
        k8s_app describe "$p" >"$ART/$(basename "$p").describe.txt" 2>&1
    done
    cp -r "$K8S_RUN/logs" "$ART/components" 2>/dev/null
}

teardown() {
    [ "$TORN_DOWN" = 1 ] && return 0
    TORN_DOWN=1
    [ -z "$SAMPLER" ] || { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; }
    local t rc left
    if [ "${TXAGG_K8S_KEEP:-0}" = 1 ] && [ "$CLUSTER_UP" = 1 ]; then
        echo "# TXAGG_K8S_KEEP=1: cluster left up; KUBECONFIG=$K8S_RUN/kubeconfig/admin.conf; tear down with deploy/k8s/cluster/down.sh"
    elif [ -d "$K8S_RUN" ]; then
        t=$(k8s_now_ms)
        bash deploy/k8s/cluster/down.sh 2>&1 | sed 's/^/# /'
        rc=${PIPESTATUS[0]}
        figure "teardown $(secs_since "$t") s"
        is "$rc" 0 "teardown (down.sh) left the host as up.sh found it"
    fi
    # The project image under our temporary tag; the stand-ins stay (the
    # stand-in builder keeps them as a labelled cache, like the compose test).
    # --no-prune: their parent layers are the classic builder's cache (the
    # -dev packages, the compiled tree); pruning them made every run rebuild
    # the image from scratch (~90 s instead of a few).
    [ -z "$IMAGE_TAG" ] || docker rmi --no-prune "$IMAGE_TAG" >/dev/null 2>&1
    # The classic builder keeps the Dockerfile's build stage as an untagged
    # image labelled with the build id we passed: remove exactly that.
    left=$(docker images -q --filter dangling=true --filter "label=org.txagg.build-id=$BUILD_ID" 2>/dev/null)
    [ -z "$left" ] || docker rmi --no-prune $left >/dev/null 2>&1
    chmod -R u+w "$SCRATCH" 2>/dev/null
    rm -rf "$SCRATCH"
}
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$TORN_DOWN" = 1 ] || { collect; teardown; }
    exit $rc
}

# --- the scenario -------------------------------------------------------------------
trap on_exit EXIT
trap 'echo "# interrupted"; exit 130' INT TERM

render_offline                  # 1
cluster_up                      # 2
smoke_test
dry_run_overlays                # 3
load_images                     # 4
oracle truth --tsv --csv deploy/data/transactions_1_month.csv >"$SCRATCH/expect1.tsv" 2>"$SCRATCH/oracle.err" ||
    bail_out "oracle: $(cat "$SCRATCH/oracle.err")"
deploy_system
job_completes importer 300 "the importer Job completes on the bundled sample"
stats_exact "$SCRATCH/expect1.tsv" 180 "/stats through the api Service equals the independent computation, exact to the cent"
second_import                   # 5
# Entries the crashed replica held are claimed after CLAIM_IDLE_MS (30 s).
stats_exact "$SCRATCH/expect2.tsv" 300 \
    "after the pod deletion and the scale-out, /stats equals sample + generated totals, exact to the cent"
check "every entry is delivered and acknowledged (the stream is drained)" \
    k8s_wait 60 "the stream to drain" stream_drained k8s_redis_cli
like "$(k8s_redis_cli CONFIG GET appendonly | tr '\n' ' ')" 'appendonly yes' "the running Redis has AOF on"
print_rss
collect                         # 6
teardown
figure "test-k8s wall time $(secs_since "$T0") s"
done_testing
