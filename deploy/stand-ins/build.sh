#!/usr/bin/env bash
# deploy/stand-ins/build.sh [TAG…] — local stand-ins for the official images
# the compose file names, for machines with a Docker engine but no registry.
#
#   debian:bookworm       debootstrap --variant=minbase from the machine's Debian mirror
#   debian:bookworm-slim  the same, slimmed like the official slim image (docs, man,
#                         locales removed and excluded from later installs)
#   redis:7               slim + Debian's redis-server, entrypoint like the official one
#   mongo:7               slim + FerretDB v1.24.2 (SQLite backend) speaking the MongoDB wire
#                         protocol on 27017, data in the /data/db volume
#   prom/prometheus:v2.42.0   slim + Debian's prometheus 2.42 (the compose file's
#                         `monitoring` profile), user nobody, data in the /prometheus volume
#
# For each TAG (default: all five): present → left alone; `docker pull` works →
# pulled (the real image); else the stand-in is built under that tag.  The
# production files keep naming the official images; a stand-in only fills a
# missing tag.  Stand-ins carry the label org.txagg.stand-in=<tag>, so
#   docker images --filter label=org.txagg.stand-in
# lists them (docker rmi them to reclaim the space; they are kept as a cache).
#
# The Debian mirror is read from this machine's apt sources at run time
# (/etc/apt/sources.list.d/*.sources `URIs:`, or /etc/apt/sources.list).
# Needs root for debootstrap; installs debootstrap and builds the static
# FerretDB through scripts/deps.sh --with stand-ins when missing.  Runs under a
# lock in the txagg cache directory, so two runs never build the same tag at once.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/deploy/stand-ins
# shellcheck source=../../scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

PROMETHEUS=prom/prometheus:v2.42.0
ALL=(debian:bookworm debian:bookworm-slim redis:7 mongo:7 "$PROMETHEUS")
tags=("$@")
[ ${#tags[@]} -gt 0 ] || tags=("${ALL[@]}")
for t in "${tags[@]}"; do
    case " ${ALL[*]} " in *" $t "*) ;; *) echo "stand-ins: no stand-in for $t (known: ${ALL[*]})" >&2; exit 2 ;; esac
done

