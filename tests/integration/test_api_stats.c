/* The consistent merge (api/stats.c, api/snapshot.c) against the real
 * redis-server and MongoDB-wire server, step by step: exact answers in every
 * archive state, a retry when the archive moves between the MongoDB read and
 * the version re-check (the race the version exists for), 503 when it keeps
 * moving, the MULTI/EXEC fast path equal to the script and noticing a stale
 * layout, the cold cache sparing MongoDB reads, one MongoDB read for many
 * concurrent requests of the same range and version (single flight), and
 * corrupt data refused. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "metrics.h"
#include "mongo.h"
#include "redis.h"
#include "testenv.h"
#include "timeparse.h"

#include "../../api/answer_cache.h"
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

static void hot(const char *day, const char *type, const char *method, long long cents)
{
    char k[64];
    keys_agg(k, sizeof k, NULL, day, type);
    testenv_cmd_ok(rc, "HINCRBY %s %s %lld", k, method, cents);
    testenv_cmd_ok(rc, "SADD %s %s", KEYS_TRACKED_DAYS, day);
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
    keys_agg(from, sizeof from, NULL, day, "deposit");
    keys_frozen(to, sizeof to, NULL, b, day, "deposit");
    keys_batch(bk, sizeof bk, NULL, b);
    testenv_cmd_ok(rc, "MULTI");
    testenv_cmd_ok(rc, "RENAME %s %s", from, to);
    testenv_cmd_ok(rc, "SREM %s %s", KEYS_TRACKED_DAYS, day);
    testenv_cmd_ok(rc, "HSET %s days %s fence 1 state frozen created 0", bk, day);
    testenv_cmd_ok(rc, "SADD %s %s", KEYS_ARCHIVE_PENDING, b);
    testenv_cmd_ok(rc, "INCR %s", KEYS_ARCHIVE_VERSION);
    testenv_cmd_ok(rc, "EXEC");
}

static int day_of(const char *s)
{
    int64_t d;
    assert_int_equal(ts_parse_day(s, strlen(s), &d), 0);
    return (int)d;
}

static int answer(const char *from, const char *to, char *err, size_t errlen)
{
    return stats_answer(&env, rc, &scratch, day_of(from), day_of(to), STATS_JSON, err, errlen);
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
    env = (stats_env){pool, cfg.mongodb_database, cfg.mongodb_collection, cache, 5, NULL};
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
    testenv_cmd_ok(rc, "SET %s 7", KEYS_ARCHIVE_VERSION);
    testenv_cmd_ok(rc, "SET %s 2026-01-10", KEYS_ARCHIVED_THROUGH);
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
    testenv_cmd_ok(rc, "SET %s 1", KEYS_ARCHIVE_VERSION);
    testenv_cmd_ok(rc, "SET %s 2026-01-10", KEYS_ARCHIVED_THROUGH);
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
    testenv_cmd_ok(rc, "INCR %s", KEYS_ARCHIVE_VERSION);
}

static void test_archive_moving_at_every_attempt_gives_up_with_busy(void **st)
{
    (void)st;
    testenv_cmd_ok(rc, "SET %s 2026-01-10", KEYS_ARCHIVED_THROUGH);
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
    testenv_cmd_ok(rc, "SET %s 3", KEYS_ARCHIVE_VERSION);
    testenv_cmd_ok(rc, "SET %s 2026-01-31", KEYS_ARCHIVED_THROUGH);
    doc_inc("2026-01-05", "deposits.visa", 100, NULL);
    uint64_t reads = counter("txagg_api_mongo_reads_total");
    const char *want = "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.0},\"withdrawals\":{}}}}";
    expect_body("2026-01-01", "2026-01-31", want);
    expect_body("2026-01-01", "2026-01-31", want);
    expect_body("2026-01-03", "2026-01-07", want);
    assert_int_equal(counter("txagg_api_mongo_reads_total"), reads + 1);
    /* The document changes only with a version bump (the contract): then it is read again. */
    doc_inc("2026-01-05", "deposits.visa", 1, NULL);
    testenv_cmd_ok(rc, "INCR %s", KEYS_ARCHIVE_VERSION);
    expect_body("2026-01-01", "2026-01-31", "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.01},\"withdrawals\":{}}}}");
    assert_int_equal(counter("txagg_api_mongo_reads_total"), reads + 2);
}

