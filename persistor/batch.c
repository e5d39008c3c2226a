/*
 * batch — ids, records and eligibility of archive batches.
 *
 * An id is "<seq>-f<fence>": seq from INCR system:archive:seq, zero-padded to
 * 12 digits so ids sort by creation; fence is the lease acquisition that froze
 * the batch.  The record archive:batch:{id} (written only by freeze.lua and
 * mark_written.lua) is the contract the API reads:
 *   days     comma-separated YYYY-MM-DD, ascending
 *   fence    the freezing holder's fence
 *   state    frozen | written
 *   created  UTC ISO time of the freeze
 *
 * Eligibility: boundary = day(system:virtual_clock) − RETENTION_DAYS; a day in
 * system:tracked_days is eligible when it is ≤ the boundary (the boundary day
 * itself is archived, the day after stays hot).  The clock never moves back,
 * so a day once eligible stays eligible.  Members of tracked_days that are not
 * YYYY-MM-DD are skipped and reported (once per change of their count).
 */
#include "batch.h"
#include "keys.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int batch_make_id(char *out, size_t n, int64_t seq, int64_t fence)
{
    int len = snprintf(out, n, "%012" PRId64 "-f%" PRId64, seq, fence);
    return len > 0 && (size_t)len < n ? 0 : -1;
}

int64_t batch_id_fence(const char *id)
{
    const char *f = strstr(id, "-f");
    if (!f || !f[2]) return -1;
    char *end;
    long long v = strtoll(f + 2, &end, 10);
    return *end || v <= 0 ? -1 : (int64_t)v;
}

void batch_rec_free(batch_rec *b)
{
    free(b->days);
    b->days = NULL;
    b->ndays = 0;
}

static int valid_day(const char *s, size_t len)
{
    int64_t d;
    return len == TS_DAY_LEN && ts_parse_day(s, len, &d) == 0;
}

/* Split "d1,d2,..." into b->days; 0, or -1 when malformed or not ascending. */
static int parse_days(batch_rec *b, const char *s, size_t len)
{
    int cap = (int)(len / (TS_DAY_LEN + 1)) + 1;
    b->days = calloc((size_t)cap, sizeof *b->days);
    if (!b->days) return -1;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',') j++;
        if (b->ndays >= cap || !valid_day(s + i, j - i)) return -1;
        memcpy(b->days[b->ndays], s + i, TS_DAY_LEN);
        b->days[b->ndays][TS_DAY_LEN] = '\0';
        if (b->ndays > 0 && strcmp(b->days[b->ndays - 1], b->days[b->ndays]) >= 0) return -1;
        b->ndays++;
        i = j + 1;
    }
    return b->ndays > 0 ? 0 : -1;
}

int batch_load(persistor *p, const char *id, batch_rec *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%s", id);
    char key[128];
    if (!keys_batch(key, sizeof key, id)) return PST_EDATA;
    redisReply *r = rconn_cmd(p->rc, "HMGET %s days fence state", key);
    if (!r) return PST_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        freeReplyObject(r);
        return PST_EREDIS;
    }
    redisReply *days = r->element[0], *fence = r->element[1], *state = r->element[2];
    int rv = PST_OK;
    if (days->type == REDIS_REPLY_NIL && fence->type == REDIS_REPLY_NIL && state->type == REDIS_REPLY_NIL) {
        rv = PST_NONE;
    } else if (days->type != REDIS_REPLY_STRING || state->type != REDIS_REPLY_STRING ||
               parse_days(b, days->str, days->len) != 0) {
        rv = PST_EDATA;
    } else if (!strcmp(state->str, "frozen")) {
        b->written = 0;
    } else if (!strcmp(state->str, "written")) {
        b->written = 1;
    } else {
        rv = PST_EDATA;
    }
    if (rv == PST_OK) b->fence = fence->type == REDIS_REPLY_STRING ? strtoll(fence->str, NULL, 10) : 0;
    if (rv == PST_EDATA) log_error("malformed archive batch record", "key=%s", key);
    freeReplyObject(r);
    if (rv != PST_OK) batch_rec_free(b);
    return rv;
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

