/*
 * partition_env — see partition_env.h.  Used only by the persistor's
 * partition tests (it asserts with cmocka).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../persistor/archive_batch.h"
#include "../../persistor/archive_write.h"
#include "../../persistor/clean.h"
#include "../../persistor/cycle.h"
#include "../../persistor/freeze.h"
#include "../../persistor/lease.h"
#include "../../persistor/persistor.h"
#include "archive_env.h"
#include "keys.h"
#include "mongo.h"
#include "partition_env.h"
#include "signals.h"
#include "testcluster.h"
#include "testenv.h"
#include "tier.h"
#include "txn.h"

static char seeds[1024];
static tier t; /* the test's own view of the partitions */
static int have_tier;
static const char *methods[PE_METHODS] = {"visa", "paypal", "apple_pay"};

void pe_use_cluster(const char *s)
{
    snprintf(seeds, sizeof seeds, "%s", s);
    if (have_tier) tier_free(&t);
    have_tier = 0;
}

void pe_config(txagg_config *cfg)
{
    archive_env_config(cfg);
    cfg->redis_partitions = PE_PARTS;
    snprintf(cfg->redis_cluster, sizeof cfg->redis_cluster, "%s", seeds);
}

static tier *the_tier(void)
{
    if (!have_tier) {
        txagg_config cfg;
        pe_config(&cfg);
        cfg.redis_timeout_ms = 10000;
        char err[256];
        if (tier_init(&t, &cfg, "partition-test", err, sizeof err) != 0) fail_msg("tier_init: %s", err);
        have_tier = 1;
    }
    return &t;
}

/* A command for partition part that must answer (not an error). */
static redisReply *pcmd(int part, const char *fmt, ...)
{
    tier *tt = the_tier();
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    assert_true(len > 0);
    redisReply *r = NULL; /* sent again only when refused (MOVED, …) or not sent */
    for (int tries = 0; tries < 20 && !r; tries++) {
        rconn *rc = tier_conn(tt, part);
        if (rc && rconn_ensure(rc) == 0) {
            redisContext *c = rconn_ctx(rc);
            if (redisAppendFormattedCommand(c, buf, (size_t)len) != REDIS_OK ||
                redisGetReply(c, (void **)&r) != REDIS_OK) {
                rconn_drop(rc);
                r = NULL;
            }
        }
        if (r && rcluster_classify(r, NULL) != RCLUSTER_REPLY) {
            freeReplyObject(r);
            r = NULL;
        }
        if (!r) {
            rcluster_refresh(tt->cl);
            sig_sleep_ms(200);
        }
    }
    redisFreeCommand(buf);
    if (!r) fail_msg("partition %d: no answer from Redis", part);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("partition %d: %s", part, r->str);
    return r;
}

void pe_reset(void)
{
    tier *tt = the_tier();
    rconn *prim[16];
    int n = rcluster_primaries(tt->cl, prim, 16);
    assert_true(n >= 1);
    for (int i = 0; i < n && i < 16; i++) {
        assert_int_equal(rconn_wait(prim[i]), 0);
        redisReply *r = rconn_cmd(prim[i], "FLUSHALL");
        assert_non_null(r);
        freeReplyObject(r);
    }
    testenv_drop_mongo_db();
}

struct persistor *pe_holder(void)
{
    txagg_config cfg;
    pe_config(&cfg);
    char err[512];
    persistor *p = persistor_open(&cfg, err, sizeof err);
    if (!p) fail_msg("persistor_open: %s", err);
    assert_int_equal(tier_check_layout(&p->t, err, sizeof err), TIER_OK);
    int64_t deadline = sig_now_ms() + 10000;
    int rv;
    while ((rv = lease_acquire(p)) != PST_OK && sig_now_ms() < deadline) sig_sleep_ms(20);
    assert_int_equal(rv, PST_OK);
    assert_int_equal(persistor_ensure_indexes(p), PST_OK);
    return p;
}

static void day_name(int d, char *out) { snprintf(out, 11, "2026-01-%02d", d + 1); }

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

