/* `persistor migrate` against real Redis and MongoDB-wire servers, with data
 * written the way the Python service wrote it (HINCRBYFLOAT dollars, documents
 * of doubles, a naive clock).  A run "killed" after the plan, after any
 * number of hashes or after any number of documents (its state dropped) and
 * run again ends exact; two runs at once convert nothing twice; a hash or
 * document that changed meanwhile is not written; a value off a whole cent
 * refuses its whole hash or document, named, and nothing of it is written;
 * Redis already holding txagg's own state gets no plan, and a hash txagg
 * writes after the plan is never converted.  The expected cents are the
 * integers the test generated, never the migration's own arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../persistor/mcold.h"
#include "../../persistor/mhot.h"
#include "../../persistor/migrate.h"
#include "../../persistor/persistor.h"
#include "keys.h"
#include "mongo.h"
#include "testenv.h"

#define NHASH 6
#define NDOC 5
#define NMETH 3

static const char *const meth[NMETH] = {"visa", "paypal", "apple_pay"};
static int64_t hash_cents[NHASH][NMETH]; /* agg:2026-01-2{0+h/2}:{type} */
static int64_t doc_cents[NDOC][NMETH];   /* 2025-12-0{1+d}, deposits */
static rconn *rc;
static mongoc_client_t *mc;
static mongoc_collection_t *coll;
static txagg_config cfg;

static void hash_key(int h, char *buf, size_t n)
{
    snprintf(buf, n, "agg:2026-01-%02d:%s", 20 + h / 2, h % 2 ? "withdrawal" : "deposit");
}

static void doc_date(int d, char *buf, size_t n) { snprintf(buf, n, "2025-12-%02d", 1 + d); }

/* HINCRBYFLOAT key field <cents as dollars>; Redis's text into out. */
static void hincrbyfloat(const char *key, const char *field, int64_t cents, char *out, size_t n)
{
    char d[32];
    snprintf(d, sizeof d, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
    redisReply *r = testenv_cmd(rc, "HINCRBYFLOAT %s %s %s", key, field, d);
    if (out) snprintf(out, n, "%s", r->str);
    freeReplyObject(r);
}

/* The Python service's data: hashes of HINCRBYFLOAT sums, documents of the
 * doubles its persistor read back from such sums, a naive clock. */
static void seed(void)
{
    testenv_flush_redis();
    testenv_drop_mongo_db();
    uint64_t x = 99;
    for (int h = 0; h < NHASH; h++) {
        char key[64];
        hash_key(h, key, sizeof key);
        for (int m = 0; m < NMETH; m++) {
            hash_cents[h][m] = 0;
            for (int i = 0; i < 7; i++) {
                x = x * 6364136223846793005u + 1442695040888963407u;
                int64_t c = 1 + (int64_t)((x >> 33) % (i == 3 ? 100000000000u : 1000000u));
                hincrbyfloat(key, meth[m], c, NULL, 0);
                hash_cents[h][m] += c;
            }
        }
        char day[11];
        snprintf(day, sizeof day, "%.10s", key + 4);
        testenv_cmd_ok(rc, "SADD %s %s", KEYS_TRACKED_DAYS, day);
    }
    testenv_cmd_ok(rc, "SET %s %s", KEYS_VIRTUAL_CLOCK, "2026-01-22T10:11:12.500000");
    for (int d = 0; d < NDOC; d++) {
        char date[16];
        doc_date(d, date, sizeof date);
        bson_t *doc = BCON_NEW("date", BCON_UTF8(date), "last_updated", BCON_DATE_TIME(1769904000000));
        bson_t side;
        BSON_APPEND_DOCUMENT_BEGIN(doc, "deposits", &side);
        for (int m = 0; m < NMETH; m++) {
            char text[64];
            doc_cents[d][m] = 0;
            testenv_cmd_ok(rc, "DEL scratch");
            for (int i = 0; i < 5; i++) {
                x = x * 6364136223846793005u + 1442695040888963407u;
                int64_t c = 1 + (int64_t)((x >> 33) % 5000000u);
                hincrbyfloat("scratch", "v", c, text, sizeof text);
                doc_cents[d][m] += c;
            }
            BSON_APPEND_DOUBLE(&side, meth[m], strtod(text, NULL));
        }
        bson_append_document_end(doc, &side);
        bson_error_t e;
        assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &e));
        bson_destroy(doc);
    }
    testenv_cmd_ok(rc, "DEL scratch");
}

