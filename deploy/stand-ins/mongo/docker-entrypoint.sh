#!/bin/sh
# Entrypoint of the mongo:7 stand-in: `mongod [flags]` (the official image's
# command) starts FerretDB as user mongodb, owning /data/db; mongod's flags
# have no FerretDB meaning and are ignored (said on stderr); anything else
# (bash, ferretdb --version…) runs as given.
set -e
if [ "${1#-}" != "$1" ]; then set -- mongod "$@"; fi
if [ "$1" = mongod ]; then
    shift
    [ $# -eq 0 ] || echo "mongo stand-in: FerretDB serves here; mongod flags ignored: $*" >&2
    set -- ferretdb
    if [ "$(id -u)" = 0 ]; then
        find /data/db \! -user mongodb -exec chown mongodb:mongodb '{}' +
        exec setpriv --reuid=mongodb --regid=mongodb --init-groups "$@"
    fi
fi
exec "$@"