void pe_seed(pe_ledger *l, int seed)
{
    memset(l, 0, sizeof *l);
    static const char *clocks[PE_PARTS] = {"2026-01-05T10:00:00Z", "2026-01-07T00:00:00Z", "2026-01-10T12:00:00Z",
                                           NULL};
    for (int p = 0; p < PE_PARTS; p++) {
        const keys_part *part = &the_tier()->parts[p];
        for (int d = 0; d < PE_DAYS; d++) {
            if ((p * 3 + d + seed) % 7 == 6) continue; /* not every partition holds every day */
            char day[11], key[KEYS_NAME_MAX + 32];
            day_name(d, day);
            int any = 0;
            for (int ty = 0; ty < TXN_TYPES; ty++) {
                keys_agg(key, sizeof key, part, day, txn_type_name(ty));
                for (int m = 0; m < PE_METHODS; m++) {
                    uint64_t h = mix(((uint64_t)seed << 40) ^ ((uint64_t)p << 24) ^ ((uint64_t)d << 8) ^
                                     ((uint64_t)ty << 4) ^ (uint64_t)m);
                    if (h % 4 == 0) continue;
                    int64_t cents = 1 + (int64_t)(h % 50000000); /* up to 500,000.00 */
                    freeReplyObject(pcmd(p, "HINCRBY %s %s %lld", key, methods[m], (long long)cents));
                    l->cents[d][ty][m] += cents;
                    any = 1;
                }
            }
            if (!any) continue;
            l->has[p][d] = 1;
            freeReplyObject(pcmd(p, "SADD %s %s", part->tracked, day));
        }
        if (clocks[p]) freeReplyObject(pcmd(p, "SET %s %s", part->clock, clocks[p]));
    }
}

/* The day's document: amounts into cents[type][method] (+=), its batches. */
typedef struct pe_doc {
    int found;
    char batches[64][PST_ID_MAX];
    int nbatches;
} pe_doc;

static int read_doc(const char *day, int64_t cents[2][PE_METHODS], pe_doc *doc)
{
    memset(doc, 0, sizeof *doc);
    txagg_config cfg;
    pe_config(&cfg);
    mongoc_client_t *mc = testenv_mongo();
    mongoc_collection_t *coll = mongoc_client_get_collection(mc, cfg.mongodb_database, cfg.mongodb_collection);
    bson_t *filter = BCON_NEW("date", BCON_UTF8(day));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *b;
    int ok = 1;
    while (mongoc_cursor_next(cur, &b)) {
        if (doc->found++) {
            fprintf(stderr, "# %s: more than one document\n", day);
            ok = 0;
        }
        bson_iter_t it, sub;
        for (int ty = 0; ty < TXN_TYPES; ty++) {
            if (!bson_iter_init_find(&it, b, txn_type_plural(ty))) continue;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub)) return 0;
            while (bson_iter_next(&sub)) {
                int m = 0;
                while (m < PE_METHODS && strcmp(methods[m], bson_iter_key(&sub))) m++;
                if (m == PE_METHODS || !BSON_ITER_HOLDS_INT64(&sub)) {
                    fprintf(stderr, "# %s: unexpected %s.%s\n", day, txn_type_plural(ty), bson_iter_key(&sub));
                    ok = 0;
                    continue;
                }
                cents[ty][m] += bson_iter_int64(&sub);
            }
        }
        if (bson_iter_init_find(&it, b, "batches") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &sub))
            while (bson_iter_next(&sub) && doc->nbatches < 64)
                if (BSON_ITER_HOLDS_UTF8(&sub))
                    snprintf(doc->batches[doc->nbatches++], PST_ID_MAX, "%s", bson_iter_utf8(&sub, NULL));
    }
    bson_error_t e;
    if (mongoc_cursor_error(cur, &e)) fail_msg("find %s: %s", day, e.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(mc);
    return ok;
}

static int listed(const pe_doc *doc, const char *id)
{
    for (int i = 0; i < doc->nbatches; i++)
        if (!strcmp(doc->batches[i], id)) return 1;
    return 0;
}

/* HGETALL key into cents[m] (+=); 0 on an unexpected field. */
static int add_hash(int p, const char *key, int64_t *cents)
{
    redisReply *r = pcmd(p, "HGETALL %s", key);
    int ok = 1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        int m = 0;
        while (m < PE_METHODS && strcmp(methods[m], r->element[i]->str)) m++;
        if (m == PE_METHODS) {
            fprintf(stderr, "# %s: unexpected field %s\n", key, r->element[i]->str);
            ok = 0;
            continue;
        }
        cents[m] += strtoll(r->element[i + 1]->str, NULL, 10);
    }
    freeReplyObject(r);
    return ok;
}