say() { echo "stand-ins: $*"; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

WORK=
cleanup() {
    [ -n "$WORK" ] || return 0
    # debootstrap mounts proc/sys inside its target; never rm -rf across a mount.
    local m
    for m in $(awk -v d="$WORK/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# The main archive and the security archive of this machine's apt sources.
# Prints "MAIN SECURITY" (SECURITY may be "-").
debian_mirrors() {
    python3 - <<'PY'
import glob, re
main = sec = None
def take(types, uris, suites):
    global main, sec
    if "deb" not in types or not uris:
        return
    if any(s.endswith("-security") for s in suites):
        sec = sec or uris[0]
    elif suites:
        main = main or uris[0]
for f in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for para in re.split(r"\n\s*\n", open(f).read()):
        fields = {}
        for line in para.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.split()
        if fields.get("enabled", ["yes"])[0].lower() == "no":
            continue
        take(fields.get("types", []), fields.get("uris", []), fields.get("suites", []))
try:
    for line in open("/etc/apt/sources.list"):
        w = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(w) >= 3:
            take([w[0]], [w[1]], [w[2]])
except OSError:
    pass
if not main:
    raise SystemExit("stand-ins: no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list")
print(main.rstrip("/"), (sec or "-").rstrip("/"))
PY
}

# Configuration every Debian image gets (as the official images do): no
# service starts inside a build, no apt caches left behind, apt sources.
debian_common_config() {
    local dir=$1 main=$2 sec=$3
    printf '#!/bin/sh\n# no service starts inside an image build\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
    echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
    rm -f "$dir/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$main"
        [ "$sec" = - ] || printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$sec"
    } >"$dir/etc/apt/sources.list.d/debian.sources"
    # The engine provides these at run time; keep the host's out of the image.
    : >"$dir/etc/resolv.conf"
    echo localhost >"$dir/etc/hostname"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
        "$dir"/var/log/*.log "$dir"/var/log/apt/* "$dir"/tmp/* "$dir"/root/.bash_history
}

# What the official slim variant leaves out, removed now and excluded from
# every later dpkg install.
debian_slim() {
    local dir=$1
    cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
CONF
    find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$dir"/usr/share/groff/* "$dir"/usr/share/info/* "$dir"/usr/share/linda/* \
        "$dir"/usr/share/lintian/* "$dir"/usr/share/man/*
    find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
}

docker_import() {
    local dir=$1 tag=$2
    tar --numeric-owner -C "$dir" -c . | docker import \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "LABEL org.txagg.stand-in=$tag" - "$tag" >/dev/null
}

build_debian() { # builds whichever of the two Debian tags are missing, from one debootstrap
    local want_full=$1 want_slim=$2 main sec
    read -r main sec < <(debian_mirrors)
    [ "$(id -u)" = 0 ] || { echo "stand-ins: debootstrap needs root" >&2; exit 1; }
    WORK=$(mktemp -d /var/tmp/txagg-stand-ins.XXXXXX)
    say "debootstrap --variant=minbase bookworm from $main (about 25 s)"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$main" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -20 "$WORK/debootstrap.log" >&2; echo "stand-ins: debootstrap failed" >&2; exit 1; }
    debian_common_config "$WORK/rootfs" "$main" "$sec"
    if [ "$want_full" = 1 ]; then docker_import "$WORK/rootfs" debian:bookworm; fi
    if [ "$want_slim" = 1 ]; then
        debian_slim "$WORK/rootfs"
        docker_import "$WORK/rootfs" debian:bookworm-slim
    fi
    cleanup
    WORK=
}

build_redis() {
    docker build -q --label org.txagg.stand-in=redis:7 -t redis:7 "$HERE/redis" >/dev/null
}

build_prometheus() {
    docker build -q --label "org.txagg.stand-in=$PROMETHEUS" -t "$PROMETHEUS" "$HERE/prometheus" >/dev/null
}

build_mongo() {
    local ferret
    ferret=$(txagg_ferretdb_bin)
    WORK=$(mktemp -d /var/tmp/txagg-stand-ins.XXXXXX)
    cp "$HERE/mongo/Dockerfile" "$HERE/mongo/docker-entrypoint.sh" "$WORK/"
    cp "$ferret" "$WORK/ferretdb"
    docker build -q --label org.txagg.stand-in=mongo:7 -t mongo:7 "$WORK" >/dev/null
    cleanup
    WORK=
}

# Which tags are missing and cannot be pulled (dependencies first: redis:7,
# mongo:7 and prometheus are built FROM debian:bookworm-slim).
mkdir -p "$(txagg_cache_dir)"
exec 9>"$(txagg_cache_dir)/stand-ins.lock"
if ! flock -n 9; then
    say "another run is building stand-ins; waiting for it"
    flock 9
fi

missing=()
for t in "${tags[@]}"; do
    if have "$t"; then
        say "$t present"
    elif timeout 120 docker pull -q "$t" >/dev/null 2>&1; then
        say "$t pulled"
    else
        missing+=("$t")
    fi
done
[ ${#missing[@]} -gt 0 ] || exit 0

need() { case " ${missing[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
if { need redis:7 || need mongo:7 || need "$PROMETHEUS"; } && ! have debian:bookworm-slim && ! need debian:bookworm-slim; then
    if timeout 120 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then say "debian:bookworm-slim pulled"
    else missing=(debian:bookworm-slim "${missing[@]}"); fi
fi

need_tools=0
if need debian:bookworm || need debian:bookworm-slim; then command -v debootstrap >/dev/null || need_tools=1; fi
if need mongo:7 && [ ! -x "$(txagg_ferretdb_bin)" ]; then need_tools=1; fi
[ $need_tools = 0 ] || bash "$ROOT/scripts/deps.sh" --if-missing --with stand-ins

want_full=0 want_slim=0
need debian:bookworm && want_full=1
need debian:bookworm-slim && want_slim=1
if [ $want_full = 1 ] || [ $want_slim = 1 ]; then
    start=$SECONDS
    build_debian $want_full $want_slim
    [ $want_full = 1 ] && say "debian:bookworm built as a stand-in ($(docker image inspect -f '{{.Size}}' debian:bookworm | numfmt --to=si)B)"
    [ $want_slim = 1 ] && say "debian:bookworm-slim built as a stand-in ($(docker image inspect -f '{{.Size}}' debian:bookworm-slim | numfmt --to=si)B) in $((SECONDS - start)) s"
fi
for t in redis:7 mongo:7 "$PROMETHEUS"; do
    need "$t" || continue
    start=$SECONDS
    t_name=${t%%:*}
    "build_${t_name##*/}"
    say "$t built as a stand-in ($(docker image inspect -f '{{.Size}}' "$t" | numfmt --to=si)B) in $((SECONDS - start)) s"
done
