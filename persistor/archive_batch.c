/*
 * archive_batch — ids, records and eligibility of archive batches.
 *
 * An id is "<seq>-f<fence>": seq from INCR system:archive:seq, zero-padded to
 * 12 digits so ids sort by creation; fence is the lease acquisition that froze
 * the batch.  Partitioned (tagged), each partition has its own seq, so the id
 * ends with "p<partition>" ("000000000017-f7p3"): unique across partitions,
 * which the MongoDB guard `batches: {$ne: B}` needs — a day's document gets
 * one batch per partition that held the day.  The record archive:batch:{id} (written only by freeze.lua and
 * mark_written.lua) is the contract the API reads:
 *   days     comma-separated YYYY-MM-DD, ascending
 *   fence    the freezing holder's fence (a positive integer; a record with
 *            anything else there is malformed, not read as a number)
 *   state    frozen | written
 *   created  UTC ISO time of the freeze
 *
 * Eligibility: boundary = day(system:virtual_clock) − RETENTION_DAYS (the
 * greatest clock over all partitions: the system's event time, which one
 * partition's rows alone may lag); a day in the current partition's
 * system:tracked_days is eligible when it is ≤ the boundary (the boundary day
 * itself is archived, the day after stays hot).  The clock never moves back,
 * so a day once eligible stays eligible.  Members of tracked_days that are not
 * YYYY-MM-DD are skipped and reported (once per change of their count).
 */
#include "archive_batch.h"
#include "keys.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int archive_batch_make_id(char *out, size_t n, int64_t seq, int64_t fence, int part)
{
    int len = part < 0 ? snprintf(out, n, "%012" PRId64 "-f%" PRId64, seq, fence)
                       : snprintf(out, n, "%012" PRId64 "-f%" PRId64 "p%d", seq, fence, part);
    return len > 0 && (size_t)len < n ? 0 : -1;
}

/* A fence as written: s[0..len) is a decimal integer 1..INT64_MAX, nothing
 * else (no sign, no blank, no overflow).  0, or -1. */
static int parse_fence(const char *s, size_t len, int64_t *out)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf || s[0] < '0' || s[0] > '9') return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v <= 0) return -1;
    *out = (int64_t)v;
    return 0;
}

#ifdef TXAGG_TESTING
int64_t archive_batch_id_fence(const char *id)
{
    const char *f = strstr(id, "-f");
    int64_t v;
    if (!f) return -1;
    const char *part = strchr(f + 2, 'p'); /* tagged: "…-f7p3" */
    return parse_fence(f + 2, part ? (size_t)(part - f - 2) : strlen(f + 2), &v) == 0 ? v : -1;
}
#endif

void archive_batch_free(archive_batch *b)
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
static int parse_days(archive_batch *b, const char *s, size_t len)
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

int archive_batch_load(persistor *p, const char *id, archive_batch *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%s", id);
    char key[128];
    if (!keys_batch(key, sizeof key, persistor_part(p), id)) return PST_EDATA;
    redisReply *r = persistor_cmd(p, "HMGET %s days fence state", key);
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
               fence->type != REDIS_REPLY_STRING || parse_fence(fence->str, fence->len, &b->fence) != 0 ||
               parse_days(b, days->str, days->len) != 0) {
        rv = PST_EDATA;
    } else if (!strcmp(state->str, "frozen")) {
        b->written = 0;
    } else if (!strcmp(state->str, "written")) {
        b->written = 1;
    } else {
        rv = PST_EDATA;
    }
    if (rv == PST_EDATA) log_error("malformed archive batch record", "key=%s", key);
    freeReplyObject(r);
    if (rv != PST_OK) archive_batch_free(b);
    return rv;
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

int archive_batch_pending(persistor *p, char (**ids)[PST_ID_MAX], int *n)
{
    *ids = NULL;
    *n = 0;
    const char *set = persistor_part(p)->archive_pending;
    redisReply *r = persistor_cmd(p, "SMEMBERS %s", set);
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
            log_error("malformed pending archive batch id", "set=%s", set);
            continue;
        }
        memcpy((*ids)[*n], e->str, e->len + 1);
        (*n)++;
    }
    freeReplyObject(r);
    if (*n > 1) qsort(*ids, (size_t)*n, sizeof **ids, cmp_id);
    return PST_OK;
}