int pe_exact(const pe_ledger *l)
{
    int ok = 1;
    for (int d = 0; d < PE_DAYS; d++) {
        char day[11], key[256];
        day_name(d, day);
        int64_t got[2][PE_METHODS] = {{0}};
        pe_doc doc;
        ok &= read_doc(day, got, &doc);
        for (int p = 0; p < PE_PARTS; p++) {
            const keys_part *part = &the_tier()->parts[p];
            for (int ty = 0; ty < TXN_TYPES; ty++) {
                keys_agg(key, sizeof key, part, day, txn_type_name(ty));
                ok &= add_hash(p, key, got[ty]);
            }
            redisReply *pend = pcmd(p, "SMEMBERS %s", part->archive_pending);
            for (size_t i = 0; i < pend->elements; i++) {
                const char *id = pend->element[i]->str;
                if (listed(&doc, id)) continue; /* its amounts are in the document */
                for (int ty = 0; ty < TXN_TYPES; ty++) {
                    keys_frozen(key, sizeof key, part, id, day, txn_type_name(ty));
                    ok &= add_hash(p, key, got[ty]);
                }
            }
            freeReplyObject(pend);
        }
        for (int ty = 0; ty < TXN_TYPES; ty++)
            for (int m = 0; m < PE_METHODS; m++)
                if (got[ty][m] != l->cents[d][ty][m]) {
                    fprintf(stderr, "# %s %s %s: %" PRId64 " cents, expected %" PRId64 "\n", day,
                            txn_type_name(ty), methods[m], got[ty][m], l->cents[d][ty][m]);
                    ok = 0;
                }
    }
    return ok;
}

int pe_archived(const pe_ledger *l)
{
    int ok = 1;
    for (int p = 0; p < PE_PARTS; p++) {
        redisReply *r = pcmd(p, "SCARD %s", the_tier()->parts[p].archive_pending);
        if (r->integer != 0) {
            fprintf(stderr, "# partition %d: %lld batch(es) pending\n", p, r->integer);
            ok = 0;
        }
        freeReplyObject(r);
    }
    for (int d = 0; d < PE_DAYS; d++) {
        char day[11], key[256];
        day_name(d, day);
        int64_t got[2][PE_METHODS] = {{0}};
        pe_doc doc;
        read_doc(day, got, &doc);
        int due = d + 1 <= PE_THROUGH, nparts = 0;
        for (int p = 0; p < PE_PARTS; p++) {
            const keys_part *part = &the_tier()->parts[p];
            nparts += due && l->has[p][d];
            redisReply *r = pcmd(p, "SISMEMBER %s %s", part->tracked, day);
            long long tracked = r->integer;
            freeReplyObject(r);
            keys_agg(key, sizeof key, part, day, txn_type_name(TXN_DEPOSIT));
            char key2[256];
            keys_agg(key2, sizeof key2, part, day, txn_type_name(TXN_WITHDRAWAL));
            r = pcmd(p, "EXISTS %s %s", key, key2);
            long long hot = r->integer;
            freeReplyObject(r);
            int want = !due && l->has[p][d];
            if ((tracked != 0) != want || (hot != 0) != want) {
                fprintf(stderr, "# %s partition %d: tracked=%lld hashes=%lld, expected %d\n", day, p, tracked, hot,
                        want);
                ok = 0;
            }
            /* the document lists this partition's batch once when the day was archived from it */
            int mine = 0;
            char suffix[16];
            snprintf(suffix, sizeof suffix, "p%d", p);
            for (int i = 0; i < doc.nbatches; i++) {
                const char *f = strrchr(doc.batches[i], 'p');
                if (f && !strcmp(f, suffix)) mine++;
            }
            if (mine != (due && l->has[p][d])) {
                fprintf(stderr, "# %s: %d batch(es) of partition %d listed, expected %d\n", day, mine, p,
                        due && l->has[p][d]);
                ok = 0;
            }
        }
        if (doc.nbatches != nparts) {
            fprintf(stderr, "# %s: %d batches listed, expected %d\n", day, doc.nbatches, nparts);
            ok = 0;
        }
    }
    return ok;
}

void pe_cycle_until_archived(struct persistor *p, const pe_ledger *l)
{
    int64_t deadline = sig_now_ms() + 60000;
    int rv = PST_EREDIS;
    for (;;) {
        if (p->fence <= 0 && lease_acquire(p) != PST_OK) {
            sig_sleep_ms(100);
        } else {
            rv = cycle_run(p);
            if (rv == PST_OK && pe_archived(l)) break;
            if (rv != PST_OK) sig_sleep_ms(100);
        }
        if (sig_now_ms() > deadline) fail_msg("not archived within 60 s (last cycle: %d)", rv);
    }
}

void pe_test_every_partition_archived_exactly(void)
{
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 1);
    assert_true(pe_exact(&l));
    assert_false(pe_archived(&l)); /* the check can fail: nothing is archived yet */
    persistor *p = pe_holder();
    assert_int_equal(cycle_run(p), PST_OK);
    assert_true(pe_archived(&l));
    assert_true(pe_exact(&l));
    /* a second cycle has nothing to do and changes nothing */
    assert_int_equal(cycle_run(p), PST_OK);
    assert_true(pe_archived(&l));
    assert_true(pe_exact(&l));
    lease_release(p);
    persistor_close(p);
}