/* The api's MongoDB reads are majority reads: a day document a replica-set
 * failover could roll back is never served. */
static int finds, majority_finds;
static void on_find(const mongoc_apm_command_started_t *ev)
{
    if (strcmp(mongoc_apm_command_started_get_command_name(ev), "find") != 0) return;
    finds++;
    bson_iter_t it, level;
    const bson_t *c = mongoc_apm_command_started_get_command(ev);
    if (bson_iter_init(&it, c) && bson_iter_find_descendant(&it, "readConcern.level", &level) &&
        BSON_ITER_HOLDS_UTF8(&level) && !strcmp(bson_iter_utf8(&level, NULL), "majority"))
        majority_finds++;
}

static void test_cold_reads_are_majority_reads(void **st)
{
    (void)st;
    mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new();
    mongoc_apm_set_command_started_cb(cbs, on_find);
    assert_true(mongoc_client_pool_set_apm_callbacks(pool, cbs, NULL)); /* before the first pop */
    mongoc_apm_callbacks_destroy(cbs);
    finds = majority_finds = 0;
    testenv_cmd_ok(rc, "SET %s 3", KEYS_ARCHIVE_VERSION);
    testenv_cmd_ok(rc, "SET %s 2026-01-31", KEYS_ARCHIVED_THROUGH);
    doc_inc("2026-01-05", "deposits.visa", 100, NULL);
    expect_body("2026-01-01", "2026-01-31", "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.0},\"withdrawals\":{}}}}");
    assert_int_equal(finds, 1);
    assert_int_equal(majority_finds, 1);
}

/* ---- single flight: many requests at once on a cold range ------------------ */

#define RACERS 8

typedef struct racer {
    int32_t from, to;
    int rv;
    char err[256];
    char body[1024];
} racer;

static atomic_int racers_in;

