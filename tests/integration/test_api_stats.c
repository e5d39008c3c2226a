/* The consistent merge (api/stats.c, api/snapshot.c) against the real
 * redis-server and MongoDB-wire server, step by step: exact answers in every
 * archive state, a retry when the archive moves between the MongoDB read and
 * the version re-check (the race the version exists for), 503 when it keeps
 * moving, the MULTI/EXEC fast path equal to the script and noticing a stale
 * layout, the cold cache sparing MongoDB reads, and corrupt data refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "metrics.h"
#include "mongo.h"
#include "redis.h"
#include "testenv.h"
#include "timeparse.h"

#include "../../api/cold_cache.h"
#include "../../api/stats.h"

static txagg_config cfg;
static rconn *rc;
static mongoc_client_t *mc;
static mongoc_collection_t *coll;
static mongoc_client_pool_t *pool;
static cold_cache *cache;
static stats_env env;
static stats_scratch scratch;

static void cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rconn_ctx(rc), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("redis: %s", r->str);
    freeReplyObject(r);
}

static void hot(const char *day, const char *type, const char *method, long long cents)
{
    char k[64];
    keys_agg(k, sizeof k, day, type);
    cmd("HINCRBY %s %s %lld", k, method, cents);
    cmd("SADD %s %s", KEYS_TRACKED_DAYS, day);
}

static void doc_inc(const char *day, const char *side_method, long long cents, const char *batch)
{
    bson_t *f = BCON_NEW("date", BCON_UTF8(day));
    bson_t *u = batch ? BCON_NEW("$inc", "{", side_method, BCON_INT64(cents), "}", "$addToSet", "{", "batches",
                                 BCON_UTF8(batch), "}")
                      : BCON_NEW("$inc", "{", side_method, BCON_INT64(cents), "}");
    bson_t *o = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t e;
    if (!mongoc_collection_update_one(coll, f, u, o, NULL, &e)) fail_msg("mongo: %s", e.message);
    bson_destroy(f);
    bson_destroy(u);
    bson_destroy(o);
}

/* Freeze one day's deposit hash into batch b (the persistor's step 1). */
static void freeze(const char *b, const char *day)
{
    char from[64], to[96], bk[64];
    keys_agg(from, sizeof from, day, "deposit");
    keys_frozen(to, sizeof to, b, day, "deposit");
    keys_batch(bk, sizeof bk, b);
    cmd("MULTI");
    cmd("RENAME %s %s", from, to);
    cmd("SREM %s %s", KEYS_TRACKED_DAYS, day);
    cmd("HSET %s days %s fence 1 state frozen created 0", bk, day);
    cmd("SADD %s %s", KEYS_ARCHIVE_PENDING, b);
    cmd("INCR %s", KEYS_ARCHIVE_VERSION);
    cmd("EXEC");
}

static int day_of(const char *s)
{
    int64_t d;
    assert_int_equal(ts_parse_day(s, strlen(s), &d), 0);
    return (int)d;
}

static int answer(const char *from, const char *to, char *err, size_t errlen)
{
    return stats_answer(&env, rc, &scratch, day_of(from), day_of(to), err, errlen);
}

static void expect_body(const char *from, const char *to, const char *want)
{
    char err[512] = "";
    int rv = answer(from, to, err, sizeof err);
    if (rv != STATS_OK) fail_msg("status %d: %s", rv, err);
    assert_string_equal(scratch.body, want);
}

static uint64_t counter(const char *name)
{
    return metrics_value(metrics_counter(name, "", NULL));
}

static int setup(void **st)
{
    (void)st;
    testenv_flush_redis();
    testenv_drop_mongo_db();
    testenv_config(&cfg);
    rc = testenv_redis();
    mc = testenv_mongo();
    coll = mongoc_client_get_collection(mc, cfg.mongodb_database, cfg.mongodb_collection);
    char err[256];
    if (mongo_ensure_index(coll, "date", 1, err, sizeof err)) fail_msg("%s", err);
    pool = mongo_pool_new(&cfg, "test", 0, err, sizeof err);
    assert_non_null(pool);
    cache = cold_cache_new(1 << 20);
    env = (stats_env){pool, cfg.mongodb_database, cfg.mongodb_collection, cache, 5};
    stats_init();
    assert_int_equal(stats_scratch_init(&scratch), 0);
    stats_set_after_cold_read_hook(NULL, NULL);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    stats_set_after_cold_read_hook(NULL, NULL);
    stats_scratch_free(&scratch);
    cold_cache_free(cache);
    mongoc_client_pool_destroy(pool);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(mc);
    rconn_free(rc);
    return 0;
}