static void check_hashes_exact(void)
{
    for (int h = 0; h < NHASH; h++) {
        char key[64], want[32];
        hash_key(h, key, sizeof key);
        redisReply *r = testenv_cmd(rc, "HLEN %s", key);
        assert_int_equal(r->integer, NMETH);
        freeReplyObject(r);
        for (int m = 0; m < NMETH; m++) {
            r = testenv_cmd(rc, "HGET %s %s", key, meth[m]);
            snprintf(want, sizeof want, "%lld", (long long)hash_cents[h][m]);
            if (strcmp(r->str, want) != 0) fail_msg("%s %s = %s, want %s", key, meth[m], r->str, want);
            freeReplyObject(r);
        }
        char day[11];
        snprintf(day, sizeof day, "%.10s", key + 4);
        r = testenv_cmd(rc, "SISMEMBER %s %s", KEYS_TRACKED_DAYS, day);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
    }
    redisReply *r = testenv_cmd(rc, "GET %s", KEYS_VIRTUAL_CLOCK);
    assert_string_equal(r->str, "2026-01-22T10:11:12Z");
    freeReplyObject(r);
}

/* Each document in txagg's form with exactly the generated cents. */
static void check_docs_exact(void)
{
    for (int d = 0; d < NDOC; d++) {
        char date[16];
        doc_date(d, date, sizeof date);
        bson_t *filter = BCON_NEW("date", BCON_UTF8(date));
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
        const bson_t *doc;
        int n = 0;
        while (mongoc_cursor_next(cur, &doc)) {
            n++;
            bson_iter_t it;
            assert_true(bson_iter_init_find(&it, doc, "batches") && BSON_ITER_HOLDS_ARRAY(&it));
            assert_true(bson_has_field(doc, "updated_at"));
            assert_false(bson_has_field(doc, "last_updated"));
            for (int m = 0; m < NMETH; m++) {
                char path[64];
                snprintf(path, sizeof path, "deposits.%s", meth[m]);
                assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &it));
                assert_true(BSON_ITER_HOLDS_INT64(&it));
                if (bson_iter_int64(&it) != doc_cents[d][m])
                    fail_msg("%s %s = %lld, want %lld", date, path, (long long)bson_iter_int64(&it),
                             (long long)doc_cents[d][m]);
            }
        }
        assert_int_equal(n, 1);
        mongoc_cursor_destroy(cur);
        bson_destroy(filter);
    }
    redisReply *r = testenv_cmd(rc, "GET %s", KEYS_ARCHIVED_THROUGH);
    assert_string_equal(r->str, "2025-12-05");
    freeReplyObject(r);
}

/* A whole run; its report into out (NUL-terminated, caller frees). */
static int run(int check, char **out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    int st = migrate_run(&cfg, check, f);
    fclose(f);
    if (out) *out = buf;
    else free(buf);
    return st;
}

static void assert_contains(const char *text, const char *want)
{
    if (!strstr(text, want)) fail_msg("expected \"%s\" in:\n%s", want, text);
}


/* A run driven step by step; "killing" it drops its state, keeping only what
 * it wrote. */
typedef struct stepped {
    persistor *p;
    FILE *devnull;
    mreport r;
} stepped;

static stepped stepped_open(void)
{
    stepped s;
    char err[256];
    s.p = persistor_open(&cfg, err, sizeof err);
    assert_non_null(s.p);
    s.devnull = fopen("/dev/null", "w");
    assert_non_null(s.devnull);
    mreport_init(&s.r, 0, s.devnull);
    return s;
}

/* Fresh data (seed), and a run opened on it. */
static stepped stepped_seeded(void)
{
    seed();
    return stepped_open();
}

static void stepped_kill(stepped *s)
{
    persistor_close(s->p);
    fclose(s->devnull);
}

/* The next whole run exits 0, reports want (printf-style), and everything
 * is exact. */
