/*
 * trim — stream trimming and consumer reaping; see trim.h, trim.lua and
 * reap.lua (the invariants live in the scripts: never trim an entry a group
 * has not delivered or acknowledged; never delete a consumer that has
 * pending entries, nor the caller).
 */
#include "trim.h"
#include "keys.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

extern const char lua_aggregator_trim[];
extern const char lua_aggregator_reap[];
static rscript trim_script = RSCRIPT_INIT("trim", lua_aggregator_trim);
static rscript reap_script = RSCRIPT_INIT("reap", lua_aggregator_reap);

/* The reply of trim.lua: entries removed, or -1 (logged).  Frees r. */
static long long trimmed(redisReply *r)
{
    if (!r) return -1;
    long long n = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER) {
        n = r->element[0]->integer;
        if (n > 0)
            log_debug("stream trimmed", "entries=%lld bound=%s", n,
                      r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "?");
    } else {
        char q[300];
        log_error("trim failed", "err=%s", log_q(q, sizeof q, r->type == REDIS_REPLY_ERROR ? r->str : "bad reply"));
    }
    freeReplyObject(r);
    return n;
}

#ifdef TXAGG_TESTING
long long trim_stream(rconn *rc)
{
    const char *argv[] = {KEYS_STREAM};
    return trimmed(rscript_run(rc, &trim_script, 1, 1, argv, NULL));
}
#endif

long long trim_stream_part(tier *t, int p)
{
    const char *argv[] = {t->parts[p].stream};
    return trimmed(rcluster_script(t->cl, t->parts[p].slot, &trim_script, 1, 1, argv, NULL));
}

static long long dead_trimmed(redisReply *r, long long maxlen)
{
    if (!r) return -1;
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (n > 0) log_info("dead letters trimmed", "entries=%lld kept_about=%lld", n, maxlen);
    freeReplyObject(r);
    return n;
}

#ifdef TXAGG_TESTING
long long trim_dead_letters(rconn *rc, long long maxlen)
{
    return dead_trimmed(rconn_cmd(rc, "XTRIM %s MAXLEN ~ %lld", KEYS_REJECTED, maxlen), maxlen);
}
#endif

long long trim_dead_letters_part(tier *t, int p, long long maxlen)
{
    return dead_trimmed(
        rcluster_cmd(t->cl, t->parts[p].slot, "XTRIM %s MAXLEN ~ %lld", t->parts[p].rejected, maxlen), maxlen);
}

/* The reply of reap.lua: consumers deleted, or -1 (logged).  Frees r. */
static long long reaped(redisReply *r, const char *idle)
{
    if (!r) return -1;
    long long n = -1;
    if (r->type == REDIS_REPLY_ARRAY) {
        n = (long long)r->elements;
        char q[300];
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                log_info("idle consumer deleted", "consumer=%s idle_ms_over=%s",
                         log_q(q, sizeof q, r->element[i]->str), idle);
    } else if (rreply_is_error(r, NULL) && strstr(r->str, "NOGROUP")) {
        n = 0; /* no group yet: nothing to reap */
    } else {
        char q[300];
        log_error("reap failed", "err=%s", log_q(q, sizeof q, r->type == REDIS_REPLY_ERROR ? r->str : "bad reply"));
    }
    freeReplyObject(r);
    return n;
}

#ifdef TXAGG_TESTING
long long trim_reap_consumers(rconn *rc, const char *group, const char *self, int64_t min_idle_ms)
{
    char idle[32];
    snprintf(idle, sizeof idle, "%" PRId64, min_idle_ms);
    const char *argv[] = {KEYS_STREAM, group, self, idle};
    return reaped(rscript_run(rc, &reap_script, 1, 4, argv, NULL), idle);
}
#endif

long long trim_reap_part(tier *t, int p, const char *group, const char *self, int64_t min_idle_ms)
{
    char idle[32];
    snprintf(idle, sizeof idle, "%" PRId64, min_idle_ms);
    const char *argv[] = {t->parts[p].stream, group, self, idle};
    return reaped(rcluster_script(t->cl, t->parts[p].slot, &reap_script, 1, 4, argv, NULL), idle);
}

int64_t trim_reap_idle_ms(int64_t claim_idle_ms)
{
    int64_t ten_min = INT64_C(600000);
    return claim_idle_ms * 10 > ten_min ? claim_idle_ms * 10 : ten_min;
}