static void test_every_archive_state_of_a_day_merges_exactly(void **st)
{
    (void)st;
    cmd("SET %s 7", KEYS_ARCHIVE_VERSION);
    cmd("SET %s 2026-01-10", KEYS_ARCHIVED_THROUGH);
    /* 01-02: cold only.  01-03: cold + late hot rows.  01-04: batch B frozen, not yet in the document.
     * 01-05: batch B frozen and already applied to the document.  01-12: frozen, never archived before
     * (its document, already written, is beyond archived_through and must not be read).  01-15: hot. */
    doc_inc("2026-01-02", "deposits.visa", 100, "a1");
    doc_inc("2026-01-03", "withdrawals.paypal", 200, "a1");
    hot("2026-01-03", "withdrawal", "paypal", 3);
    doc_inc("2026-01-04", "deposits.visa", 1000, "a1");
    hot("2026-01-04", "deposit", "visa", 40);
    freeze("B", "2026-01-04");
    doc_inc("2026-01-05", "deposits.visa", 500, "a1");
    hot("2026-01-05", "deposit", "visa", 50);
    freeze("B2", "2026-01-05");
    doc_inc("2026-01-05", "deposits.visa", 50, "B2");
    hot("2026-01-12", "deposit", "crypto", 12);
    freeze("B3", "2026-01-12");
    doc_inc("2026-01-12", "deposits.crypto", 12, "B3");
    hot("2026-01-15", "deposit", "visa", 1);
    hot("2026-01-15", "deposit", "apple_pay", 2);
    const char *want = "{\"data\":{"
                       "\"2026-01-02\":{\"deposits\":{\"visa\":1.0},\"withdrawals\":{}},"
                       "\"2026-01-03\":{\"deposits\":{},\"withdrawals\":{\"paypal\":2.03}},"
                       "\"2026-01-04\":{\"deposits\":{\"visa\":10.4},\"withdrawals\":{}},"
                       "\"2026-01-05\":{\"deposits\":{\"visa\":5.5},\"withdrawals\":{}},"
                       "\"2026-01-12\":{\"deposits\":{\"crypto\":0.12},\"withdrawals\":{}},"
                       "\"2026-01-15\":{\"deposits\":{\"apple_pay\":0.02,\"visa\":0.01},\"withdrawals\":{}}}}";
    expect_body("2026-01-01", "2026-01-31", want); /* the script path */
    expect_body("2026-01-01", "2026-01-31", want); /* the MULTI/EXEC path, cold cache */
    expect_body("2026-01-05", "2026-01-05",
                "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":5.5},\"withdrawals\":{}}}}");
    expect_body("2026-02-01", "2026-02-28", "{\"data\":{}}");
}

/* Between the MongoDB read and the version re-check, the persistor freezes
 * 01-05's late rows and applies them to its document. */
static int hook_calls;
static void move_archive_once(void *arg)
{
    (void)arg;
    if (hook_calls++) return;
    freeze("M", "2026-01-05");
    doc_inc("2026-01-05", "deposits.visa", 5, "M");
}

static void test_archive_moving_during_the_mongo_read_is_retried_not_double_counted(void **st)
{
    (void)st;
    cmd("SET %s 1", KEYS_ARCHIVE_VERSION);
    cmd("SET %s 2026-01-10", KEYS_ARCHIVED_THROUGH);
    doc_inc("2026-01-05", "deposits.visa", 100, "a1");
    hot("2026-01-05", "deposit", "visa", 5);
    uint64_t retries = counter("txagg_api_consistency_retries_total");
    hook_calls = 0;
    stats_set_after_cold_read_hook(move_archive_once, NULL);
    /* Without the re-check this would be hot 5 + document 105 = 1.1. */
    expect_body("2026-01-01", "2026-01-10", "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.05},\"withdrawals\":{}}}}");
    assert_int_equal(hook_calls, 2);
    assert_int_equal(counter("txagg_api_consistency_retries_total"), retries + 1);
}

