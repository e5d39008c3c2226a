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

#include "dynbuf.h"
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

static metric *m_retries, *m_exhausted, *m_hits, *m_misses, *m_mongo_reads, *m_answers;

#ifdef TXAGG_TESTING
static void (*after_cold_read)(void *);
static void *after_cold_read_arg;

void stats_set_after_cold_read_hook(void (*fn)(void *), void *arg)
{
    after_cold_read = fn;
    after_cold_read_arg = arg;
}

static void run_after_cold_read_hook(void)
{
    if (after_cold_read) after_cold_read(after_cold_read_arg);
}
#else
#define run_after_cold_read_hook() ((void)0)
#endif

static void register_metrics(void)
{
    m_retries = metrics_counter("txagg_api_consistency_retries_total",
                                "Snapshots read again because the archive version moved during a MongoDB read", NULL);
    m_exhausted = metrics_counter("txagg_api_consistency_exhausted_total",
                                  "Requests answered 503 because the archive kept moving", NULL);
    m_hits = metrics_counter("txagg_api_cold_cache_hits_total", "Cold ranges answered from the cold cache", NULL);
    m_misses = metrics_counter("txagg_api_cold_cache_misses_total",
                               "Cold ranges that needed a MongoDB read (one per range and archive version however "
                               "many requests wait for it)",
                               NULL);
    m_answers = metrics_counter("txagg_api_snapshots_total", "Redis snapshots of /stats, by how they were read",
                                "path=\"answer_cache\"");
    m_mongo_reads = metrics_counter("txagg_api_mongo_reads_total", "MongoDB range reads of day documents", NULL);
}

void stats_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_metrics);
    snapshot_init();
}

void stats_mongo_state(int up, const char *detail) { mongo_report_state("mongodb", up, detail); }

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
    free(s->snaps);
    free(s->vers);
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
    mongo_read_majority(opts); /* never serve a document a failover could roll back */
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
    if (dynbuf_reserve_array(&s->body, &s->bcap, s->blen + n + 1, 1, REC_BUF_MAX)) return -1;
    memcpy(s->body + s->blen, p, n);
    s->blen += n;
    s->body[s->blen] = '\0';
    return 0;
}
#define PUT_LIT(s, lit) body_put((s), (lit), sizeof(lit) - 1)

/* v[0..n) sorted and summed as CSV: the header, then date,type,method,amount
 * lines; methods are [a-z0-9_-], so nothing needs quoting. */
static int print_csv(stats_scratch *s, const rec *v, size_t n)
{
    int bad = PUT_LIT(s, "date,type,method,amount\r\n");
    for (size_t i = 0; i < n && !bad; i++) {
        char dbuf[TS_DAY_LEN + 1], amt[MONEY_FMT_MAX + 1];
        ts_format_day(v[i].day, dbuf);
        size_t alen = money_format(v[i].cents, amt, sizeof amt - 1);
        if (alen >= 2 && amt[alen - 2] == '.') amt[alen++] = '0'; /* "343.4" → "343.40" */
        const char *type = txn_type_name(v[i].type);
        bad |= body_put(s, dbuf, TS_DAY_LEN);
        bad |= PUT_LIT(s, ",");
        bad |= body_put(s, type, strlen(type));
        bad |= PUT_LIT(s, ",");
        bad |= body_put(s, v[i].method, v[i].mlen);
        bad |= PUT_LIT(s, ",");
        bad |= body_put(s, amt, alen);
        bad |= PUT_LIT(s, "\r\n");
    }
    return bad;
}

/* Sort, sum equal (day, type, method) and print the body. */
static int render(stats_scratch *s, enum stats_format fmt, char *err, size_t errlen)
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
    if (fmt == STATS_CSV)
        return print_csv(s, v, n) ? log_fail(STATS_INTERNAL, err, errlen, "out of memory") : STATS_OK;
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

/* Where a request reads Redis: today's one connection (untagged), or the
 * partitions of a tagged tier. */
typedef struct src {
    rconn *rc;
    tier *t;
    const uint64_t *av; /* tagged: the archive versions of this attempt's snapshots */
} src;

/* The Redis history number a cached result is keyed by (see stats.h). */
static uint64_t src_history(const src *x)
{
    return x->t ? rconn_history() + rcluster_map_changes() : rconn_history();
}