/* The virtual clock as epoch seconds: the greatest over all partitions
 * (each partition's clock is the greatest event time applied in it).
 * PST_OK, PST_NONE (no partition has one), PST_EREDIS (any partition
 * unreadable: no boundary from part of the tier) or PST_EDATA (a clock
 * unreadable; its key in *badkey, its text in bad). */
static int read_clock(persistor *p, int64_t *epoch, const char **badkey, char *bad, size_t badlen)
{
    int rv = PST_NONE;
    for (int i = 0; i < p->t.n; i++) {
        const keys_part *part = &p->t.parts[i];
        redisReply *r = rcluster_cmd(p->t.cl, part->slot, "GET %s", part->clock);
        if (!r) return PST_EREDIS;
        int64_t e;
        if (r->type == REDIS_REPLY_NIL) {
            /* no clock in this partition yet */
        } else if (r->type != REDIS_REPLY_STRING || ts_parse(r->str, r->len, &e) != 0) {
            *badkey = part->clock;
            snprintf(bad, badlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "(not a string)");
            int err = rcluster_classify(r, NULL) != RCLUSTER_REPLY; /* the cluster refused: retries ran out */
            freeReplyObject(r);
            return err ? PST_EREDIS : PST_EDATA;
        } else if (rv == PST_NONE || e > *epoch) {
            *epoch = e;
            rv = PST_OK;
        }
        freeReplyObject(r);
    }
    return rv;
}

int archive_batch_boundary(persistor *p, int64_t *boundary)
{
    int64_t epoch;
    char bad[100], q[128];
    const char *key = "";
    int rv = read_clock(p, &epoch, &key, bad, sizeof bad);
    if (rv == PST_OK) *boundary = ts_day_of(epoch) - p->cfg.retention_days;
    if (rv == PST_EDATA)
        log_error("virtual clock unreadable, nothing archived", "key=%s value=%s", key, log_q(q, sizeof q, bad));
    return rv;
}

/* A member of tracked_days as a day number; -1 when it is not YYYY-MM-DD. */
static int tracked_day(const redisReply *e, int64_t *day)
{
    return e->type == REDIS_REPLY_STRING && e->len == TS_DAY_LEN && ts_parse_day(e->str, e->len, day) == 0 ? 0 : -1;
}

int archive_batch_hot_age(persistor *p, int64_t *age_s)
{
    *age_s = 0;
    int64_t epoch;
    char bad[100];
    const char *key;
    int rv = read_clock(p, &epoch, &key, bad, sizeof bad);
    if (rv == PST_EREDIS) return rv;
    if (rv != PST_OK) return PST_OK; /* no usable clock: nothing is due (the cycle logs it) */
    int64_t oldest = INT64_MAX, d;
    for (int k = 0; k < p->t.n; k++) { /* the oldest day of any partition */
        const keys_part *part = &p->t.parts[k];
        redisReply *r = rcluster_cmd(p->t.cl, part->slot, "SMEMBERS %s", part->tracked);
        if (!r) return PST_EREDIS;
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
            if (tracked_day(r->element[i], &d) == 0 && d < oldest) oldest = d;
        freeReplyObject(r);
    }
    if (oldest != INT64_MAX && epoch > oldest * 86400) *age_s = epoch - oldest * 86400;
    return PST_OK;
}

static int cmp_day(const void *a, const void *b) { return strcmp(a, b); }

int archive_batch_eligible_days(persistor *p, const char *after, pst_day *days, int max, int *n)
{
    *n = 0;
    int64_t boundary;
    int rv = archive_batch_boundary(p, &boundary);
    if (rv != PST_OK) return rv;
    const char *set = persistor_part(p)->tracked;
    redisReply *r = persistor_cmd(p, "SMEMBERS %s", set);
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
        if (tracked_day(e, &d) != 0) {
            invalid++;
            continue;
        }
        if (d > boundary || strcmp(e->str, after) <= 0) continue;
        memcpy(all[nall], e->str, TS_DAY_LEN + 1);
        nall++;
    }
    freeReplyObject(r);
    if (invalid != p->invalid_tracked[p->cur]) {
        if (invalid)
            log_warn("tracked days hold members that are not YYYY-MM-DD; skipped", "set=%s count=%d", set, invalid);
        p->invalid_tracked[p->cur] = invalid;
    }
    if (nall > 1) qsort(all, (size_t)nall, sizeof *all, cmp_day);
    *n = nall < max ? nall : max;
    if (*n) memcpy(days, all, sizeof *all * (size_t)*n);
    free(all);
    return *n ? PST_OK : PST_NONE;
}