static void *race(void *arg)
{
    racer *r = arg;
    stats_scratch sc;
    rconn *c = rconn_new(&cfg, "racer");
    r->rv = STATS_INTERNAL;
    snprintf(r->err, sizeof r->err, "racer set-up failed");
    if (c && !stats_scratch_init(&sc)) {
        atomic_fetch_add(&racers_in, 1);
        r->rv = stats_answer(&env, c, &sc, r->from, r->to, STATS_JSON, r->err, sizeof r->err);
        if (r->rv == STATS_OK) snprintf(r->body, sizeof r->body, "%s", sc.body);
        stats_scratch_free(&sc);
    }
    rconn_free(c);
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* After the first MongoDB read: hold the reader until every other racer
 * waits for it (or 30 s, a slow machine), then, in the "moved" mode, bump
 * the version as a freeze would.  Without single flight nobody waits: every
 * racer reads MongoDB itself meanwhile. */
static int hold_mode, holds;
static void hold_first_reader(void *arg)
{
    (void)arg;
    if (__atomic_fetch_add(&holds, 1, __ATOMIC_SEQ_CST)) return;
    double end = now_s() + 30;
    while (cold_cache_waiting(cache) < RACERS - 1 && now_s() < end) usleep(2000);
    if (hold_mode == 1) {
        redisReply *r = rconn_cmd(rc, "INCR %s", KEYS_ARCHIVE_VERSION); /* this thread only: the main one waits */
        if (r) freeReplyObject(r);
    }
}

/* RACERS concurrent reads of January 2026, the first cold reader held as
 * hold says (hold_mode). */
static void race_january(racer *rs, int hold)
{
    pthread_t th[RACERS];
    hold_mode = hold;
    atomic_store(&racers_in, 0);
    holds = 0;
    stats_set_after_cold_read_hook(hold_first_reader, NULL);
    for (int i = 0; i < RACERS; i++) {
        rs[i] = (racer){.from = day_of("2026-01-01"), .to = day_of("2026-01-31")};
        assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) pthread_join(th[i], NULL);
    stats_set_after_cold_read_hook(NULL, NULL);
    assert_int_equal(atomic_load(&racers_in), RACERS);
}

/* race_january: every racer answers exactly want. */
static void race_january_answering(int hold, const char *want)
{
    racer rs[RACERS];
    race_january(rs, hold);
    for (int i = 0; i < RACERS; i++) {
        if (rs[i].rv != STATS_OK) fail_msg("racer %d: status %d: %s", i, rs[i].rv, rs[i].err);
        assert_string_equal(rs[i].body, want);
    }
}

static void seed_cold_and_hot(void)
{
    testenv_cmd_ok(rc, "SET %s 4", KEYS_ARCHIVE_VERSION);
    testenv_cmd_ok(rc, "SET %s 2026-01-20", KEYS_ARCHIVED_THROUGH);
    doc_inc("2026-01-02", "deposits.visa", 100, "a1");
    doc_inc("2026-01-07", "withdrawals.paypal", 250, "a1");
    doc_inc("2026-01-19", "deposits.crypto", 7, "a2");
    hot("2026-01-19", "deposit", "crypto", 3); /* a late row on an archived day */
    hot("2026-01-25", "withdrawal", "visa", 40);
}

static const char *const cold_and_hot_want = "{\"data\":{"
                                             "\"2026-01-02\":{\"deposits\":{\"visa\":1.0},\"withdrawals\":{}},"
                                             "\"2026-01-07\":{\"deposits\":{},\"withdrawals\":{\"paypal\":2.5}},"
                                             "\"2026-01-19\":{\"deposits\":{\"crypto\":0.1},\"withdrawals\":{}},"
                                             "\"2026-01-25\":{\"deposits\":{},\"withdrawals\":{\"visa\":0.4}}}}";

static void test_concurrent_first_touches_of_the_cold_days_make_one_mongodb_read(void **st)
{
    (void)st;
    seed_cold_and_hot();
    uint64_t reads = counter("txagg_api_mongo_reads_total"), misses = counter("txagg_api_cold_cache_misses_total");
    race_january_answering(0, cold_and_hot_want);
    assert_int_equal(counter("txagg_api_mongo_reads_total") - reads, 1);
    assert_int_equal(counter("txagg_api_cold_cache_misses_total") - misses, 1);
    assert_int_equal(cold_cache_waiting(cache), 0);
    /* a range inside the one read is a hit too */
    expect_body("2026-01-07", "2026-01-07", "{\"data\":{\"2026-01-07\":{\"deposits\":{},\"withdrawals\":{\"paypal\":2.5}}}}");
    assert_int_equal(counter("txagg_api_mongo_reads_total") - reads, 1);
}

static void test_a_version_moved_during_a_shared_read_restarts_every_waiter(void **st)
{
    (void)st;
    seed_cold_and_hot();
    uint64_t reads = counter("txagg_api_mongo_reads_total"), retries = counter("txagg_api_consistency_retries_total");
    race_january_answering(1, cold_and_hot_want);
    /* one read per (range, version): the moved one and the one after */
    assert_int_equal(counter("txagg_api_mongo_reads_total") - reads, 2);
    assert_int_equal(counter("txagg_api_consistency_retries_total") - retries, RACERS);
}

static void test_a_failed_shared_read_fails_its_waiters_and_the_next_request_reads_again(void **st)
{
    (void)st;
    seed_cold_and_hot();
    bson_t *f = BCON_NEW("date", BCON_UTF8("2026-01-07"));
    bson_t *u = BCON_NEW("$set", "{", "deposits.visa", BCON_DOUBLE(1.5), "}");
    bson_error_t e;
    assert_true(mongoc_collection_update_one(coll, f, u, NULL, NULL, &e));
    bson_destroy(u);
    uint64_t reads = counter("txagg_api_mongo_reads_total");
    racer rs[RACERS];
    race_january(rs, 0);
    for (int i = 0; i < RACERS; i++) {
        assert_int_equal(rs[i].rv, STATS_INTERNAL);
        if (!strstr(rs[i].err, "2026-01-07.deposits.visa is not integer cents"))
            fail_msg("racer %d: detail '%s'", i, rs[i].err);
    }
    assert_int_equal(counter("txagg_api_mongo_reads_total") - reads, 1); /* the waiters got the reader's failure */
    assert_int_equal(cold_cache_waiting(cache), 0);
    /* nothing was remembered: once the document is repaired, the next request reads it again */
    u = BCON_NEW("$unset", "{", "deposits.visa", BCON_UTF8(""), "}");
    assert_true(mongoc_collection_update_one(coll, f, u, NULL, NULL, &e));
    bson_destroy(u);
    bson_destroy(f);
    uint64_t before = counter("txagg_api_mongo_reads_total");
    expect_body("2026-01-01", "2026-01-31", cold_and_hot_want);
    assert_int_equal(counter("txagg_api_mongo_reads_total") - before, 1);
}

/* ---- the answer cache: one MGET of the versions for a repeated query ------- */

static void expect_cached_body(const stats_env *e, const char *from, const char *to, const char *want)
{
    char err[512] = "";
    int rv = stats_answer(e, rc, &scratch, day_of(from), day_of(to), STATS_JSON, err, sizeof err);
    if (rv != STATS_OK) fail_msg("status %d: %s", rv, err);
    assert_string_equal(scratch.body, want);
    assert_int_equal(scratch.blen, strlen(want));
}

static void test_answer_cache_serves_a_body_only_at_the_versions_and_redis_history_it_was_computed_at(void **st)
{
    (void)st;
    stats_env ae = env;
    ae.answers = answer_cache_new(1 << 20);
    assert_non_null(ae.answers);
    metric *cached = metrics_counter("txagg_api_snapshots_total", "", "path=\"answer_cache\"");
    testenv_cmd_ok(rc, "SET %s 2026-01-10", KEYS_ARCHIVED_THROUGH);
    testenv_cmd_ok(rc, "SET %s 2", KEYS_ARCHIVE_VERSION);
    testenv_cmd_ok(rc, "SET %s 40", KEYS_HOT_VERSION);
    doc_inc("2026-01-05", "deposits.visa", 100, "a1");
    hot("2026-01-12", "deposit", "visa", 7);
    const char *v1 = "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.0},\"withdrawals\":{}},"
                     "\"2026-01-12\":{\"deposits\":{\"visa\":0.07},\"withdrawals\":{}}}}";
    uint64_t hits = metrics_value(cached);
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v1);
    assert_int_equal(metrics_value(cached), hits);
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v1);
    assert_int_equal(metrics_value(cached), hits + 1);
    /* The CSV of the same range is another entry. */
    char err[256];
    assert_int_equal(stats_answer(&ae, rc, &scratch, day_of("2026-01-01"), day_of("2026-01-31"), STATS_CSV, err,
                                  sizeof err),
                     STATS_OK);
    assert_non_null(strstr(scratch.body, "2026-01-12,deposit,visa,0.07"));
    assert_int_equal(metrics_value(cached), hits + 1);

    /* A write outside the contract (no version bump) is not seen: the cached body is served — which shows it
     * is the cache answering. */
    hot("2026-01-12", "deposit", "visa", 1);
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v1);
    /* The aggregator bumps the hot version with every write: the body is computed again. */
    testenv_cmd_ok(rc, "INCR %s", KEYS_HOT_VERSION);
    const char *v2 = "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.0},\"withdrawals\":{}},"
                     "\"2026-01-12\":{\"deposits\":{\"visa\":0.08},\"withdrawals\":{}}}}";
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v2);
    /* A freeze bumps the archive version: computed again, and still exact. */
    freeze("Z", "2026-01-12");
    hot("2026-01-13", "withdrawal", "paypal", 5); /* without a bump: only the freeze's bump makes it seen */
    const char *v3 = "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.0},\"withdrawals\":{}},"
                     "\"2026-01-12\":{\"deposits\":{\"visa\":0.08},\"withdrawals\":{}},"
                     "\"2026-01-13\":{\"deposits\":{},\"withdrawals\":{\"paypal\":0.05}}}}";
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v3);
    hits = metrics_value(cached);
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v3);
    assert_int_equal(metrics_value(cached), hits + 1);

    /* The versions are taken from the snapshot the body was computed from, not read later: a bump between
     * the MongoDB read and the re-check (the retry) keys the body with the versions of the attempt that
     * succeeded. */
    hook_calls = 0;
    stats_set_after_cold_read_hook(move_archive_once, NULL); /* freezes 01-05's late rows, applies them */
    hot("2026-01-05", "deposit", "visa", 5);
    testenv_cmd_ok(rc, "INCR %s", KEYS_HOT_VERSION);
    testenv_cmd_ok(rc, "INCR %s", KEYS_ARCHIVE_VERSION); /* the cold cache misses: the MongoDB read runs the hook */
    const char *v4 = "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.05},\"withdrawals\":{}},"
                     "\"2026-01-12\":{\"deposits\":{\"visa\":0.08},\"withdrawals\":{}},"
                     "\"2026-01-13\":{\"deposits\":{},\"withdrawals\":{\"paypal\":0.05}}}}";
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v4);
    stats_set_after_cold_read_hook(NULL, NULL);
    hits = metrics_value(cached);
    assert_int_equal(hook_calls, 2); /* the read that saw the archive move, and the one after */
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v4);
    assert_int_equal(metrics_value(cached), hits + 1);

    /* A reconnect to the same server changes nothing: the body is still served from the cache. */
    rconn_drop(rc);
    hits = metrics_value(cached);
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v4);
    assert_int_equal(metrics_value(cached), hits + 1);

    /* A failover: the server behind the address is a promoted replica (a new replication history) that holds
     * other contents under the same pair of versions (it lacked the last acknowledged writes, then climbed
     * back to the same counters).  Here: a write without a bump, then this server made a replica and promoted
     * again (REPLICAOF, REPLICAOF NO ONE: a new replication id), the connection lost meanwhile.  The body is
     * computed again, then served from the cache again. */
    hot("2026-01-12", "deposit", "visa", 3);
    testenv_cmd_ok(rc, "REPLICAOF 127.0.0.1 1"); /* a primary that never answers: the data stays */
    testenv_cmd_ok(rc, "REPLICAOF NO ONE");
    rconn_drop(rc);
    const char *v5 = "{\"data\":{\"2026-01-05\":{\"deposits\":{\"visa\":1.05},\"withdrawals\":{}},"
                     "\"2026-01-12\":{\"deposits\":{\"visa\":0.11},\"withdrawals\":{}},"
                     "\"2026-01-13\":{\"deposits\":{},\"withdrawals\":{\"paypal\":0.05}}}}";
    hits = metrics_value(cached);
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v5);
    assert_int_equal(metrics_value(cached), hits);
    expect_cached_body(&ae, "2026-01-01", "2026-01-31", v5);
    assert_int_equal(metrics_value(cached), hits + 1);
    answer_cache_free(ae.answers);
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
    keys_agg(k, sizeof k, NULL, "2026-04-01", "deposit");
    testenv_cmd_ok(rc, "HSET %s visa 12.5", k);
    testenv_cmd_ok(rc, "SADD %s 2026-04-01", KEYS_TRACKED_DAYS);
    expect_internal("2026-04-01", "2026-04-01", "is not integer cents");
    expect_internal("2026-04-01", "2026-04-01", "is not integer cents"); /* the fast path too */
    testenv_cmd_ok(rc, "DEL %s", k);
    testenv_cmd_ok(rc, "HSET %s Visa 12", k);
    expect_internal("2026-04-01", "2026-04-01", "not a payment method");
    testenv_cmd_ok(rc, "DEL %s", k);
    testenv_cmd_ok(rc, "SREM %s 2026-04-01", KEYS_TRACKED_DAYS);

    testenv_cmd_ok(rc, "SET %s 2026-05-31", KEYS_ARCHIVED_THROUGH);
    bson_t *f = BCON_NEW("date", BCON_UTF8("2026-05-02"));
    bson_t *u = BCON_NEW("$set", "{", "deposits.visa", BCON_DOUBLE(343.4), "}");
    bson_t *o = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t e;
    assert_true(mongoc_collection_update_one(coll, f, u, o, NULL, &e));
    bson_destroy(f);
    bson_destroy(u);
    bson_destroy(o);
    expect_internal("2026-05-01", "2026-05-03", "2026-05-02.deposits.visa is not integer cents");

    testenv_cmd_ok(rc, "SADD %s ghost", KEYS_ARCHIVE_PENDING);
    expect_internal("2026-06-01", "2026-06-03", "archive batch ghost is pending but archive:batch:ghost is missing");
}