static void bump_version(void *arg)
{
    (void)arg;
    hook_calls++;
    cmd("INCR %s", KEYS_ARCHIVE_VERSION);
}

static void test_archive_moving_at_every_attempt_gives_up_with_busy(void **st)
{
    (void)st;
    cmd("SET %s 2026-01-10", KEYS_ARCHIVED_THROUGH);
    doc_inc("2026-01-05", "deposits.visa", 100, NULL);
    hook_calls = 0;
    stats_set_after_cold_read_hook(bump_version, NULL);
    char err[256];
    uint64_t exhausted = counter("txagg_api_consistency_exhausted_total");
    assert_int_equal(answer("2026-01-01", "2026-01-10", err, sizeof err), STATS_BUSY);
    assert_int_equal(hook_calls, 5);
    assert_non_null(strstr(err, "moved"));
    assert_int_equal(counter("txagg_api_consistency_exhausted_total"), exhausted + 1);
    /* A range that needs no MongoDB read is not affected. */
    hot("2026-01-20", "deposit", "visa", 9);
    expect_body("2026-01-11", "2026-01-31", "{\"data\":{\"2026-01-20\":{\"deposits\":{\"visa\":0.09},\"withdrawals\":{}}}}");
}

static void test_fast_path_notices_a_changed_layout(void **st)
{
    (void)st;
    hot("2026-03-01", "deposit", "visa", 1);
    expect_body("2026-03-01", "2026-03-31", "{\"data\":{\"2026-03-01\":{\"deposits\":{\"visa\":0.01},\"withdrawals\":{}}}}");
    uint64_t multi0 = metrics_value(metrics_counter("txagg_api_snapshots_total", "", "path=\"multi\""));
    uint64_t script0 = metrics_value(metrics_counter("txagg_api_snapshots_total", "", "path=\"script\""));
    /* same layout: answered by MULTI/EXEC */
    hot("2026-03-01", "deposit", "visa", 1);
    expect_body("2026-03-01", "2026-03-31", "{\"data\":{\"2026-03-01\":{\"deposits\":{\"visa\":0.02},\"withdrawals\":{}}}}");
    assert_int_equal(metrics_value(metrics_counter("txagg_api_snapshots_total", "", "path=\"multi\"")), multi0 + 1);
    /* a new day in range: the transaction sees the tracked set changed and the script reads it */
    hot("2026-03-02", "withdrawal", "paypal", 3);
    expect_body("2026-03-01", "2026-03-31",
                "{\"data\":{\"2026-03-01\":{\"deposits\":{\"visa\":0.02},\"withdrawals\":{}},"
                "\"2026-03-02\":{\"deposits\":{},\"withdrawals\":{\"paypal\":0.03}}}}");
    assert_int_equal(metrics_value(metrics_counter("txagg_api_snapshots_total", "", "path=\"script\"")), script0 + 1);
    /* a pending batch appears: the same */
    hot("2026-03-03", "deposit", "visa", 7);
    expect_body("2026-03-03", "2026-03-03", "{\"data\":{\"2026-03-03\":{\"deposits\":{\"visa\":0.07},\"withdrawals\":{}}}}");
    freeze("P", "2026-03-03");
    expect_body("2026-03-03", "2026-03-03", "{\"data\":{\"2026-03-03\":{\"deposits\":{\"visa\":0.07},\"withdrawals\":{}}}}");
    expect_body("2026-03-03", "2026-03-03", "{\"data\":{\"2026-03-03\":{\"deposits\":{\"visa\":0.07},\"withdrawals\":{}}}}");
}

