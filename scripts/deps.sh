#!/usr/bin/env bash
# deps.sh — install what txagg needs on a fresh Debian bookworm machine.
#
#   scripts/deps.sh               install everything missing, saying what it does
#   scripts/deps.sh --if-missing  the same, silent when nothing is missing (make test/run/bench)
#   scripts/deps.sh --check       only report; exit 1 when something is missing
#   scripts/deps.sh --with fuzz   also clang + libFuzzer (make fuzz)
#   scripts/deps.sh --with stand-ins   also debootstrap and the static FerretDB even
#                                 where mongod is installed (deploy/stand-ins/build.sh)
#   scripts/deps.sh --with compose     also Compose v2 (make test-compose; see below)
#
# Installs as root (or through sudo), without prompts: build tools, pkg-config,
# the five libraries' -dev packages (hiredis, mongo-c-driver, civetweb, cJSON,
# libcsv), cmocka, redis-server/redis-tools, curl, wrk, python3 and
# python3-redis (the test oracle tests/lib/oracle.py reads Redis with it),
# chromium (the dashboard test renders the page headless), valgrind (the
# services' leak test), prometheus (promtool and the server: the metrics and
# alerting-rule tests) with python3-prometheus-client and python3-yaml (their
# Python oracle);
# and a MongoDB-wire server: `mongod` if one is on PATH, otherwise FerretDB
# v1.24.2 built from the Go module proxy into the cache directory
# ($TXAGG_CACHE, default ~/.cache/txagg).  `go install …@v1.24.2` does not work
# here (the proxy refuses version listing; a build without
# build/version/version.txt panics at start), so it is built the way that
# does: `go mod download` in a scratch module, copy the module out of the
# module cache, write the version file, `go build`.
#
# With `--with compose` only (no `make test` needs it): where the Docker CLI
# is installed but `docker compose` (Compose v2) is not, and a Go toolchain
# is, it builds Compose v2.29.7 from the Go module proxy
# into the cache directory (~70 s once) and installs it as a Docker CLI plugin
# (~/.docker/cli-plugins/docker-compose, or under $DOCKER_CONFIG), saying so.
# Without Go it only says that `make test-compose` falls back to
# docker-compose v1 where that is installed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"

mode=install
with=()
while [ $# -gt 0 ]; do
    case $1 in
    --if-missing) mode=if-missing ;;
    --check) mode=check ;;
    --with) with+=("$2"); shift ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "deps.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

say() { [ "$mode" = if-missing ] && [ "${said:-0}" = 0 ] && { said=1; echo "deps: something is missing; installing"; }; echo "deps: $*"; }

apt_pkgs=(build-essential pkg-config libhiredis-dev libmongoc-dev libbson-dev libcivetweb-dev
    libcjson-dev libcsv-dev libcmocka-dev redis-server redis-tools curl wrk python3 ca-certificates procps
    chromium valgrind prometheus python3-prometheus-client python3-yaml python3-redis)
for w in "${with[@]}"; do
    case $w in
    fuzz) apt_pkgs+=(clang libclang-rt-14-dev) ;;
    stand-ins) apt_pkgs+=(debootstrap) ;;
    compose) ;;
    *) echo "deps.sh: unknown --with $w" >&2; exit 2 ;;
    esac
done

missing_pkgs=()
for p in "${apt_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing_pkgs+=("$p")
    fi
done

need_ferretdb=0
want_ferretdb_bin=0
for w in "${with[@]}"; do [ "$w" = stand-ins ] && want_ferretdb_bin=1; done
if [ ! -x "$(txagg_ferretdb_bin)" ] && { [ $want_ferretdb_bin = 1 ] || ! command -v mongod >/dev/null 2>&1; }; then
    need_ferretdb=1
fi

# Compose v2: only when asked for, where the Docker CLI is installed and lacks
# it.  A plugin already built into the cache is just (re)installed.
need_compose=0
want_compose=0
for w in "${with[@]}"; do [ "$w" = compose ] && want_compose=1; done
if [ $want_compose = 1 ] && command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
    if [ -x "$(txagg_compose_bin)" ] || txagg_go >/dev/null; then
        need_compose=1
    elif [ "$mode" != if-missing ]; then
        echo "deps: docker is installed without Compose v2 and there is no Go toolchain to build it;"
        echo "deps: make test-compose uses docker-compose v1 where installed"
    fi
fi

