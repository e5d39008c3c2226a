/*
 * freshness — the clock, the archive boundary and the backlog; see
 * freshness.h.
 *
 * Invariant: a value is printed only after it was checked to have the
 * documented shape (an ISO second, a day), so the JSON needs no escaping.
 */
#include "freshness.h"

#include "keys.h"
#include "log.h"
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A GET of a key holding text of the given shape (ISO second or day). */
static int get_shaped(rconn *rc, const char *key, int day, char *out, size_t n, char *err, size_t errlen)
{
    out[0] = '\0';
    redisReply *r = rconn_cmd(rc, "GET %s", key);
    if (!r) return log_fail(FRESH_UNAVAILABLE, err, errlen, "Redis unavailable: %s", rconn_error(rc));
    int rv = FRESH_OK;
    int64_t v;
    if (r->type == REDIS_REPLY_STRING) {
        int ok = day ? r->len == TS_DAY_LEN && !ts_parse_day(r->str, r->len, &v)
                     : r->len == TS_ISO_LEN && !ts_parse(r->str, r->len, &v);
        if (ok && r->len < n) memcpy(out, r->str, r->len + 1);
        else rv = log_fail(FRESH_CORRUPT, err, errlen, "corrupt data: %s is not a %s", key, day ? "day" : "UTC time");
    } else if (r->type == REDIS_REPLY_ERROR) {
        rv = log_fail(FRESH_UNAVAILABLE, err, errlen, "Redis unavailable: %s", r->str);
    } else if (r->type != REDIS_REPLY_NIL) {
        rv = log_fail(FRESH_CORRUPT, err, errlen, "corrupt data: %s is not a string", key);
    }
    freeReplyObject(r);
    return rv;
}

int freshness_read(rconn *rc, freshness *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rv = get_shaped(rc, KEYS_VIRTUAL_CLOCK, 0, out->newest_event, sizeof out->newest_event, err, errlen);
    if (rv == FRESH_OK)
        rv = get_shaped(rc, KEYS_ARCHIVED_THROUGH, 1, out->archived_through, sizeof out->archived_through, err,
                        errlen);
    if (rv != FRESH_OK) return rv;
    stream_backlog b;
    if (stream_group_backlog(rc, KEYS_STREAM, KEYS_GROUP, &b))
        return log_fail(FRESH_UNAVAILABLE, err, errlen, "Redis unavailable: %s", rconn_error(rc));
    out->has_backlog = b.found;
    out->backlog = b.lag + b.pending;
    return FRESH_OK;
}

/* One GET of partition p's key through the cluster layer, checked as
 * get_shaped does; out keeps the greater of its value and what it held
 * (both have a fixed-width shape, so text order is time order). */
static int get_greatest(tier *t, int p, const char *key, int day, char *out, size_t n, char *err, size_t errlen)
{
    redisReply *r = rcluster_cmd(t->cl, t->parts[p].slot, "GET %s", key);
    if (!r)
        return log_fail(FRESH_UNAVAILABLE, err, errlen, "Redis partition %d of %d (%s) unavailable: %s", p, t->n,
                        t->parts[p].tag, rcluster_error(t->cl));
    int rv = FRESH_OK;
    int64_t v;
    if (r->type == REDIS_REPLY_STRING) {
        int ok = day ? r->len == TS_DAY_LEN && !ts_parse_day(r->str, r->len, &v)
                     : r->len == TS_ISO_LEN && !ts_parse(r->str, r->len, &v);
        if (!ok || r->len >= n)
            rv = log_fail(FRESH_CORRUPT, err, errlen, "corrupt data: %s is not a %s", key, day ? "day" : "UTC time");
        else if (strcmp(r->str, out) > 0)
            memcpy(out, r->str, r->len + 1);
    } else if (r->type == REDIS_REPLY_ERROR) {
        rv = log_fail(FRESH_UNAVAILABLE, err, errlen, "Redis partition %d of %d (%s) unavailable: %s", p, t->n,
                      t->parts[p].tag, r->str);
    } else if (r->type != REDIS_REPLY_NIL) {
        rv = log_fail(FRESH_CORRUPT, err, errlen, "corrupt data: %s is not a string", key);
    }
    freeReplyObject(r);
    return rv;
}

int freshness_read_tier(tier *t, freshness *out, char *err, size_t errlen)
{
    if (!t->tagged) {
        rconn *rc = tier_conn(t, 0);
        if (!rc) return log_fail(FRESH_UNAVAILABLE, err, errlen, "Redis unavailable: %s", rcluster_error(t->cl));
        return freshness_read(rc, out, err, errlen);
    }
    memset(out, 0, sizeof *out);
    for (int p = 0; p < t->n; p++) {
        const keys_part *k = &t->parts[p];
        int rv = get_greatest(t, p, k->clock, 0, out->newest_event, sizeof out->newest_event, err, errlen);
        if (rv == FRESH_OK)
            rv = get_greatest(t, p, k->archived_through, 1, out->archived_through, sizeof out->archived_through, err,
                              errlen);
        if (rv != FRESH_OK) return rv;
        /* the GETs above went where the slot is served (redirections followed, the map refreshed) */
        rconn *rc = tier_conn(t, p);
        stream_backlog b;
        if (!rc || stream_group_backlog(rc, k->stream, KEYS_GROUP, &b))
            return log_fail(FRESH_UNAVAILABLE, err, errlen, "Redis partition %d of %d (%s) unavailable: %s", p, t->n,
                            k->tag, rc ? rconn_error(rc) : rcluster_error(t->cl));
        if (b.found) {
            out->has_backlog = 1;
            out->backlog += b.lag + b.pending;
        }
    }
    return FRESH_OK;
}

static const char *quoted(const char *s, char *buf, size_t n)
{
    if (!*s) return "null";
    snprintf(buf, n, "\"%s\"", s);
    return buf;
}

size_t freshness_json(const freshness *f, int max_range_days, char *buf, size_t n)
{
    char ev[TS_ISO_LEN + 3], day[TS_DAY_LEN + 3], th[TS_DAY_LEN + 3], backlog[24] = "null";
    char newest_day[TS_DAY_LEN + 1] = "";
    if (f->newest_event[0]) snprintf(newest_day, sizeof newest_day, "%.10s", f->newest_event);
    if (f->has_backlog) snprintf(backlog, sizeof backlog, "%" PRId64, f->backlog);
    int w = snprintf(buf, n,
                     "{\"newest_event\":%s,\"newest_day\":%s,\"archived_through\":%s,\"backlog\":%s,"
                     "\"max_range_days\":%d}",
                     quoted(f->newest_event, ev, sizeof ev), quoted(newest_day, day, sizeof day),
                     quoted(f->archived_through, th, sizeof th), backlog, max_range_days);
    return w < 0 || (size_t)w >= n ? 0 : (size_t)w;
}
