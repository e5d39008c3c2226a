# tests/lib/stream.sh — the stream's state as the tests and the deployment
# scripts read it: one definition of "drained", the one common/stream.h uses.
# Sourcing defines functions only (no cd, no export, no trap).
#
#   stream_drained REDIS_CLI…           0 when every entry of the stream has
#                                       been delivered to the group and
#                                       acknowledged
#   stream_group_field FIELD REDIS_CLI… one field of XINFO GROUPS for the group
#   stream_holders REDIS_CLI…           the consumers that hold pending
#                                       entries, one "NAME PENDING" line each,
#                                       the most first: whom a crash test
#                                       kills (a consumer is hostname-pid)
#
# REDIS_CLI… is the command that runs redis-cli against the right server,
# e.g. `redis-cli -p 6379` or a function that wraps `docker exec … redis-cli`.
#
# "Drained" never trusts the group's `lag`: Redis 7.0 can report a stale or
# nil value (after an AOF reload, after XDEL/XTRIM).  It is: the group's
# last-delivered-id equals the stream's last-generated-id (nothing left to
# deliver) and XPENDING counts 0 (nothing delivered and not acknowledged).
# The stream and group names are the product's (common/keys.h, config.h).

STREAM_KEY=transactions
STREAM_GROUP=aggregators

stream_group_field() { # FIELD REDIS_CLI…
    local field=$1
    shift
    "$@" XINFO GROUPS "$STREAM_KEY" 2>/dev/null |
        awk -v g="$STREAM_GROUP" -v f="$field" '
            NR % 2 { k = $0; next }
            k == "name" { cur = $0 }
            cur == g && k == f { print; exit }'
}

stream_drained() { # REDIS_CLI…
    local last delivered pending
    last=$("$@" XINFO STREAM "$STREAM_KEY" 2>/dev/null | awk 'want { print; exit } $0 == "last-generated-id" { want = 1 }')
    [ -n "$last" ] || return 1
    delivered=$(stream_group_field last-delivered-id "$@")
    [ "$delivered" = "$last" ] || return 1
    pending=$("$@" XPENDING "$STREAM_KEY" "$STREAM_GROUP" 2>/dev/null | head -1)
    [ "$pending" = 0 ]
}

stream_holders() { # REDIS_CLI…
    "$@" XINFO CONSUMERS "$STREAM_KEY" "$STREAM_GROUP" 2>/dev/null |
        awk 'NR % 2 { k = $0; next } k == "name" { n = $0 } k == "pending" && $0 > 0 { print n, $0 }' | sort -k2,2nr
}
