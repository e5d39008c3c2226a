/*
 * stats — the consistent merge of the hot, frozen and cold tiers; see
 * stats.h for the algorithm and why it is exact.
 *
 * Invariants: the snapshot reply stays alive until the merge is done (frozen
 * records point into it); a cold view is stored in the cache only after the
 * version read again equals the snapshot's; stored data that cannot have
 * been written by txagg (a method outside the rule, a non-integer amount, a
 * malformed day) fails the request with STATS_INTERNAL naming the key or
 * document — an answer is exact or it is an error, never a silent guess.
 */
#include "stats.h"

#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "mongo.h"
#include "timeparse.h"
#include "txn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char lua_api_snapshot[];

/* Per-thread buffers above this size are freed after the request. */
#define KEEP_BYTES (256u * 1024u)

static metric *m_retries, *m_exhausted, *m_hits, *m_misses, *m_mongo_reads;

static void (*after_cold_read)(void *);
static void *after_cold_read_arg;

static void register_metrics(void)
{
    m_retries = metrics_counter("txagg_api_consistency_retries_total",
                                "Snapshots read again because the archive version moved during a MongoDB read", NULL);
    m_exhausted = metrics_counter("txagg_api_consistency_exhausted_total",
                                  "Requests answered 503 because the archive kept moving", NULL);
    m_hits = metrics_counter("txagg_api_cold_cache_hits_total", "Cold ranges answered from the cold cache", NULL);
    m_misses = metrics_counter("txagg_api_cold_cache_misses_total", "Cold ranges that needed a MongoDB read", NULL);
    m_mongo_reads = metrics_counter("txagg_api_mongo_reads_total", "MongoDB range reads of day documents", NULL);
}

void stats_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_metrics);
    snapshot_init();
}

void stats_mongo_state(int up, const char *detail)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static log_state state;
    pthread_mutex_lock(&lock);
    log_state_report(&state, "mongodb", up, detail);
    pthread_mutex_unlock(&lock);
}

void stats_set_after_cold_read_hook(void (*fn)(void *), void *arg)
{
    after_cold_read = fn;
    after_cold_read_arg = arg;
}

int stats_scratch_init(stats_scratch *s)
{
    memset(s, 0, sizeof *s);
    s->lua = (rscript)RSCRIPT_INIT("snapshot", lua_api_snapshot);
    s->hint = snap_hint_new();
    return s->hint ? 0 : -1;
}

void stats_scratch_free(stats_scratch *s)
{
    rec_vec_free(&s->recs);
    cold_view_free(&s->cold);
    frozen_vec_free(&s->frozen);
    snap_hint_free(s->hint);
    free(s->body);
    memset(s, 0, sizeof *s);
}

void stats_scratch_trim(stats_scratch *s)
{
    rec_vec_trim(&s->recs, KEEP_BYTES);
    cold_view_trim(&s->cold, KEEP_BYTES);
    frozen_vec_trim(&s->frozen, KEEP_BYTES);
    if (s->bcap > KEEP_BYTES) {
        free(s->body);
        s->body = NULL;
        s->bcap = 0;
    }
}

/* ---- MongoDB (step b) ----------------------------------------------------- */

static int cmp_doc(const void *a, const void *b)
{
    const cold_doc *x = a, *y = b;
    return (x->day > y->day) - (x->day < y->day);
}