static void rerun_exact(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void rerun_exact(const char *fmt, ...)
{
    char want[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    char *out;
    assert_int_equal(run(0, &out), 0);
    assert_contains(out, want);
    free(out);
    check_hashes_exact();
    check_docs_exact();
}

/* A second run finds everything converted and changes nothing. */
static void assert_rerun_changes_nothing(void)
{
    rerun_exact("redis hashes:     0 converted (0 fields), 6 already txagg's");
    rerun_exact("mongodb docs:     5 seen: 0 converted, 5 already txagg's");
}

static void test_a_run_killed_after_the_plan_or_after_any_hash_ends_exact_when_run_again(void **st)
{
    (void)st;
    for (int k = 0; k <= NHASH; k++) {
        stepped s = stepped_seeded();
        mhot h;
        mhot_init(&h, s.p, &s.r);
        assert_int_equal(mhot_plan(&h), PST_OK);
        assert_int_equal(h.plan.n, NHASH);
        for (int i = 0; i < k; i++) assert_int_equal(mhot_convert(&h, h.plan.v[i]), PST_OK);
        assert_int_equal(s.r.hashes_converted, k);
        mhot_free(&h);
        stepped_kill(&s);
        redisReply *left = testenv_cmd(rc, "SCARD %s", KEYS_MIGRATION_HASHES);
        assert_int_equal(left->integer, NHASH - k);
        freeReplyObject(left);
        rerun_exact("redis hashes:     %d converted", NHASH - k);
    }
    assert_rerun_changes_nothing();
}

static void test_a_run_killed_after_any_document_ends_exact_when_run_again(void **st)
{
    (void)st;
    for (int k = 0; k <= NDOC; k++) {
        stepped s = stepped_seeded();
        bson_t **docs;
        size_t n;
        assert_int_equal(mcold_load(s.p, &s.r, &docs, &n), PST_OK);
        assert_int_equal(n, NDOC);
        for (int i = 0; i < k; i++) assert_int_equal(mcold_convert(s.p, &s.r, docs[i]), PST_OK);
        assert_int_equal(s.r.docs_converted, k);
        mcold_docs_free(docs, n);
        stepped_kill(&s);
        rerun_exact("%d converted, %d already txagg's", NDOC - k, k);
    }
    assert_rerun_changes_nothing();
}

static void test_two_runs_at_once_convert_each_hash_and_document_once(void **st)
{
    (void)st;
    stepped a = stepped_seeded(), b = stepped_open();
    mhot ha, hb;
    mhot_init(&ha, a.p, &a.r);
    mhot_init(&hb, b.p, &b.r);
    assert_int_equal(mhot_plan(&ha), PST_OK);
    assert_int_equal(mhot_plan(&hb), PST_OK); /* reads a's plan */
    assert_int_equal(hb.plan.n, NHASH);
    assert_int_equal(a.r.planned_now + b.r.planned_now, 1);
    bson_t **da, **db;
    size_t na, nb;
    assert_int_equal(mcold_load(a.p, &a.r, &da, &na), PST_OK);
    assert_int_equal(mcold_load(b.p, &b.r, &db, &nb), PST_OK);
    /* b does everything, then a works from what it read before */
    for (size_t i = 0; i < hb.plan.n; i++) assert_int_equal(mhot_convert(&hb, hb.plan.v[i]), PST_OK);
    for (size_t i = 0; i < nb; i++) assert_int_equal(mcold_convert(b.p, &b.r, db[i]), PST_OK);
    for (size_t i = 0; i < ha.plan.n; i++) assert_int_equal(mhot_convert(&ha, ha.plan.v[i]), PST_OK);
    for (size_t i = 0; i < na; i++) assert_int_equal(mcold_convert(a.p, &a.r, da[i]), PST_OK);
    assert_int_equal(b.r.hashes_converted, NHASH);
    assert_int_equal(b.r.docs_converted, NDOC);
    /* each rewritten hash moved the hot version once (a cached answer cannot
     * outlive the conversion); a's runs over converted hashes moved nothing */
    redisReply *hv = testenv_cmd(rc, "GET %s", KEYS_HOT_VERSION);
    assert_true(hv->type == REDIS_REPLY_STRING);
    assert_int_equal(strtoll(hv->str, NULL, 10), NHASH);
    freeReplyObject(hv);
    /* a re-reads each hash with its plan membership: done by b, read as cents */
    assert_int_equal(a.r.hashes_converted, 0);
    assert_int_equal(a.r.hashes_elsewhere, NHASH);
    assert_int_equal(a.r.hot_before.cents, b.r.hot_before.cents);
    assert_int_equal(a.r.docs_converted, 0);
    assert_int_equal(a.r.docs_elsewhere, NDOC);
    assert_int_equal(a.r.cold_before.cents, b.r.cold_before.cents);
    assert_int_equal(a.r.refused + b.r.refused, 0);
    mcold_docs_free(da, na);
    mcold_docs_free(db, nb);
    mhot_free(&ha);
    mhot_free(&hb);
    stepped_kill(&a);
    stepped_kill(&b);
    rerun_exact("0 converted, 5 already txagg's");
}

static void test_a_hash_or_document_changed_meanwhile_is_not_written(void **st)
{
    (void)st;
    seed();
    /* the hash script with values read before the Python service added one more */
    char key[64], text[64];
    hash_key(0, key, sizeof key);
    redisReply *old = testenv_cmd(rc, "HGET %s %s", key, meth[0]);
    snprintf(text, sizeof text, "%s", old->str);
    freeReplyObject(old);
    testenv_cmd_ok(rc, "SADD %s %s", KEYS_MIGRATION_HASHES, key);
    hincrbyfloat(key, meth[0], 1, NULL, 0);
    extern const char lua_persistor_migrate_hash[];
    redisReply *r = testenv_cmd(rc, "EVAL %s 4 %s %s %s %s 2026-01-20 1 %s %s 1", lua_persistor_migrate_hash, key,
                        KEYS_MIGRATION_HASHES, KEYS_TRACKED_DAYS, KEYS_HOT_VERSION, meth[0], text);
    assert_string_equal(r->str, "changed");
    freeReplyObject(r);
    r = testenv_cmd(rc, "HGET %s %s", key, meth[1]);
    assert_non_null(strchr(r->str, '.')); /* untouched: still dollars */
    freeReplyObject(r);
    testenv_cmd_ok(rc, "FLUSHALL");

    /* a document read, then changed by a last $inc, then converted from the stale copy */
    stepped s = stepped_seeded();
    bson_t **docs;
    size_t n;
    assert_int_equal(mcold_load(s.p, &s.r, &docs, &n), PST_OK);
    bson_t *filter = BCON_NEW("date", "2025-12-01");
    bson_t *inc = BCON_NEW("$inc", "{", "deposits.visa", BCON_DOUBLE(0.01), "}");
    bson_error_t e;
    assert_true(mongoc_collection_update_one(coll, filter, inc, NULL, NULL, &e));
    assert_int_equal(mcold_convert(s.p, &s.r, docs[0]), PST_OK);
    assert_int_equal(s.r.docs_refused, 1);
    assert_int_equal(s.r.docs_converted, 0);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    assert_true(mongoc_cursor_next(cur, &doc));
    assert_false(bson_has_field(doc, "batches")); /* not written */
    mongoc_cursor_destroy(cur);
    bson_destroy(inc);
    bson_destroy(filter);
    mcold_docs_free(docs, n);
    stepped_kill(&s);
}

static void test_a_value_off_a_whole_cent_refuses_its_hash_and_document_whole(void **st)
{
    (void)st;
    seed();
    char key[64];
    hash_key(3, key, sizeof key);
    testenv_cmd_ok(rc, "HSET %s cash 7.1234", key);
    bson_t *filter = BCON_NEW("date", "2025-12-03");
    bson_t *set = BCON_NEW("$set", "{", "deposits.crypto", BCON_DOUBLE(12.3456), "}");
    bson_error_t e;
    assert_true(mongoc_collection_update_one(coll, filter, set, NULL, NULL, &e));
    char *before_doc = NULL;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    assert_true(mongoc_cursor_next(cur, &doc));
    before_doc = bson_as_canonical_extended_json(doc, NULL);
    mongoc_cursor_destroy(cur);
    redisReply *before_hash = testenv_cmd(rc, "HGETALL %s", key);

    char *out;
    assert_int_equal(run(0, &out), 1);
    char want[200];
    snprintf(want, sizeof want, "refused: Redis hash %s field cash = 7.1234 is not within 0.001 cent of a whole cent",
             key);
    assert_contains(out, want);
    assert_contains(out, "refused: MongoDB document date=2025-12-03 _id=");
    assert_contains(out, "field deposits.crypto = 12.3456 is not within 0.001 cent of a whole cent");
    assert_contains(out, "5 converted (15 fields)"); /* the other hashes */
    assert_contains(out, "4 converted, 0 already txagg's");
    free(out);

    cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    assert_true(mongoc_cursor_next(cur, &doc));
    char *after_doc = bson_as_canonical_extended_json(doc, NULL);
    assert_string_equal(after_doc, before_doc); /* nothing of it written */
    mongoc_cursor_destroy(cur);
    redisReply *after_hash = testenv_cmd(rc, "HGETALL %s", key);
    assert_int_equal(after_hash->elements, before_hash->elements);
    for (size_t i = 0; i < after_hash->elements; i++)
        assert_string_equal(after_hash->element[i]->str, before_hash->element[i]->str);
    redisReply *planned = testenv_cmd(rc, "SISMEMBER %s %s", KEYS_MIGRATION_HASHES, key);
    assert_int_equal(planned->integer, 1);
    freeReplyObject(planned);

    /* the operator repairs both values; the rerun finishes */
    testenv_cmd_ok(rc, "HDEL %s cash", key);
    bson_t *unset = BCON_NEW("$unset", "{", "deposits.crypto", BCON_UTF8(""), "}");
    assert_true(mongoc_collection_update_one(coll, filter, unset, NULL, NULL, &e));
    rerun_exact("1 converted (3 fields)");
    bson_free(before_doc);
    bson_free(after_doc);
    freeReplyObject(before_hash);
    freeReplyObject(after_hash);
    bson_destroy(unset);
    bson_destroy(set);
    bson_destroy(filter);
}

static void test_redis_with_txagg_state_and_no_plan_gets_no_hash_converted(void **st)
{
    (void)st;
    testenv_flush_redis();
    testenv_drop_mongo_db();
    testenv_cmd_ok(rc, "HSET agg:2026-01-05:deposit visa 100");
    testenv_cmd_ok(rc, "SET %s 3", KEYS_PERSISTOR_FENCE);
    char *out;
    assert_int_equal(run(0, &out), 1);
    assert_contains(out, "refused: Redis already holds txagg's own state");
    free(out);
    redisReply *r = testenv_cmd(rc, "HGET agg:2026-01-05:deposit visa");
    assert_string_equal(r->str, "100"); /* cents, left as they are */
    freeReplyObject(r);
    r = testenv_cmd(rc, "EXISTS %s", KEYS_MIGRATION);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

static void test_a_hash_txagg_writes_after_the_plan_is_never_converted(void **st)
{
    (void)st;
    seed();
    assert_int_equal(run(0, NULL), 0);
    testenv_cmd_ok(rc, "HSET agg:2026-02-02:deposit visa 100");
    char *out;
    assert_int_equal(run(0, &out), 0);
    assert_contains(out, "7 already txagg's");
    free(out);
    redisReply *r = testenv_cmd(rc, "HGET agg:2026-02-02:deposit visa");
    assert_string_equal(r->str, "100");
    freeReplyObject(r);
    check_hashes_exact();
}

static void test_check_reports_and_writes_nothing(void **st)
{
    (void)st;
    seed();
    redisReply *before = testenv_cmd(rc, "DBSIZE");
    char *out;
    assert_int_equal(run(1, &out), 0);
    assert_contains(out, "migration check summary (--check: nothing written)");
    assert_contains(out, "6 to convert (18 fields)");
    assert_contains(out, "5 seen: 5 to convert");
    assert_contains(out, "2026-01-22T10:11:12.500000 -> 2026-01-22T10:11:12Z (would be rewritten)");
    free(out);
    redisReply *after = testenv_cmd(rc, "DBSIZE");
    assert_int_equal(after->integer, before->integer);
    redisReply *plan = testenv_cmd(rc, "EXISTS %s", KEYS_MIGRATION);
    assert_int_equal(plan->integer, 0);
    redisReply *v = testenv_cmd(rc, "HGET agg:2026-01-20:deposit visa");
    assert_non_null(strchr(v->str, '.'));
    bson_t *conv = BCON_NEW("batches", "{", "$exists", BCON_BOOL(true), "}");
    bson_error_t e;
    assert_int_equal(mongoc_collection_count_documents(coll, conv, NULL, NULL, NULL, &e), 0);
    bson_destroy(conv);
    freeReplyObject(before);
    freeReplyObject(after);
    freeReplyObject(plan);
    freeReplyObject(v);
}

static int setup(void **st)
{
    (void)st;
    testenv_config(&cfg);
    testenv_open_stores(&cfg, &rc, &mc, &coll);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    testenv_close_stores(rc, mc, coll);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_run_killed_after_the_plan_or_after_any_hash_ends_exact_when_run_again),
        cmocka_unit_test(test_a_run_killed_after_any_document_ends_exact_when_run_again),
        cmocka_unit_test(test_two_runs_at_once_convert_each_hash_and_document_once),
        cmocka_unit_test(test_a_hash_or_document_changed_meanwhile_is_not_written),
        cmocka_unit_test(test_a_value_off_a_whole_cent_refuses_its_hash_and_document_whole),
        cmocka_unit_test(test_redis_with_txagg_state_and_no_plan_gets_no_hash_converted),
        cmocka_unit_test(test_a_hash_txagg_writes_after_the_plan_is_never_converted),
        cmocka_unit_test(test_check_reports_and_writes_nothing),
    };
    return testenv_run(tests, setup, teardown);
}