/* "partition P of N ({tag})" into buf. */
static const char *part_name(const tier *t, int p, char *buf, size_t n)
{
    snprintf(buf, n, "Redis partition %d of %d (%s)", p, t->n, t->parts[p].tag);
    return buf;
}

/* A failed read of partition p (or of every partition: p < 0) as a status,
 * err naming it. */
static int part_failure(tier *t, int p, const redisReply *r, char *err, size_t errlen)
{
    char e[400], name[64];
    int rv = snapshot_cluster_failure(t->cl, r, e, sizeof e) == SNAP_UNAVAILABLE ? STATS_UNAVAILABLE : STATS_INTERNAL;
    snprintf(err, errlen, "%s: %s", p < 0 ? "Redis partitions" : part_name(t, p, name, sizeof name), e);
    return rv;
}

/* The hot (hv, may be NULL) and archive (av) versions of every partition:
 * one MGET on one Redis; on a cluster one per partition (its slot),
 * pipelined per node. */
static int tier_versions(tier *t, uint64_t *hv, uint64_t *av, char *err, size_t errlen)
{
    int n = t->n, per = hv ? 2 : 1;
    if (!rcluster_is_cluster(t->cl)) {
        const char **argv = malloc(sizeof *argv * (size_t)(1 + per * n));
        if (!argv) return log_fail(STATS_INTERNAL, err, errlen, "out of memory");
        argv[0] = "MGET";
        for (int p = 0; p < n; p++) {
            if (hv) argv[1 + p] = t->parts[p].hot_version;
            argv[1 + (per - 1) * n + p] = t->parts[p].archive_version;
        }
        redisReply *r = rcluster_cmd_argv(t->cl, t->parts[0].slot, 1 + per * n, argv, NULL);
        free(argv);
        int rv = STATS_OK;
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)(per * n)) {
            rv = part_failure(t, -1, r, err, errlen);
        } else {
            for (int i = 0; i < per * n && rv == STATS_OK; i++) {
                int p = i % n, hot = hv && i < n;
                if (snapshot_parse_version(r->element[i], hot ? &hv[p] : &av[p]))
                    rv = log_fail(STATS_INTERNAL, err, errlen, "corrupt data: %s is not a counter",
                                  hot ? t->parts[p].hot_version : t->parts[p].archive_version);
            }
        }
        if (r) freeReplyObject(r);
        return rv;
    }
    /* A cluster: the MGETs pipelined on the connection serving each
     * partition (one round trip per node), read in the order appended; a
     * partition not sent, on a connection that broke, or answered with an
     * error (MOVED, ASK, TRYAGAIN, CLUSTERDOWN…) is read again alone through
     * the cluster layer, which follows them or says why it cannot. */
    redisReply **r = calloc((size_t)n, sizeof *r);
    rconn **sent = calloc((size_t)n, sizeof *sent), **dead = calloc((size_t)n, sizeof *dead);
    int ndead = 0, rv = STATS_OK;
    if (!r || !sent || !dead) rv = log_fail(STATS_INTERNAL, err, errlen, "out of memory");
    for (int p = 0; p < n && rv == STATS_OK; p++) {
        const keys_part *k = &t->parts[p];
        rconn *rc = tier_conn(t, p);
        if (!rc || rconn_ensure(rc) != 0) continue;
        int ok = hv ? redisAppendCommand(rconn_ctx(rc), "MGET %s %s", k->hot_version, k->archive_version)
                    : redisAppendCommand(rconn_ctx(rc), "MGET %s", k->archive_version);
        if (ok == REDIS_OK) sent[p] = rc;
    }
    for (int p = 0; p < n && rv == STATS_OK; p++) {
        if (!sent[p]) continue;
        int broken = 0;
        for (int i = 0; i < ndead; i++) broken |= dead[i] == sent[p];
        if (broken) continue;
        redisContext *c = rconn_ctx(sent[p]);
        void *x = NULL;
        if (!c || redisGetReply(c, &x) != REDIS_OK) {
            rconn_drop(sent[p]);
            dead[ndead++] = sent[p];
            continue;
        }
        r[p] = x;
    }
    for (int p = 0; p < n && rv == STATS_OK; p++) {
        const keys_part *k = &t->parts[p];
        if (!r[p] || r[p]->type == REDIS_REPLY_ERROR) {
            if (r[p]) freeReplyObject(r[p]);
            r[p] = hv ? rcluster_cmd(t->cl, k->slot, "MGET %s %s", k->hot_version, k->archive_version)
                      : rcluster_cmd(t->cl, k->slot, "MGET %s", k->archive_version);
        }
        if (!r[p] || r[p]->type != REDIS_REPLY_ARRAY || r[p]->elements != (size_t)per)
            rv = part_failure(t, p, r[p], err, errlen);
        else if (hv && snapshot_parse_version(r[p]->element[0], &hv[p]))
            rv = log_fail(STATS_INTERNAL, err, errlen, "corrupt data: %s is not a counter", k->hot_version);
        else if (snapshot_parse_version(r[p]->element[per - 1], &av[p]))
            rv = log_fail(STATS_INTERNAL, err, errlen, "corrupt data: %s is not a counter", k->archive_version);
    }
    for (int p = 0; r && p < n; p++)
        if (r[p]) freeReplyObject(r[p]);
    free(r);
    free(sent);
    free(dead);
    return rv;
}