if [ ${#missing_pkgs[@]} -eq 0 ] && [ $need_ferretdb = 0 ] && [ $need_compose = 0 ]; then
    [ "$mode" = if-missing ] || echo "deps: everything is installed (MongoDB-wire server: $(txagg_mongo_server))"
    exit 0
fi

if [ "$mode" = check ]; then
    [ ${#missing_pkgs[@]} -gt 0 ] && echo "deps: missing Debian packages: ${missing_pkgs[*]}"
    [ $need_ferretdb = 1 ] && echo "deps: missing FerretDB (no $(txagg_ferretdb_bin)$([ $want_ferretdb_bin = 1 ] || echo ', no mongod on PATH'))"
    [ $need_compose = 1 ] && echo "deps: missing Compose v2 (\`docker compose\`): would build $TXAGG_COMPOSE_VERSION as a Docker CLI plugin"
    exit 1
fi

sudo=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    elif [ ${#missing_pkgs[@]} -gt 0 ]; then
        echo "deps: missing Debian packages: ${missing_pkgs[*]}" >&2
        echo "deps: not root and no password-less sudo; as root run:" >&2
        echo "        apt-get update && apt-get install -y ${missing_pkgs[*]}" >&2
        exit 1
    fi
fi

if [ ${#missing_pkgs[@]} -gt 0 ]; then
    say "apt-get install ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be stale or absent on a fresh machine.
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}"
    # Debian's package starts a system redis-server where an init system runs;
    # txagg never uses it (every test and `make run` start their own).
    # Its prometheus package would likewise start a system Prometheus on :9090
    # under systemd; the tests start their own on free ports, so a service this
    # install brought in is stopped and disabled again.
    case " ${missing_pkgs[*]} " in
    *" prometheus "*)
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
            say "stopping and disabling the system Prometheus the package started (txagg runs its own)"
            $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
        fi
        ;;
    esac
fi

if [ $need_ferretdb = 1 ]; then
    go=$(txagg_go) || {
        echo "deps: no mongod on PATH and no Go toolchain to build FerretDB $TXAGG_FERRETDB_VERSION." >&2
        echo "deps: install Go (https://go.dev/dl/, unpacked at /usr/local/go) or MongoDB (mongod), then rerun." >&2
        exit 1
    }
    dest=$(txagg_ferretdb_bin)
    say "building FerretDB $TXAGG_FERRETDB_VERSION with $($go version | cut -d' ' -f3) into $dest (about a minute the first time)"
    work=$(mktemp -d)
    trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
    (
        cd "$work"
        "$go" mod init txagg-ferretdb-scratch >/dev/null 2>&1
        moddir=$(GOFLAGS=-mod=mod "$go" mod download -json github.com/FerretDB/FerretDB@"$TXAGG_FERRETDB_VERSION" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
        [ -d "$moddir" ] || { echo "deps: go mod download gave no module directory" >&2; exit 1; }
        cp -r "$moddir" src
        chmod -R u+w src
        echo "$TXAGG_FERRETDB_VERSION" >src/build/version/version.txt
        cd src
        mkdir -p "$(dirname "$dest")"
        CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$go" build -trimpath -ldflags='-s -w' -o "$dest.tmp" ./cmd/ferretdb
        mv "$dest.tmp" "$dest"
    )
    "$dest" --version | head -1 | sed 's/^/deps: built /'
fi

if [ $need_compose = 1 ]; then
    cbin=$(txagg_compose_bin)
    if [ ! -x "$cbin" ]; then
        go=$(txagg_go)
        say "docker is installed but \`docker compose\` is not: building Compose $TXAGG_COMPOSE_VERSION with $($go version | cut -d' ' -f3) into $cbin (about 70 s the first time)"
        mkdir -p "$(dirname "$cbin")"
        gobin=$(mktemp -d "$(dirname "$cbin")/gobin.XXXXXX")
        # The module's main package is ./cmd, so the binary comes out named `cmd`.
        GOBIN=$gobin CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$(txagg_go)" install -trimpath \
            -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$TXAGG_COMPOSE_VERSION" \
            "github.com/docker/compose/v2/cmd@$TXAGG_COMPOSE_VERSION" || { rm -rf "$gobin"; exit 1; }
        mv "$gobin/cmd" "$cbin"
        rm -rf "$gobin"
    fi
    plugin=$(txagg_compose_plugin)
    say "installing Compose $TXAGG_COMPOSE_VERSION as the Docker CLI plugin $plugin"
    install -D -m 755 "$cbin" "$plugin"
    docker compose version | sed 's/^/deps: /'
fi
echo "deps: done (MongoDB-wire server: $(txagg_mongo_server))"