static int parse_doc(const bson_t *doc, int32_t from, int32_t to, cold_view *cv, char *err, size_t errlen)
{
    bson_iter_t it, sub;
    uint32_t dlen = 0;
    if (!bson_iter_init_find(&it, doc, "date") || !BSON_ITER_HOLDS_UTF8(&it))
        return log_fail(-1, err, errlen, "corrupt data: a MongoDB day document has no date string");
    const char *date = bson_iter_utf8(&it, &dlen);
    int64_t day;
    if (ts_parse_day(date, dlen, &day)) return log_fail(-1, err, errlen, "corrupt data: MongoDB date is not a day");
    if (day < from || day > to) return 0; /* the filter says it cannot happen */
    if (cold_view_push_doc(cv, (int32_t)day)) return log_fail(-1, err, errlen, "out of memory");
    cold_doc *d = &cv->docs[cv->ndocs - 1];
    for (int type = 0; type < TXN_TYPES; type++) {
        const char *side = txn_type_plural(type);
        if (!bson_iter_init_find(&it, doc, side)) continue; /* either side may be absent */
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub))
            return log_fail(-1, err, errlen, "corrupt data: MongoDB %s.%s is not a document", date, side);
        while (bson_iter_next(&sub)) {
            const char *m = bson_iter_key(&sub);
            size_t mlen = strlen(m);
            int64_t cents;
            if (BSON_ITER_HOLDS_INT64(&sub)) cents = bson_iter_int64(&sub);
            else if (BSON_ITER_HOLDS_INT32(&sub)) cents = bson_iter_int32(&sub);
            else
                return log_fail(-1, err, errlen, "corrupt data: MongoDB %s.%s.%.40s is not integer cents", date, side, m);
            if (!rec_method_ok(m, mlen))
                return log_fail(-1, err, errlen, "corrupt data: MongoDB %s.%s has a field that is not a payment method",
                            date, side);
            rec *r = rec_push(&cv->items);
            if (!r) return log_fail(-1, err, errlen, "out of memory");
            r->day = (int32_t)day;
            r->type = (uint8_t)type;
            r->mlen = (uint8_t)mlen;
            memcpy(r->method, m, mlen + 1);
            r->cents = cents;
            d->nitems++;
        }
    }
    if (bson_iter_init_find(&it, doc, "batches")) {
        if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &sub))
            return log_fail(-1, err, errlen, "corrupt data: MongoDB %s.batches is not an array", date);
        while (bson_iter_next(&sub)) {
            uint32_t blen;
            if (!BSON_ITER_HOLDS_UTF8(&sub))
                return log_fail(-1, err, errlen, "corrupt data: MongoDB %s.batches holds a non-string", date);
            const char *b = bson_iter_utf8(&sub, &blen);
            if (cold_view_push_batch(cv, b, blen)) return log_fail(-1, err, errlen, "out of memory");
        }
    }
    return 0;
}

/* Read the documents of [from, to] into cv (sorted by day). */
static int read_cold(const stats_env *env, int32_t from, int32_t to, cold_view *cv, char *err, size_t errlen)
{
    char a[TS_DAY_LEN + 1], b[TS_DAY_LEN + 1];
    ts_format_day(from, a);
    ts_format_day(to, b);
    metrics_inc(m_mongo_reads);
    mongoc_client_t *client = mongoc_client_pool_pop(env->pool);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, env->database, env->collection);
    bson_t *filter = BCON_NEW("date", "{", "$gte", BCON_UTF8(a), "$lte", BCON_UTF8(b), "}");
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "date", BCON_INT32(1), "deposits",
                            BCON_INT32(1), "withdrawals", BCON_INT32(1), "batches", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    int rc = STATS_OK;
    while (rc == STATS_OK && mongoc_cursor_next(cur, &doc))
        if (parse_doc(doc, from, to, cv, err, errlen)) rc = STATS_INTERNAL;
    bson_error_t e;
    if (rc == STATS_OK && mongoc_cursor_error(cur, &e)) {
        mongo_count_error();
        stats_mongo_state(0, e.message);
        rc = log_fail(STATS_UNAVAILABLE, err, errlen, "MongoDB unavailable: %s", e.message);
    } else if (rc == STATS_OK) {
        stats_mongo_state(1, NULL);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    mongoc_client_pool_push(env->pool, client);
    if (rc != STATS_OK) return rc;
    if (cv->ndocs > 1) qsort(cv->docs, cv->ndocs, sizeof *cv->docs, cmp_doc);
    for (size_t i = 1; i < cv->ndocs; i++)
        if (cv->docs[i].day == cv->docs[i - 1].day) {
            char d[TS_DAY_LEN + 1];
            ts_format_day(cv->docs[i].day, d);
            return log_fail(STATS_INTERNAL, err, errlen, "corrupt data: two MongoDB documents for %s", d);
        }
    return STATS_OK;
}

