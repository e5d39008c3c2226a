/*
 * archive_write — the guarded upsert of one frozen day into MongoDB.
 *
 * For day D of batch B (frozen hashes H_dep, H_wd):
 *
 *   find {date: D} → batches           (already applied? how long is it?
 *                                       skipped for a day newer than
 *                                       archived_through in a fresh batch)
 *   update_one {date: D, batches: {$ne: B}},
 *              {$inc: {"deposits.<m>": int64, "withdrawals.<m>": int64, …},
 *               $addToSet: {batches: B}, $set: {updated_at: now}},
 *              {upsert: true, writeConcern: MONGODB_WRITE_CONCERN/JOURNAL}
 *
 * under the unique index on `date`.  The document gains B in the same update
 * as B's increments, so "D's document lists B" means "B's amounts for D are
 * in it" — the API relies on that, and so does a repeat: a replay finds B
 * listed (or, when it races, its upsert collides on `date`: 11000).  A
 * duplicate-key error is not proof by itself (two first-time upserts of D
 * with different batches collide too), so on 11000 the document is read
 * again: B listed = applied, else the update is retried.
 *
 * One writer, one day at a time: FerretDB v1 applies an update as
 * read-then-write with no compare-and-swap, so two concurrent updates of one
 * document can lose one.  The lease makes this replica the only writer, and
 * the lease is renewed (a Redis round trip that fails if another replica took
 * it) immediately before every MongoDB call here — the reads, the guarded
 * update and the prune alike.
 *
 * The reads that decide "B is applied" (the read before the update, the
 * re-read after a write-concern error or an 11000) are majority reads
 * (readConcern "majority"): on a replica set a write visible on the primary
 * but not yet on a majority can be rolled back by a failover, and once we
 * have cleaned the frozen hashes those cents would be in neither tier.  What
 * a majority read lists survives any failover, like a write acknowledged
 * with w: majority.
 *
 * `batches` stays bounded: when it would grow past 2×PST_BATCHES_KEEP ids a
 * separate $pullAll drops all but the newest PST_BATCHES_KEEP (by position:
 * $addToSet appends).  The only batch that may be pending is the one just
 * added, so it is never dropped; an id is dropped only after
 * PST_BATCHES_KEEP later batches touched the same day.  ($pull and
 * $addToSet of one path conflict in one update; FerretDB v1 has no
 * $push+$slice.)
 *
 * Outages: a network or server-selection error is an outage (logged once per
 * change of state by persistor_mongo_state); the call is retried with capped
 * exponential backoff (100 ms → 5 s), the lease renewed every lease/3 while
 * waiting.  An error the server answered with (other than 11000) is logged
 * once per day and retried the same way.  A stop request (SIGTERM) ends the
 * wait — the batch stays pending for the next holder — but never a write
 * that is going well: the batch in hand is finished.  Nothing is deleted from Redis here:
 * the frozen hashes go only in clean.lua, after every day is confirmed.
 */
#include "archive_write.h"
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "money.h"
#include "mongo.h"
#include "signals.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* 11000 without our id in the document means a concurrent first upsert; a
 * few in a row are possible (a stale ex-holder), many are not. */
#define DUP_RETRIES 5

static int is_outage(const bson_error_t *e)
{
    return e->domain != MONGOC_ERROR_SERVER && e->domain != MONGOC_ERROR_WRITE_CONCERN;
}

/* Sleep the current backoff (renewing the lease every lease/3), then grow
 * it.  PST_OK to retry, else why not. */
static int backoff_wait(persistor *p)
{
    int rv = lease_sleep(p, p->mongo_backoff_ms);
    if (rv != PST_OK) return rv;
    p->mongo_backoff_ms = p->mongo_backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->mongo_backoff_ms * 2;
    return PST_OK;
}

/* The document's `batches`: whether id is listed, how many ids, and the
 * first `want` of them (oldest first) for pruning.  0, or -1 + e. */
typedef struct doc_batches {
    int listed;
    int count;
    char (*oldest)[PST_ID_MAX];
    int noldest;
} doc_batches;