static void test_cold_cache_spares_mongodb_until_the_version_moves(void **st)
{
    (void)st;
    cmd("SET %s 3", KEYS_ARCHIVE_VERSION);
    cmd("SET %s 2026-01-31", KEYS_ARCHIVED_THROUGH);
    doc_inc("2026-01-05", "deposits.visa", 100, NULL);
    uint64_t reads = counter("txagg_api_mongo_reads_total");
    const char *want = "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.0},\"withdrawals\":{}}}}";
    expect_body("2026-01-01", "2026-01-31", want);
    expect_body("2026-01-01", "2026-01-31", want);
    expect_body("2026-01-03", "2026-01-07", want);
    assert_int_equal(counter("txagg_api_mongo_reads_total"), reads + 1);
    /* The document changes only with a version bump (the contract): then it is read again. */
    doc_inc("2026-01-05", "deposits.visa", 1, NULL);
    cmd("INCR %s", KEYS_ARCHIVE_VERSION);
    expect_body("2026-01-01", "2026-01-31", "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.01},\"withdrawals\":{}}}}");
    assert_int_equal(counter("txagg_api_mongo_reads_total"), reads + 2);
}

static void expect_internal(const char *from, const char *to, const char *detail)
{
    char err[512] = "";
    assert_int_equal(answer(from, to, err, sizeof err), STATS_INTERNAL);
    if (!strstr(err, detail)) fail_msg("detail '%s' lacks '%s'", err, detail);
}

static void test_corrupt_data_is_refused_not_guessed(void **st)
{
    (void)st;
    char k[64];
    keys_agg(k, sizeof k, "2026-04-01", "deposit");
    cmd("HSET %s visa 12.5", k);
    cmd("SADD %s 2026-04-01", KEYS_TRACKED_DAYS);
    expect_internal("2026-04-01", "2026-04-01", "is not integer cents");
    expect_internal("2026-04-01", "2026-04-01", "is not integer cents"); /* the fast path too */
    cmd("DEL %s", k);
    cmd("HSET %s Visa 12", k);
    expect_internal("2026-04-01", "2026-04-01", "not a payment method");
    cmd("DEL %s", k);
    cmd("SREM %s 2026-04-01", KEYS_TRACKED_DAYS);

    cmd("SET %s 2026-05-31", KEYS_ARCHIVED_THROUGH);
    bson_t *f = BCON_NEW("date", BCON_UTF8("2026-05-02"));
    bson_t *u = BCON_NEW("$set", "{", "deposits.visa", BCON_DOUBLE(343.4), "}");
    bson_t *o = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t e;
    assert_true(mongoc_collection_update_one(coll, f, u, o, NULL, &e));
    bson_destroy(f);
    bson_destroy(u);
    bson_destroy(o);
    expect_internal("2026-05-01", "2026-05-03", "2026-05-02.deposits.visa is not integer cents");

    cmd("SADD %s ghost", KEYS_ARCHIVE_PENDING);
    expect_internal("2026-06-01", "2026-06-03", "archive batch ghost is pending but archive:batch:ghost is missing");
}

static void test_sum_overflow_is_an_error(void **st)
{
    (void)st;
    hot("2026-07-01", "deposit", "visa", INT64_MAX);
    cmd("SET %s 2026-07-31", KEYS_ARCHIVED_THROUGH);
    doc_inc("2026-07-01", "deposits.visa", 1, NULL);
    expect_internal("2026-07-01", "2026-07-01", "amount overflow on 2026-07-01 visa");
}

static void test_redis_unreachable_is_unavailable(void **st)
{
    (void)st;
    txagg_config bad = cfg;
    bad.redis_port = 1;
    rconn *down = rconn_new(&bad, "down");
    char err[256];
    assert_int_equal(stats_answer(&env, down, &scratch, day_of("2026-01-01"), day_of("2026-01-02"), err, sizeof err),
                     STATS_UNAVAILABLE);
    assert_non_null(strstr(err, "Redis unavailable"));
    rconn_free(down);
}

int main(void)
{
    if (!testenv_have_servers()) return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_archive_state_of_a_day_merges_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_moving_during_the_mongo_read_is_retried_not_double_counted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_moving_at_every_attempt_gives_up_with_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_path_notices_a_changed_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cold_cache_spares_mongodb_until_the_version_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_data_is_refused_not_guessed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sum_overflow_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_unreachable_is_unavailable, setup, teardown),
    };
    int rc_ = cmocka_run_group_tests(tests, NULL, NULL);
    mongo_global_cleanup();
    return rc_;
}