/* ---- merge and print (step d) ---------------------------------------------- */

static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->day != y->day) return x->day < y->day ? -1 : 1;
    if (x->type != y->type) return x->type < y->type ? -1 : 1;
    return strcmp(x->method, y->method);
}

static int body_put(stats_scratch *s, const char *p, size_t n)
{
    if (s->blen + n + 1 > s->bcap) {
        size_t nc = s->bcap ? s->bcap : 4096;
        while (nc < s->blen + n + 1) nc *= 2;
        char *np = realloc(s->body, nc);
        if (!np) return -1;
        s->body = np;
        s->bcap = nc;
    }
    memcpy(s->body + s->blen, p, n);
    s->blen += n;
    s->body[s->blen] = '\0';
    return 0;
}
#define PUT_LIT(s, lit) body_put((s), (lit), sizeof(lit) - 1)

/* Sort, sum equal (day, type, method) and print the body. */
static int render(stats_scratch *s, char *err, size_t errlen)
{
    rec *v = s->recs.v;
    size_t n = s->recs.n;
    if (n > 1) qsort(v, n, sizeof *v, cmp_rec);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w && !cmp_rec(&v[w - 1], &v[i])) {
            if (__builtin_add_overflow(v[w - 1].cents, v[i].cents, &v[w - 1].cents)) {
                char d[TS_DAY_LEN + 1];
                ts_format_day(v[i].day, d);
                return log_fail(STATS_INTERNAL, err, errlen, "amount overflow on %s %s", d, v[i].method);
            }
        } else {
            v[w++] = v[i];
        }
    }
    n = w;

    int bad = 0;
    s->blen = 0;
    bad |= PUT_LIT(s, "{\"data\":{");
    for (size_t i = 0; i < n && !bad;) {
        int32_t day = v[i].day;
        char dbuf[TS_DAY_LEN + 1];
        ts_format_day(day, dbuf);
        bad |= body_put(s, i ? ",\"" : "\"", i ? 2 : 1);
        bad |= body_put(s, dbuf, TS_DAY_LEN);
        bad |= PUT_LIT(s, "\":{");
        for (int type = 0; type < TXN_TYPES; type++) {
            bad |= PUT_LIT(s, "\"");
            bad |= body_put(s, txn_type_plural(type), strlen(txn_type_plural(type)));
            bad |= PUT_LIT(s, "\":{");
            int first = 1;
            for (; i < n && v[i].day == day && v[i].type == type; i++) {
                char amt[MONEY_FMT_MAX];
                size_t alen = money_format(v[i].cents, amt, sizeof amt);
                bad |= body_put(s, first ? "\"" : ",\"", first ? 1 : 2);
                bad |= body_put(s, v[i].method, v[i].mlen); /* [a-z0-9_-]: nothing to escape */
                bad |= PUT_LIT(s, "\":");
                bad |= body_put(s, amt, alen);
                first = 0;
            }
            bad |= type + 1 < TXN_TYPES ? PUT_LIT(s, "},") : PUT_LIT(s, "}");
        }
        bad |= PUT_LIT(s, "}");
    }
    bad |= PUT_LIT(s, "}}");
    return bad ? log_fail(STATS_INTERNAL, err, errlen, "out of memory") : STATS_OK;
}