/*
 * Interned version vectors: one id per distinct vector of N counters, from a
 * process-wide sequence that never gives an id twice, so the caches (keyed
 * by one number) see two vectors as equal exactly when they are.  The last
 * INTERN_SLOTS vectors are remembered; a vector forgotten and seen again
 * gets a new id (a cache miss, never a wrong hit).  Ids start at 2^63, far
 * from the raw counters of the untagged mode.
 */
#define INTERN_SLOTS 256
typedef struct interned {
    uint64_t id;
    int n;
    uint64_t *v;
} interned;
static pthread_mutex_t intern_mu = PTHREAD_MUTEX_INITIALIZER;
static interned intern_tab[INTERN_SLOTS];
static uint64_t intern_seq = UINT64_C(1) << 63;
static unsigned intern_pos;

/* The id of v[0..n); 0 when it has none and create is 0. */
static uint64_t intern(const uint64_t *v, int n, int create)
{
    pthread_mutex_lock(&intern_mu);
    uint64_t id = 0;
    for (int i = 0; i < INTERN_SLOTS && !id; i++)
        if (intern_tab[i].n == n && intern_tab[i].v && !memcmp(intern_tab[i].v, v, (size_t)n * sizeof *v))
            id = intern_tab[i].id;
    if (!id && create) {
        id = intern_seq++;
        uint64_t *copy = malloc((size_t)n * sizeof *v);
        if (copy) { /* out of memory: the id is unique anyway, only not remembered */
            memcpy(copy, v, (size_t)n * sizeof *v);
            interned *e = &intern_tab[intern_pos++ % INTERN_SLOTS];
            free(e->v);
            *e = (interned){id, n, copy};
        }
    }
    pthread_mutex_unlock(&intern_mu);
    return id;
}

