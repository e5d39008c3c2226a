/*
 * stream — a consumer group's backlog; see stream.h.
 */
#include "stream.h"

#include <string.h>

/* The value of name in a flat name/value reply (XINFO), or NULL. */
static const redisReply *field(const redisReply *a, const char *name)
{
    if (!a || a->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < a->elements; i += 2) {
        const redisReply *k = a->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) && !strcmp(k->str, name))
            return a->element[i + 1];
    }
    return NULL;
}

static int is_int(const redisReply *r) { return r && r->type == REDIS_REPLY_INTEGER; }
static int is_str(const redisReply *r) { return r && r->type == REDIS_REPLY_STRING; }

int stream_group_backlog(rconn *rc, const char *stream, const char *group, stream_backlog *out)
{
    memset(out, 0, sizeof *out);
    redisReply *s = rconn_cmd(rc, "XINFO STREAM %s", stream);
    if (!s) return -1;
    if (s->type != REDIS_REPLY_ARRAY) { /* no such key: nothing waits */
        freeReplyObject(s);
        return 0;
    }
    redisReply *g = rconn_cmd(rc, "XINFO GROUPS %s", stream);
    if (!g) {
        freeReplyObject(s);
        return -1;
    }
    const redisReply *len = field(s, "length"), *last = field(s, "last-generated-id");
    if (is_int(len)) out->length = len->integer;
    for (size_t i = 0; g->type == REDIS_REPLY_ARRAY && i < g->elements; i++) {
        const redisReply *e = g->element[i], *name = field(e, "name");
        if (!is_str(name) || strcmp(name->str, group) != 0) continue;
        const redisReply *pending = field(e, "pending"), *lag = field(e, "lag"),
                         *delivered = field(e, "last-delivered-id");
        out->found = 1;
        out->pending = is_int(pending) ? pending->integer : 0;
        if (is_str(delivered) && is_str(last) && !strcmp(delivered->str, last->str)) out->lag = 0;
        else if (is_int(lag)) out->lag = lag->integer;
        else out->lag = out->length - out->pending;
        if (out->lag < 0) out->lag = 0;
        if (out->lag + out->pending > out->length) out->lag = out->length > out->pending ? out->length - out->pending : 0;
    }
    freeReplyObject(s);
    freeReplyObject(g);
    return 0;
}

int stream_entries_added(rconn *rc, const char *stream, int64_t *out)
{
    *out = 0;
    redisReply *s = rconn_cmd(rc, "XINFO STREAM %s", stream);
    if (!s) return -1;
    const redisReply *added = field(s, "entries-added");
    int rv = is_int(added) ? 0 : 1;
    if (!rv) *out = added->integer;
    freeReplyObject(s);
    return rv;
}