/* Step d: cold documents and the frozen hashes their batches do not cover. */
static int merge_tiers(stats_scratch *s, const snapshot *snap, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->cold.items.n; i++) {
        rec *r = rec_push(&s->recs);
        if (!r) return log_fail(STATS_INTERNAL, err, errlen, "out of memory");
        *r = s->cold.items.v[i];
    }
    for (size_t i = 0; i < s->frozen.n; i++) {
        const frozen_rec *f = &s->frozen.v[i];
        if (snap->has_through && f->r.day <= snap->through) {
            const cold_doc *d = cold_view_find(&s->cold, f->r.day);
            if (d && cold_doc_has_batch(&s->cold, d, f->batch, f->blen)) continue; /* already in MongoDB */
        }
        rec *r = rec_push(&s->recs);
        if (!r) return log_fail(STATS_INTERNAL, err, errlen, "out of memory");
        *r = f->r;
    }
    return STATS_OK;
}

/* ---- one request ------------------------------------------------------------ */

/* GET the version again: 0 and *same set, or a status. */
static int version_unchanged(rconn *rc, uint64_t version, int *same, char *err, size_t errlen)
{
    redisReply *r = rconn_cmd(rc, "GET %s", KEYS_ARCHIVE_VERSION);
    int rv = STATS_OK;
    uint64_t now = 0;
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL))
        rv = snapshot_redis_failure(rc, r, err, errlen) == SNAP_UNAVAILABLE ? STATS_UNAVAILABLE : STATS_INTERNAL;
    else if (snapshot_parse_version(r, &now))
        rv = log_fail(STATS_INTERNAL, err, errlen, "corrupt data: %s is not a counter", KEYS_ARCHIVE_VERSION);
    if (r) freeReplyObject(r);
    *same = rv == STATS_OK && now == version;
    return rv;
}

static int attempt(const stats_env *env, rconn *rc, stats_scratch *s, int32_t from, int32_t to, int *moved,
                   char *err, size_t errlen)
{
    *moved = 0;
    s->recs.n = 0;
    s->frozen.n = 0;
    cold_view_reset(&s->cold);
    snapshot snap;
    int rv = snapshot_read(rc, &s->lua, s->hint, from, to, &snap, &s->recs, &s->frozen, err, errlen);
    if (rv != SNAP_OK) {
        snapshot_release(&snap);
        return rv == SNAP_UNAVAILABLE ? STATS_UNAVAILABLE : STATS_INTERNAL;
    }
    if (snap.has_through && snap.through >= from) {
        int32_t cold_to = snap.through < to ? snap.through : to;
        if (env->cache && cold_cache_lookup(env->cache, snap.version, from, cold_to, &s->cold)) {
            metrics_inc(m_hits);
        } else {
            metrics_inc(m_misses);
            rv = read_cold(env, from, cold_to, &s->cold, err, errlen);
            if (rv == STATS_OK && after_cold_read) after_cold_read(after_cold_read_arg);
            int same = 0;
            if (rv == STATS_OK) rv = version_unchanged(rc, snap.version, &same, err, errlen);
            if (rv == STATS_OK && !same) *moved = 1;
            if (rv == STATS_OK && same && env->cache)
                cold_cache_store(env->cache, snap.version, from, cold_to, &s->cold);
        }
    }
    if (rv == STATS_OK && !*moved) rv = merge_tiers(s, &snap, err, errlen);
    if (rv == STATS_OK && !*moved) rv = render(s, err, errlen);
    snapshot_release(&snap); /* frozen records pointed into it until here */
    return rv;
}

int stats_answer(const stats_env *env, rconn *rc, stats_scratch *s, int32_t from_day, int32_t to_day, char *err,
                 size_t errlen)
{
    int attempts = env->max_attempts > 0 ? env->max_attempts : 1;
    for (int n = 0; n < attempts; n++) {
        int moved;
        int rv = attempt(env, rc, s, from_day, to_day, &moved, err, errlen);
        if (rv != STATS_OK) return rv;
        if (!moved) return STATS_OK;
        if (n + 1 < attempts) metrics_inc(m_retries);
    }
    metrics_inc(m_exhausted);
    return log_fail(STATS_BUSY, err, errlen,
                "the archive moved to MongoDB during %d consecutive reads; retry the request", attempts);
}