/* GET the version(s) again: 0 and *same set, or a status. */
static int version_unchanged(const src *x, uint64_t version, int *same, char *err, size_t errlen, uint64_t *again)
{
    if (x->t) {
        int rv = tier_versions(x->t, NULL, again, err, errlen);
        *same = rv == STATS_OK && !memcmp(again, x->av, (size_t)x->t->n * sizeof *again);
        return rv;
    }
    rconn *rc = x->rc;
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

/* The hot and archive versions, read together (MGET is atomic). */
static int read_versions(rconn *rc, uint64_t *hot, uint64_t *archive, char *err, size_t errlen)
{
    redisReply *r = rconn_cmd(rc, "MGET %s %s", KEYS_HOT_VERSION, KEYS_ARCHIVE_VERSION);
    int rv = STATS_OK;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        rv = snapshot_redis_failure(rc, r, err, errlen) == SNAP_UNAVAILABLE
                 ? STATS_UNAVAILABLE
                 : STATS_INTERNAL;
    else if (snapshot_parse_version(r->element[0], hot))
        rv = log_fail(STATS_INTERNAL, err, errlen, "corrupt data: %s is not a counter", KEYS_HOT_VERSION);
    else if (snapshot_parse_version(r->element[1], archive))
        rv = log_fail(STATS_INTERNAL, err, errlen, "corrupt data: %s is not a counter", KEYS_ARCHIVE_VERSION);
    if (r) freeReplyObject(r);
    return rv;
}

/* What a reader hands its waiters when the version moved during its read. */
#define COLD_MOVED 1

/* Read [from, to] from MongoDB, then check the version(s) stayed (step c)
 * in the same Redis history (no failover in between). */
static int read_checked(const stats_env *env, const src *x, stats_scratch *s, uint64_t history, uint64_t version,
                        int32_t from, int32_t to, int *moved, char *err, size_t errlen)
{
    metrics_inc(m_misses);
    int rv = read_cold(env, from, to, &s->cold, err, errlen);
    run_after_cold_read_hook();
    int same = 0;
    if (rv == STATS_OK) rv = version_unchanged(x, version, &same, err, errlen, s->vers ? s->vers + 2 * s->nparts : NULL);
    if (rv == STATS_OK && (!same || src_history(x) != history)) *moved = 1;
    return rv;
}

/* Step b: the documents of [from, to] at version into s->cold, from the
 * cache, from another request's read of the same range and version (single
 * flight), or read here; history: the Redis history number the snapshot was
 * read at. */
static int cold_part(const stats_env *env, const src *x, stats_scratch *s, uint64_t history, uint64_t version,
                     int32_t from, int32_t to, int *moved, char *err, size_t errlen)
{
    if (!env->cache) return read_checked(env, x, s, history, version, from, to, moved, err, errlen);
    cold_flight *f;
    int shared = 0;
    switch (cold_cache_get(env->cache, history, version, from, to, &s->cold, &f, &shared, err, errlen)) {
    case COLD_HIT:
        metrics_inc(m_hits);
        return STATS_OK;
    case COLD_SHARED: /* the reader's failure or moved version, as if read here */
        if (shared == COLD_MOVED) {
            *moved = 1;
            return STATS_OK;
        }
        return shared;
    default:
        break;
    }
    int rv = read_checked(env, x, s, history, version, from, to, moved, err, errlen);
    cold_cache_finish(env->cache, f, history, version, from, to, rv != STATS_OK ? rv : *moved ? COLD_MOVED : 0,
                      &s->cold, rv != STATS_OK ? err : "");
    return rv;
}

/* One snapshot and what it needs from MongoDB, rendered.  *history: the
 * Redis history number right after the snapshot, the key of what it
 * computed (a failover moves it; see answer_cache.h). */
static int attempt(const stats_env *env, rconn *rc, stats_scratch *s, int32_t from, int32_t to,
                   enum stats_format fmt, int *moved, uint64_t *hot_version, uint64_t *version, uint64_t *history,
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
    src x = {rc, NULL, NULL};
    *history = rconn_history();
    if (snap.has_through && snap.through >= from)
        rv = cold_part(env, &x, s, *history, snap.version, from, snap.through < to ? snap.through : to, moved, err,
                       errlen);
    if (rv == STATS_OK && !*moved) rv = merge_tiers(s, &snap, err, errlen);
    if (rv == STATS_OK && !*moved) rv = render(s, fmt, err, errlen);
    *hot_version = snap.hot_version;
    *version = snap.version;
    snapshot_release(&snap); /* frozen records pointed into it until here */
    return rv;
}

/* Below, with the tagged tier. */
static int attempt_tier(const stats_env *env, tier *t, stats_scratch *s, int32_t from, int32_t to,
                        enum stats_format fmt, int *moved, uint64_t *hot_id, uint64_t *arch_id, uint64_t *history,
                        char *err, size_t errlen);

/* Attempts (attempt() on x->rc, or attempt_tier() on x->t when tagged) until
 * one sees no batch move to MongoDB, at most env->max_attempts; the answer is
 * cached under its versions and history. */
static int answer_attempts(const stats_env *env, const src *x, stats_scratch *s, int32_t from_day, int32_t to_day,
                           enum stats_format fmt, char *err, size_t errlen)
{
    int attempts = env->max_attempts > 0 ? env->max_attempts : 1;
    for (int n = 0; n < attempts; n++) {
        int moved;
        uint64_t hv = 0, av = 0, history = 0;
        int rv = x->t ? attempt_tier(env, x->t, s, from_day, to_day, fmt, &moved, &hv, &av, &history, err, errlen)
                      : attempt(env, x->rc, s, from_day, to_day, fmt, &moved, &hv, &av, &history, err, errlen);
        if (rv != STATS_OK) return rv;
        if (!moved) {
            /* kept only when no failover came between the snapshot and here */
            if (env->answers && src_history(x) == history)
                answer_cache_put(env->answers, from_day, to_day, fmt, hv, av, history, s->body, s->blen);
            return STATS_OK;
        }
        if (n + 1 < attempts) metrics_inc(m_retries);
    }
    metrics_inc(m_exhausted);
    return log_fail(STATS_BUSY, err, errlen,
                    "the archive moved to MongoDB during %d consecutive reads; retry the request", attempts);
}

int stats_answer(const stats_env *env, rconn *rc, stats_scratch *s, int32_t from_day, int32_t to_day,
                 enum stats_format fmt, char *err, size_t errlen)
{
    if (env->answers) {
        uint64_t hv, av;
        int rv = read_versions(rc, &hv, &av, err, errlen);
        if (rv != STATS_OK) return rv;
        uint64_t history = rconn_history(); /* the versions came from this history */
        if (answer_cache_get(env->answers, from_day, to_day, fmt, hv, av, history, &s->body, &s->blen, &s->bcap)) {
            metrics_inc(m_answers);
            return STATS_OK;
        }
    }
    src x = {rc, NULL, NULL};
    return answer_attempts(env, &x, s, from_day, to_day, fmt, err, errlen);
}

/* ---- a tagged tier ------------------------------------------------------------- */

static int scratch_parts(stats_scratch *s, int n)
{
    if (s->nparts == n) return 0;
    free(s->snaps);
    free(s->vers);
    s->snaps = calloc((size_t)n, sizeof *s->snaps);
    s->vers = calloc((size_t)n * 3, sizeof *s->vers);
    s->nparts = s->snaps && s->vers ? n : 0;
    return s->nparts ? 0 : -1;
}

static void release_parts(stats_scratch *s, int upto)
{
    for (int p = 0; p < upto; p++) snapshot_release(&s->snaps[p]);
}

/* Steps a-d over every partition; *hot_id, *arch_id: the interned version
 * vectors of the snapshots; *history as in attempt(). */
static int attempt_tier(const stats_env *env, tier *t, stats_scratch *s, int32_t from, int32_t to,
                        enum stats_format fmt, int *moved, uint64_t *hot_id, uint64_t *arch_id, uint64_t *history,
                        char *err, size_t errlen)
{
    *moved = 0;
    s->recs.n = 0;
    s->frozen.n = 0;
    cold_view_reset(&s->cold);
    int n = t->n;
    uint64_t *hv = s->vers, *av = s->vers + n;
    src x = {NULL, t, av};
    *history = src_history(&x); /* before the first snapshot: a map change during them is seen */
    snapshot all = {0};
    char e[400], name[64];
    int failed;
    int rv = snapshot_read_parts(t, &s->lua, from, to, s->snaps, &s->recs, &s->frozen, &failed, e, sizeof e);
    if (rv != SNAP_OK) {
        snprintf(err, errlen, "%s: %s", part_name(t, failed, name, sizeof name), e);
        release_parts(s, n);
        return rv == SNAP_UNAVAILABLE ? STATS_UNAVAILABLE : STATS_INTERNAL;
    }
    for (int p = 0; p < n; p++) {
        const snapshot *sp = &s->snaps[p];
        hv[p] = sp->hot_version;
        av[p] = sp->version;
        if (sp->has_through && (!all.has_through || sp->through > all.through)) {
            all.has_through = 1;
            all.through = sp->through;
        }
    }
    *hot_id = intern(hv, n, 1);
    *arch_id = intern(av, n, 1);
    if (all.has_through && all.through >= from)
        rv = cold_part(env, &x, s, *history, *arch_id, from, all.through < to ? all.through : to, moved, err, errlen);
    if (rv == STATS_OK && !*moved) rv = merge_tiers(s, &all, err, errlen);
    if (rv == STATS_OK && !*moved) rv = render(s, fmt, err, errlen);
    release_parts(s, n); /* frozen records pointed into them until here */
    return rv;
}

int stats_answer_tier(const stats_env *env, tier *t, stats_scratch *s, int32_t from_day, int32_t to_day,
                      enum stats_format fmt, char *err, size_t errlen)
{
    if (!t->tagged) {
        rconn *rc = tier_conn(t, 0);
        if (!rc) return log_fail(STATS_UNAVAILABLE, err, errlen, "Redis unavailable: %s", rcluster_error(t->cl));
        return stats_answer(env, rc, s, from_day, to_day, fmt, err, errlen);
    }
    if (scratch_parts(s, t->n)) return log_fail(STATS_INTERNAL, err, errlen, "out of memory");
    src x = {NULL, t, NULL};
    if (env->answers) {
        uint64_t *hv = s->vers, *av = s->vers + t->n;
        uint64_t h0 = src_history(&x);
        int rv = tier_versions(t, hv, av, err, errlen);
        if (rv != STATS_OK) return rv;
        uint64_t hid = intern(hv, t->n, 0), aid = intern(av, t->n, 0);
        if (hid && aid && src_history(&x) == h0 &&
            answer_cache_get(env->answers, from_day, to_day, fmt, hid, aid, h0, &s->body, &s->blen, &s->bcap)) {
            metrics_inc(m_answers);
            return STATS_OK;
        }
    }
    return answer_attempts(env, &x, s, from_day, to_day, fmt, err, errlen);
}

void stats_check_deps(const stats_env *env, const txagg_config *cfg, rconn *rc, char *redis_err, size_t rlen,
                      char *mongo_err, size_t mlen)
{
    redis_err[0] = mongo_err[0] = '\0';
    redisReply *r = rconn_cmd(rc, "PING");
    if (!r || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) {
        char e[300];
        snapshot_redis_failure(rc, r && r->type == REDIS_REPLY_ERROR ? r : NULL, e, sizeof e); /* counts it */
        snprintf(redis_err, rlen, "%s",
                 r ? (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to PING") : rconn_error(rc));
    }
    if (r) freeReplyObject(r);

    mongoc_client_t *client = mongoc_client_pool_pop(env->pool);
    if (mongo_ping(client, cfg, mongo_err, mlen) == 0) stats_mongo_state(1, NULL);
    else stats_mongo_state(0, mongo_err);
    mongoc_client_pool_push(env->pool, client);
}

void stats_check_deps_tier(const stats_env *env, const txagg_config *cfg, tier *t, char *redis_err, size_t rlen,
                           char *mongo_err, size_t mlen)
{
    if (!t->tagged) {
        rconn *rc = tier_conn(t, 0);
        if (rc) {
            stats_check_deps(env, cfg, rc, redis_err, rlen, mongo_err, mlen);
            return;
        }
    }
    char e[300] = "";
    for (int tries = 0; tries < 2; tries++) {
        e[0] = '\0';
        rconn *nodes[64];
        int n = rcluster_primaries(t->cl, nodes, 64);
        if (n <= 0) snprintf(e, sizeof e, "%s", rcluster_error(t->cl));
        for (int i = 0; i < n && i < 64 && !e[0]; i++) {
            redisReply *r = rconn_cmd(nodes[i], "PING");
            if (!r || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) {
                char ignored[300];
                snapshot_redis_failure(nodes[i], r && r->type == REDIS_REPLY_ERROR ? r : NULL, ignored,
                                       sizeof ignored); /* counts it */
                snprintf(e, sizeof e, "%s:%d: %s", rconn_host(nodes[i]), rconn_port(nodes[i]),
                         r ? (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to PING")
                           : rconn_error(nodes[i]));
            }
            if (r) freeReplyObject(r);
        }
        if (!e[0] || !rcluster_is_cluster(t->cl) || rcluster_refresh(t->cl) != 0) break;
    }
    snprintf(redis_err, rlen, "%s", e);
    mongo_err[0] = '\0';
    mongoc_client_t *client = mongoc_client_pool_pop(env->pool);
    if (mongo_ping(client, cfg, mongo_err, mlen) == 0) stats_mongo_state(1, NULL);
    else stats_mongo_state(0, mongo_err);
    mongoc_client_pool_push(env->pool, client);
}