int batch_pending(persistor *p, char (**ids)[PST_ID_MAX], int *n)
{
    *ids = NULL;
    *n = 0;
    redisReply *r = rconn_cmd(p->rc, "SMEMBERS %s", KEYS_ARCHIVE_PENDING);
    if (!r) return PST_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return PST_EREDIS;
    }
    if (r->elements > 0) {
        *ids = calloc(r->elements, sizeof **ids);
        if (!*ids) {
            freeReplyObject(r);
            return PST_EREDIS;
        }
    }
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len >= PST_ID_MAX) {
            log_error("malformed pending archive batch id", "set=%s", KEYS_ARCHIVE_PENDING);
            continue;
        }
        memcpy((*ids)[*n], e->str, e->len + 1);
        (*n)++;
    }
    freeReplyObject(r);
    if (*n > 1) qsort(*ids, (size_t)*n, sizeof **ids, cmp_id);
    return PST_OK;
}

int batch_boundary(persistor *p, int64_t *boundary)
{
    redisReply *r = rconn_cmd(p->rc, "GET %s", KEYS_VIRTUAL_CLOCK);
    if (!r) return PST_EREDIS;
    int rv;
    int64_t epoch;
    if (r->type == REDIS_REPLY_NIL) {
        rv = PST_NONE;
    } else if (r->type == REDIS_REPLY_STRING && ts_parse(r->str, r->len, &epoch) == 0) {
        *boundary = ts_day_of(epoch) - p->cfg.retention_days;
        rv = PST_OK;
    } else {
        char q[128];
        log_error("virtual clock unreadable, nothing archived", "key=%s value=%s", KEYS_VIRTUAL_CLOCK,
                  log_q(q, sizeof q, r->type == REDIS_REPLY_STRING ? r->str : "(not a string)"));
        rv = PST_EDATA;
    }
    freeReplyObject(r);
    return rv;
}

static int cmp_day(const void *a, const void *b) { return strcmp(a, b); }

int batch_eligible_days(persistor *p, const char *after, pst_day *days, int max, int *n)
{
    *n = 0;
    int64_t boundary;
    int rv = batch_boundary(p, &boundary);
    if (rv != PST_OK) return rv;
    redisReply *r = rconn_cmd(p->rc, "SMEMBERS %s", KEYS_TRACKED_DAYS);
    if (!r) return PST_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return PST_EREDIS;
    }
    /* Keep the max oldest eligible days: collect all, sort, cut. */
    pst_day *all = r->elements ? calloc(r->elements, sizeof *all) : NULL;
    if (r->elements && !all) {
        freeReplyObject(r);
        return PST_EREDIS;
    }
    int nall = 0, invalid = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        int64_t d;
        if (e->type != REDIS_REPLY_STRING || e->len != TS_DAY_LEN || ts_parse_day(e->str, e->len, &d) != 0) {
            invalid++;
            continue;
        }
        if (d > boundary || strcmp(e->str, after) <= 0) continue;
        memcpy(all[nall], e->str, TS_DAY_LEN + 1);
        nall++;
    }
    freeReplyObject(r);
    if (invalid != p->invalid_tracked) {
        if (invalid) log_warn("tracked days hold members that are not YYYY-MM-DD; skipped", "set=%s count=%d",
                              KEYS_TRACKED_DAYS, invalid);
        p->invalid_tracked = invalid;
    }
    if (nall > 1) qsort(all, (size_t)nall, sizeof *all, cmp_day);
    *n = nall < max ? nall : max;
    if (*n) memcpy(days, all, sizeof *all * (size_t)*n);
    free(all);
    return *n ? PST_OK : PST_NONE;
}