static int read_batches(persistor *p, const char *day, const char *id, doc_batches *db, bson_error_t *e)
{
    memset(db, 0, sizeof *db);
    bson_t *filter = BCON_NEW("date", BCON_UTF8(day));
    bson_t *opts = BCON_NEW("projection", "{", "batches", BCON_INT32(1), "}", "limit", BCON_INT64(1));
    mongo_read_majority(opts);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(p->coll, filter, opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it, arr;
        if (!bson_iter_init_find(&it, doc, "batches") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
            continue;
        int n = 0;
        while (bson_iter_next(&arr)) n++;
        db->count = n;
        db->oldest = n ? calloc((size_t)n, sizeof *db->oldest) : NULL;
        bson_iter_recurse(&it, &arr);
        while (bson_iter_next(&arr)) {
            if (!BSON_ITER_HOLDS_UTF8(&arr)) continue;
            uint32_t len;
            const char *s = bson_iter_utf8(&arr, &len);
            if (!strcmp(s, id)) db->listed = 1;
            if (db->oldest && len < PST_ID_MAX) memcpy(db->oldest[db->noldest++], s, len + 1);
        }
    }
    int failed = mongoc_cursor_error(cur, e);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    if (failed) {
        free(db->oldest);
        db->oldest = NULL;
    }
    return failed ? -1 : 0;
}

/* Drop all but the newest PST_BATCHES_KEEP ids when the array (after this
 * batch) holds more than twice that.  Best effort: a MongoDB failure is
 * retried by the next write of the day.  It is a write like any other: the
 * lease is renewed first, and a lease not ours (PST_ELEASE) or Redis lost
 * (PST_EREDIS) is returned, nothing written. */
static int prune_batches(persistor *p, const char *day, const doc_batches *db, int added)
{
    int total = db->count + added;
    if (total <= 2 * PST_BATCHES_KEEP) return PST_OK;
    int rv = lease_renew(p);
    if (rv != PST_OK) return rv;
    int drop = total - PST_BATCHES_KEEP;
    if (drop > db->noldest) drop = db->noldest;
    bson_t update = BSON_INITIALIZER, pull, arr;
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$pullAll", &pull);
    BSON_APPEND_ARRAY_BEGIN(&pull, "batches", &arr);
    for (int i = 0; i < drop; i++) {
        char k[16];
        const char *key;
        bson_uint32_to_string((uint32_t)i, &key, k, sizeof k);
        bson_append_utf8(&arr, key, -1, db->oldest[i], -1);
    }
    bson_append_array_end(&pull, &arr);
    bson_append_document_end(&update, &pull);
    bson_t *filter = BCON_NEW("date", BCON_UTF8(day));
    bson_t opts = BSON_INITIALIZER;
    mongoc_write_concern_append(p->wc, &opts);
    bson_error_t e;
    if (!mongoc_collection_update_one(p->coll, filter, &update, &opts, NULL, &e)) {
        mongo_count_error();
        char q[300];
        log_debug("pruning batches failed; retried at the next write", "date=%s err=%s", day,
                  log_q(q, sizeof q, e.message));
    }
    bson_destroy(&opts);
    bson_destroy(filter);
    bson_destroy(&update);
    return PST_OK;
}

/* $inc of one frozen hash into inc ("deposits.<m>": int64).  Returns the
 * number of fields, or -1 (EREDIS) / -2 (EDATA, logged). */
static int append_frozen(persistor *p, const char *id, const char *day, int type, bson_t *inc)
{
    char key[128];
    if (!keys_frozen(key, sizeof key, persistor_part(p), id, day, txn_type_name(type))) return -2;
    redisReply *r = persistor_cmd(p, "HGETALL %s", key);
    if (!r) return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        freeReplyObject(r);
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        redisReply *f = r->element[i], *v = r->element[i + 1];
        char method[TXN_METHOD_MAX + 1];
        int64_t cents;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            txn_method_normalize(f->str, f->len, method) != (int)f->len || memcmp(method, f->str, f->len) != 0 ||
            money_parse_cents(v->str, v->len, &cents) != MONEY_OK) {
            char q[120];
            log_error("frozen hash holds a field that cannot be archived; batch left pending", "key=%s field=%s",
                      key, log_q(q, sizeof q, f->type == REDIS_REPLY_STRING ? f->str : "?"));
            freeReplyObject(r);
            return -2;
        }
        char path[64];
        snprintf(path, sizeof path, "%s.%s", txn_type_plural(type), method);
        BSON_APPEND_INT64(inc, path, cents);
        n++;
    }
    freeReplyObject(r);
    return n;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* check_first = 0 skips the read before the first update (see
 * archive_write_batch); every retry reads first. */