static void test_sum_overflow_is_an_error(void **st)
{
    (void)st;
    hot("2026-07-01", "deposit", "visa", INT64_MAX);
    testenv_cmd_ok(rc, "SET %s 2026-07-31", KEYS_ARCHIVED_THROUGH);
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
    assert_int_equal(stats_answer(&env, down, &scratch, day_of("2026-01-01"), day_of("2026-01-02"), STATS_JSON, err,
                                  sizeof err),
                     STATS_UNAVAILABLE);
    assert_non_null(strstr(err, "Redis unavailable"));
    rconn_free(down);
}

/* /stats.csv: the same merge, one line per (day, type, method), amounts with
 * exactly two decimals printed from the cents (beyond 2^53 too). */
static void test_csv_prints_the_merged_cells_with_exact_cents(void **st)
{
    (void)st;
    testenv_cmd_ok(rc, "SET %s 2026-01-10", KEYS_ARCHIVED_THROUGH);
    doc_inc("2026-01-02", "deposits.visa", 34340, "a1");
    hot("2026-01-02", "deposit", "visa", 5);
    hot("2026-01-02", "withdrawal", "paypal", 10000);
    hot("2026-01-15", "deposit", "big", INT64_C(900719925474099317));
    hot("2026-01-15", "withdrawal", "cent", 1);
    char err[512] = "";
    int rv = stats_answer(&env, rc, &scratch, day_of("2026-01-01"), day_of("2026-01-31"), STATS_CSV, err, sizeof err);
    if (rv != STATS_OK) fail_msg("status %d: %s", rv, err);
    assert_string_equal(scratch.body, "date,type,method,amount\r\n"
                                      "2026-01-02,deposit,visa,343.45\r\n"
                                      "2026-01-02,withdrawal,paypal,100.00\r\n"
                                      "2026-01-15,deposit,big,9007199254740993.17\r\n"
                                      "2026-01-15,withdrawal,cent,0.01\r\n");
    assert_int_equal(scratch.blen, strlen(scratch.body));
    rv = stats_answer(&env, rc, &scratch, day_of("2025-01-01"), day_of("2025-01-31"), STATS_CSV, err, sizeof err);
    assert_int_equal(rv, STATS_OK);
    assert_string_equal(scratch.body, "date,type,method,amount\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_archive_state_of_a_day_merges_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_moving_during_the_mongo_read_is_retried_not_double_counted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_moving_at_every_attempt_gives_up_with_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_path_notices_a_changed_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cold_cache_spares_mongodb_until_the_version_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cold_reads_are_majority_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_touches_of_the_cold_days_make_one_mongodb_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_version_moved_during_a_shared_read_restarts_every_waiter, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_shared_read_fails_its_waiters_and_the_next_request_reads_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_cache_serves_a_body_only_at_the_versions_and_redis_history_it_was_computed_at, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_data_is_refused_not_guessed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sum_overflow_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_unreachable_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_prints_the_merged_cells_with_exact_cents, setup, teardown),
    };
    return testenv_run(tests, NULL, NULL);
}
