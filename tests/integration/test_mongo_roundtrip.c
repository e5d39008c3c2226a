/* A daily document round-trips through the real MongoDB-wire server with
 * mongo-c-driver: the guarded upsert of hand-off 3 (docs/CONTRACTS.md "Exactly
 * once") applies once, its replay is a duplicate-key error (11000, error
 * API 2), and cents stay exact 64-bit integers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "config.h"
#include "mongo.h"
#include "testenv.h"

static mongoc_client_t *client;
static mongoc_collection_t *coll;

static int setup(void **st)
{
    (void)st;
    testenv_drop_mongo_db();
    txagg_config cfg;
    testenv_config(&cfg);
    client = testenv_mongo();
    coll = mongoc_client_get_collection(client, cfg.mongodb_database, cfg.mongodb_collection);
    char err[256];
    if (mongo_ensure_index(coll, "date", 1, err, sizeof err) != 0) fail_msg("%s", err);
    if (mongo_ensure_index(coll, "date", 1, err, sizeof err) != 0) fail_msg("twice: %s", err);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    return 0;
}

/* update({date, batches: {$ne: batch}}, {$inc: {deposits.visa: cents}, $addToSet: {batches: batch}}, upsert) */
static bool apply(const char *date, const char *batch, int64_t cents, bson_error_t *e)
{
    bson_t *filter = BCON_NEW("date", BCON_UTF8(date), "batches", "{", "$ne", BCON_UTF8(batch), "}");
    bson_t *update = BCON_NEW("$inc", "{", "deposits.visa", BCON_INT64(cents), "}", "$addToSet", "{", "batches",
                              BCON_UTF8(batch), "}");
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    bool ok = mongoc_collection_update_one(coll, filter, update, opts, NULL, e);
    bson_destroy(filter);
    bson_destroy(update);
    bson_destroy(opts);
    return ok;
}

static int64_t read_visa(const char *date, int *nbatches)
{
    bson_t *filter = BCON_NEW("date", BCON_UTF8(date));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    int64_t v = -1;
    *nbatches = -1;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        assert_true(bson_iter_init_find(&it, doc, "deposits"));
        bson_iter_t sub;
        assert_true(bson_iter_recurse(&it, &sub));
        assert_true(bson_iter_find(&sub, "visa"));
        assert_int_equal(bson_iter_type(&sub), BSON_TYPE_INT64);
        v = bson_iter_int64(&sub);
        assert_true(bson_iter_init_find(&it, doc, "batches"));
        bson_iter_t arr;
        assert_true(bson_iter_recurse(&it, &arr));
        *nbatches = 0;
        while (bson_iter_next(&arr)) (*nbatches)++;
    }
    bson_error_t e;
    assert_false(mongoc_cursor_error(cur, &e));
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    return v;
}

static void test_guarded_upsert_applies_each_batch_once(void **st)
{
    (void)st;
    bson_error_t e;
    int nb;
    assert_true(apply("2026-01-05", "b1", INT64_C(168786), &e));
    assert_int_equal(read_visa("2026-01-05", &nb), 168786);
    assert_int_equal(nb, 1);

    /* Replay of the same batch: no document matches the guard, the upsert
     * collides on the unique date → 11000 = "already applied". */
    assert_false(apply("2026-01-05", "b1", INT64_C(168786), &e));
    assert_true(mongo_is_duplicate_key(&e));
    assert_int_equal(e.domain, MONGOC_ERROR_SERVER);
    assert_int_equal(e.code, 11000);
    assert_int_equal(read_visa("2026-01-05", &nb), 168786);

    assert_true(apply("2026-01-05", "b2", INT64_C(1), &e));
    assert_int_equal(read_visa("2026-01-05", &nb), 168787);
    assert_int_equal(nb, 2);
}

static void test_cents_beyond_32_bits_stay_exact(void **st)
{
    (void)st;
    bson_error_t e;
    int nb;
    int64_t big = INT64_C(100000000000); /* one billion dollars in cents */
    for (int i = 0; i < 30; i++) {
        char b[16];
        snprintf(b, sizeof b, "b%d", i);
        assert_true(apply("2026-02-01", b, big, &e));
    }
    assert_int_equal(read_visa("2026-02-01", &nb), 30 * big);
    assert_int_equal(nb, 30);
}

static void test_ping_reaches_the_server(void **st)
{
    (void)st;
    txagg_config cfg;
    testenv_config(&cfg);
    char err[256];
    assert_int_equal(mongo_ping(client, &cfg, err, sizeof err), 0);
}

static void test_unreachable_server_fails_within_the_timeout(void **st)
{
    (void)st;
    txagg_config cfg;
    testenv_config(&cfg);
    snprintf(cfg.mongodb_uri, sizeof cfg.mongodb_uri, "mongodb://127.0.0.1:1");
    cfg.mongodb_timeout_ms = 300;
    char err[256];
    mongoc_client_t *c = mongo_client_new(&cfg, "test", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(mongo_ping(c, &cfg, err, sizeof err), -1);
    assert_true(strlen(err) > 0);
    mongoc_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_guarded_upsert_applies_each_batch_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cents_beyond_32_bits_stay_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_reaches_the_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_server_fails_within_the_timeout, setup, teardown),
    };
    return testenv_run(tests, NULL, NULL);
}