static int write_day(persistor *p, const char *id, const char *day, int check_first)
{
    int lrv = lease_renew(p); /* a step of a replica without the lease does nothing */
    if (lrv != PST_OK) return lrv;
    bson_t inc = BSON_INITIALIZER;
    int nfields = 0;
    for (int t = 0; t < TXN_TYPES; t++) {
        int n = append_frozen(p, id, day, t, &inc);
        if (n < 0) {
            bson_destroy(&inc);
            return n == -1 ? PST_EREDIS : PST_EDATA;
        }
        nfields += n;
    }
    if (nfields == 0) { /* nothing frozen for this day: nothing to add */
        bson_destroy(&inc);
        return PST_OK;
    }

    bson_t *filter = BCON_NEW("date", BCON_UTF8(day), "batches", "{", "$ne", BCON_UTF8(id), "}");
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "upsert", true);
    mongoc_write_concern_append(p->wc, &opts);

    int rv = PST_OK, dups = 0, refused_logged = 0;
    for (;;) { /* a stop request ends this loop only while it waits out an outage (backoff_wait) */
        rv = lease_renew(p); /* immediately before touching MongoDB */
        if (rv != PST_OK) break;
        bson_error_t e;
        doc_batches db;
        if (!check_first) {
            memset(&db, 0, sizeof db);
        } else if (read_batches(p, day, id, &db, &e) != 0) {
            char q[300];
            mongo_count_error();
            if (is_outage(&e)) persistor_mongo_state(p, 0, e.message);
            else if (!refused_logged++)
                log_error("archive read refused by MongoDB; retrying", "id=%s date=%s code=%u err=%s", id, day,
                          e.code, log_q(q, sizeof q, e.message));
            rv = backoff_wait(p);
            if (rv != PST_OK) break;
            continue;
        }
        if (check_first) persistor_mongo_state(p, 1, NULL);
        check_first = 1; /* from now on, every attempt reads first */
        if (db.listed) { /* applied before (a repeat after a crash, or a lost reply) */
            rv = prune_batches(p, day, &db, 0);
            free(db.oldest);
            break;
        }
        rv = lease_renew(p);
        if (rv != PST_OK) {
            free(db.oldest);
            break;
        }
        bson_t update = BSON_INITIALIZER, child;
        BSON_APPEND_DOCUMENT(&update, "$inc", &inc);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$addToSet", &child);
        BSON_APPEND_UTF8(&child, "batches", id);
        bson_append_document_end(&update, &child);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &child);
        BSON_APPEND_DATE_TIME(&child, "updated_at", wall_ms());
        bson_append_document_end(&update, &child);
        bool ok = mongoc_collection_update_one(p->coll, filter, &update, &opts, NULL, &e);
        bson_destroy(&update);
        if (ok) {
            persistor_mongo_state(p, 1, NULL);
            p->mongo_backoff_ms = BACKOFF_MIN_MS;
            rv = prune_batches(p, day, &db, 1);
            free(db.oldest);
            break;
        }
        free(db.oldest);
        if (mongo_is_duplicate_key(&e) && ++dups <= DUP_RETRIES) continue; /* read again: listed? */
        char q[300];
        mongo_count_error();
        if (is_outage(&e)) {
            persistor_mongo_state(p, 0, e.message);
        } else {
            if (!refused_logged++)
                log_error("archive write refused by MongoDB; retrying", "id=%s date=%s code=%u err=%s", id, day,
                          e.code, log_q(q, sizeof q, e.message));
        }
        rv = backoff_wait(p);
        if (rv != PST_OK) break;
        dups = 0;
    }
    bson_destroy(&opts);
    bson_destroy(filter);
    bson_destroy(&inc);
    return rv;
}

#ifdef TXAGG_TESTING
int archive_write_day(persistor *p, const char *id, const char *day) { return write_day(p, id, day, 1); }
#endif

int archive_write_batch(persistor *p, const archive_batch *b, int fresh)
{
    /* A batch this replica just froze follows a clean-up of every earlier
     * batch, which raised archived_through past each day it wrote: a day
     * after archived_through has no document yet, so its read is skipped
     * (FerretDB v1 pushes down only {_id: …} filters — every other find or
     * update scans the collection).  Were a document there after all, the
     * guarded update would still be right; only its prune check is missed.
     * Partitioned, archived_through is the partition's own: a day after it
     * may well have a document (another partition's batch wrote it), which
     * is exactly that case — the update adds this partition's amounts under
     * this partition's batch id. */
    char through[TS_DAY_LEN + 1] = "";
    if (fresh) {
        redisReply *r = persistor_cmd(p, "GET %s", persistor_part(p)->archived_through);
        if (!r) return PST_EREDIS;
        if (r->type == REDIS_REPLY_STRING && r->len == TS_DAY_LEN) memcpy(through, r->str, TS_DAY_LEN + 1);
        else if (r->type != REDIS_REPLY_NIL) fresh = 0;
        freeReplyObject(r);
    }
    for (int i = 0; i < b->ndays; i++) {
        int rv = write_day(p, b->id, b->days[i], !fresh || strcmp(b->days[i], through) <= 0);
        if (rv != PST_OK) return rv;
    }
    return PST_OK;
}