/* stage 0: frozen only; 1: one day written to MongoDB; 2: every day
 * written and the batch marked written — then the holder "dies" (no
 * release) and a new one recovers. */
void pe_test_crash_between_freeze_and_clean(int stage)
{
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 2 + stage);
    persistor *a = pe_holder();
    assert_int_equal(persistor_use_partition(a, 2), 0);
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(a, id, sizeof id), PST_OK);
    assert_non_null(strstr(id, "p2")); /* the id names its partition */
    archive_batch b;
    assert_int_equal(archive_batch_load(a, id, &b), PST_OK);
    if (stage >= 1) assert_int_equal(archive_write_day(a, id, b.days[0]), PST_OK);
    if (stage >= 2) {
        assert_int_equal(archive_write_batch(a, &b, 0), PST_OK);
        assert_int_equal(clean_mark_written(a, id), PST_OK);
    }
    assert_true(pe_exact(&l)); /* what the api sums is exact mid-batch */
    persistor_close(a);        /* kill -9: the lease is not released */

    persistor *n = pe_holder(); /* after the dead holder's lease lapsed */
    assert_int_equal(cycle_run(n), PST_OK);
    assert_true(pe_archived(&l));
    assert_true(pe_exact(&l)); /* each batch applied once: amounts equal the ledger */
    int64_t cents[2][PE_METHODS] = {{0}};
    pe_doc doc;
    read_doc(b.days[0], cents, &doc);
    int seen = 0;
    for (int i = 0; i < doc.nbatches; i++) seen += !strcmp(doc.batches[i], id);
    assert_int_equal(seen, 1); /* the recovered batch is listed once */
    archive_batch_free(&b);
    lease_release(n);
    persistor_close(n);
}

void pe_test_former_holder_fenced_out(void)
{
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 9);
    persistor *a = pe_holder();
    int64_t old = a->fence;
    for (int i = 0; i < PE_PARTS; i++) { /* while a holds the lease its claims pass */
        persistor_use_partition(a, i);
        assert_int_equal(lease_claim(a), PST_OK);
    }
    assert_int_equal(persistor_use_partition(a, 1), 0);
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(a, id, sizeof id), PST_OK);
    /* a stalls past its lease; b takes over, claims every partition and
     * finishes a's batch */
    sig_sleep_ms(ARCHIVE_ENV_LEASE_MS + 100);
    persistor *b = pe_holder();
    assert_true(b->fence > old);
    assert_int_equal(cycle_run(b), PST_OK);
    assert_true(pe_archived(&l));
    assert_true(pe_exact(&l));
    /* a wakes up believing it still holds the lease: every partition refuses it */
    for (int i = 0; i < PE_PARTS; i++) {
        a->fence = old;
        a->lease_sent_ms = sig_now_ms();
        persistor_use_partition(a, i);
        assert_int_equal(lease_claim(a), PST_ELEASE);
        assert_int_equal(a->fence, 0);
    }
    a->fence = old;
    a->lease_sent_ms = sig_now_ms();
    persistor_use_partition(a, 1);
    assert_int_equal(clean_mark_written(a, id), PST_ELEASE);
    assert_true(pe_exact(&l));
    persistor_close(a);
    lease_release(b);
    persistor_close(b);
}

int pe_start_service(const char *log)
{
    char bin[4096];
    testenv_bin("persistor", bin, sizeof bin);
    int started = tcluster_log_count(log, "svc=persistor", "msg=\"started\"", NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", PE_PARTS);
        setenv("REDIS_PARTITIONS", v, 1);
        if (seeds[0]) setenv("REDIS_CLUSTER", seeds, 1);
        snprintf(v, sizeof v, "%d", ARCHIVE_ENV_RETENTION);
        setenv("RETENTION_DAYS", v, 1);
        setenv("PERSIST_INTERVAL_MS", "200", 1);
        setenv("PERSIST_LEASE_MS", "600", 1);
        setenv("METRICS_PORT", "0", 1);
        setenv("LOG_LEVEL", "INFO", 1);
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    /* up (its signal handlers installed) once it logged "started" */
    int64_t deadline = sig_now_ms() + 30000;
    while (tcluster_log_count(log, "svc=persistor", "msg=\"started\"", NULL) <= started && sig_now_ms() < deadline)
        sig_sleep_ms(20);
    return pid;
}

int pe_wait_exit(int pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int pe_pending_partition(void)
{
    for (int p = 0; p < PE_PARTS; p++) {
        redisReply *r = pcmd(p, "SCARD %s", the_tier()->parts[p].archive_pending);
        long long n = r->integer;
        freeReplyObject(r);
        if (n > 0) return p;
    }
    return -1;
}

int pe_slot(int part) { return the_tier()->parts[part].slot; }
