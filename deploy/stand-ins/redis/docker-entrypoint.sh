#!/bin/sh
# Entrypoint of the redis:7 stand-in, like the official image's:
#  - flag arguments (or a .conf file first) mean "redis-server with these";
#  - redis-server starts as user redis, owning /data;
#  - protected mode off.  Debian builds Redis with protected mode ON (the
#    official image patches it off); left on, every other container would be
#    refused.  It goes before the user's flags (after a config file, which
#    redis-server requires first), so a flag of the user's still wins;
#  - --version / --help and any other command pass through untouched.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
    shift
    case "${1:-}" in
    -v | --version | -h | --help) exec redis-server "$@" ;;
    esac
    conf=
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then conf=$1; shift; fi
    set -- redis-server ${conf:+"$conf"} --protected-mode no "$@"
    if [ "$(id -u)" = 0 ]; then
        find . \! -user redis -exec chown redis '{}' +
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
