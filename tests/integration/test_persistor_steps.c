/* The archival steps against the real Redis and MongoDB-wire server: what is
 * eligible (the boundary day is archived, the day after stays hot), the shape
 * of the daily document, late rows merged exactly, the lease and its fence,
 * the bounded `batches` array, and the refusals that keep data safe (no
 * clean before MongoDB confirmed, no second pending batch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../persistor/archive_batch.h"
#include "../../persistor/archive_write.h"
#include "../../persistor/clean.h"
#include "../../persistor/cycle.h"
#include "../../persistor/freeze.h"
#include "../../persistor/lease.h"
#include "../../persistor/persistor.h"
#include "../../persistor/recover.h"
#include "archive_env.h"
#include "keys.h"
#include "mongo.h"
#include "signals.h"
#include "testenv.h"

static rconn *rc;
static mongoc_client_t *mc;
static mongoc_collection_t *coll;

static int setup(void **s)
{
    (void)s;
    archive_env_reset(NULL);
    txagg_config cfg;
    archive_env_config(&cfg);
    testenv_open_stores(&cfg, &rc, &mc, &coll);
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    testenv_close_stores(rc, mc, coll);
    return 0;
}

static long long redis_int(const char *fmt, const char *arg)
{
    redisReply *r = rconn_cmd(rc, fmt, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                  : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                                                  : 0; /* a missing counter is 0, as INCR starts it */
    freeReplyObject(r);
    return v;
}

/* One row the way the aggregator applies it: HINCRBY + SADD, atomically. */
static void hot_row(const char *day, const char *type, const char *method, long long cents)
{
    char key[128];
    keys_agg(key, sizeof key, NULL, day, type);
    redisReply *r = rconn_cmd(rc, "MULTI");
    freeReplyObject(r);
    r = rconn_cmd(rc, "HINCRBY %s %s %lld", key, method, cents);
    freeReplyObject(r);
    r = rconn_cmd(rc, "SADD %s %s", KEYS_TRACKED_DAYS, day);
    freeReplyObject(r);
    r = rconn_cmd(rc, "EXEC");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
}

static void set_clock(const char *iso)
{
    redisReply *r = rconn_cmd(rc, "SET %s %s", KEYS_VIRTUAL_CLOCK, iso);
    freeReplyObject(r);
}

/* The lease holder, with one row of 2026-07-01 frozen (its batch id in id). */
static persistor *holder_with_a_frozen_day(char id[PST_ID_MAX])
{
    hot_row("2026-07-01", "deposit", "visa", 5);
    set_clock("2026-07-30T00:00:00Z");
    persistor *p = archive_env_holder();
    assert_int_equal(freeze_batch(p, id, PST_ID_MAX), PST_OK);
    return p;
}

static int exists(const char *key) { return redis_int("EXISTS %s", key) == 1; }

static int tracked(const char *day)
{
    redisReply *r = rconn_cmd(rc, "SISMEMBER %s %s", KEYS_TRACKED_DAYS, day);
    int v = (int)r->integer;
    freeReplyObject(r);
    return v;
}

/* The document of day (NULL when none); free with bson_destroy. */
static bson_t *doc_of(const char *day)
{
    bson_t *filter = BCON_NEW("date", BCON_UTF8(day));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *d;
    bson_t *copy = NULL;
    int n = 0;
    while (mongoc_cursor_next(cur, &d)) {
        if (!copy) copy = bson_copy(d);
        n++;
    }
    bson_error_t e;
    assert_false(mongoc_cursor_error(cur, &e));
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    assert_true(n <= 1); /* unique date */
    return copy;
}

/* deposits.<m> / withdrawals.<m> of a document: the int64, or -1 when absent
 * (fails when present but not an int64). */
static int64_t cents_in(const bson_t *doc, const char *path)
{
    bson_iter_t it, f;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &f)) return -1;
    assert_int_equal(bson_iter_type(&f), BSON_TYPE_INT64);
    return bson_iter_int64(&f);
}

/* The cents at path in the document of day (which must exist). */
static int64_t doc_cents(const char *day, const char *path)
{
    bson_t *d = doc_of(day);
    assert_non_null(d);
    int64_t v = cents_in(d, path);
    bson_destroy(d);
    return v;
}

static int batches_of(const bson_t *doc, char ids[][PST_ID_MAX], int max)
{
    bson_iter_t it, arr;
    assert_true(bson_iter_init_find(&it, doc, "batches"));
    assert_true(BSON_ITER_HOLDS_ARRAY(&it));
    assert_true(bson_iter_recurse(&it, &arr));
    int n = 0;
    while (bson_iter_next(&arr)) {
        assert_true(BSON_ITER_HOLDS_UTF8(&arr));
        if (n < max) snprintf(ids[n], PST_ID_MAX, "%s", bson_iter_utf8(&arr, NULL));
        n++;
    }
    return n;
}

static persistor *run_cycle(persistor *p)
{
    if (!p) p = archive_env_holder();
    assert_int_equal(cycle_run(p), PST_OK);
    return p;
}

static void done(persistor *p)
{
    lease_release(p);
    persistor_close(p);
}

static void test_boundary_day_is_archived_and_the_day_after_stays_hot(void **s)
{
    (void)s;
    /* clock on the 10th, 23:59:59; RETENTION_DAYS 3 → boundary the 7th */
    for (int d = 1; d <= 10; d++) {
        char day[16];
        snprintf(day, sizeof day, "2026-03-%02d", d);
        hot_row(day, "deposit", "visa", 100 * d);
    }
    set_clock("2026-03-10T23:59:59Z");
    done(run_cycle(NULL));

    bson_t *d7 = doc_of("2026-03-07");
    assert_non_null(d7);
    assert_int_equal(cents_in(d7, "deposits.visa"), 700);
    bson_destroy(d7);
    assert_false(exists("agg:2026-03-07:deposit"));
    assert_false(tracked("2026-03-07"));

    assert_null(doc_of("2026-03-08"));
    assert_true(exists("agg:2026-03-08:deposit"));
    assert_true(tracked("2026-03-08"));
    assert_int_equal(redis_int("HGET agg:2026-03-08:deposit %s", "visa"), 800);
    for (int d = 1; d <= 6; d++) {
        char day[16];
        snprintf(day, sizeof day, "2026-03-%02d", d);
        bson_t *doc = doc_of(day);
        assert_non_null(doc);
        assert_int_equal(cents_in(doc, "deposits.visa"), 100 * d);
        bson_destroy(doc);
    }
    redisReply *r = rconn_cmd(rc, "GET %s", KEYS_ARCHIVED_THROUGH);
    assert_string_equal(r->str, "2026-03-07");
    freeReplyObject(r);

    /* The clock moves one second, into the 11th: exactly one more day goes. */
    set_clock("2026-03-11T00:00:00Z");
    done(run_cycle(NULL));
    bson_t *d8 = doc_of("2026-03-08");
    assert_non_null(d8);
    bson_destroy(d8);
    assert_null(doc_of("2026-03-09"));
    assert_true(exists("agg:2026-03-09:deposit"));
}

static void test_document_holds_int64_cents_batches_and_updated_at(void **s)
{
    (void)s;
    int64_t big = INT64_C(100000000000); /* 1,000,000,000.00: past 32 bits */
    hot_row("2026-04-01", "deposit", "visa", big);
    hot_row("2026-04-01", "deposit", "visa", big);
    hot_row("2026-04-01", "deposit", "paypal", 1);
    hot_row("2026-04-02", "withdrawal", "apple_pay", 168786);
    set_clock("2026-04-09T00:00:00Z");
    time_t before = time(NULL);
    persistor *p = run_cycle(NULL);
    int64_t fence = p->fence;
    done(p);

    bson_t *d1 = doc_of("2026-04-01");
    assert_non_null(d1);
    assert_int_equal(cents_in(d1, "deposits.visa"), 2 * big);
    assert_int_equal(cents_in(d1, "deposits.paypal"), 1);
    bson_iter_t it;
    assert_false(bson_iter_init_find(&it, d1, "withdrawals")); /* a day without withdrawals has no side */
    char ids[4][PST_ID_MAX];
    assert_int_equal(batches_of(d1, ids, 4), 1);
    assert_int_equal(archive_batch_id_fence(ids[0]), fence);
    char seq[16];
    long long idfence;
    assert_int_equal(sscanf(ids[0], "%15[0-9]-f%lld", seq, &idfence), 2); /* "000000000001-f1" */
    assert_int_equal(strlen(seq), 12);
    assert_int_equal(idfence, fence);
    assert_true(bson_iter_init_find(&it, d1, "updated_at"));
    assert_int_equal(bson_iter_type(&it), BSON_TYPE_DATE_TIME);
    int64_t at = bson_iter_date_time(&it) / 1000;
    assert_true(at >= (int64_t)before - 1 && at <= (int64_t)time(NULL) + 1);
    assert_true(bson_iter_init_find(&it, d1, "date"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "2026-04-01");
    bson_destroy(d1);

    bson_t *d2 = doc_of("2026-04-02");
    assert_int_equal(cents_in(d2, "withdrawals.apple_pay"), 168786);
    assert_false(bson_iter_init_find(&it, d2, "deposits"));
    bson_destroy(d2);
}

static void test_late_rows_for_archived_days_merge_exactly_across_cycles(void **s)
{
    (void)s;
    hot_row("2026-05-01", "deposit", "visa", 1000);
    hot_row("2026-05-01", "withdrawal", "paypal", 7);
    set_clock("2026-05-20T00:00:00Z");
    persistor *p = run_cycle(NULL);
    long long want_visa = 1000, want_paypal = 7, want_mc = 0;
    for (int cycle = 1; cycle <= 4; cycle++) {
        /* late rows for the archived day: they re-create its hash */
        hot_row("2026-05-01", "deposit", "visa", 11 * cycle);
        hot_row("2026-05-01", "deposit", "mastercard", 3);
        want_visa += 11 * cycle;
        want_mc += 3;
        assert_true(tracked("2026-05-01"));
        run_cycle(p);
        assert_false(tracked("2026-05-01"));
        assert_false(exists("agg:2026-05-01:deposit"));
        bson_t *d = doc_of("2026-05-01");
        assert_int_equal(cents_in(d, "deposits.visa"), want_visa);
        assert_int_equal(cents_in(d, "deposits.mastercard"), want_mc);
        assert_int_equal(cents_in(d, "withdrawals.paypal"), want_paypal);
        char ids[8][PST_ID_MAX];
        assert_int_equal(batches_of(d, ids, 8), 1 + cycle);
        bson_destroy(d);
    }
    done(p);
}

static void test_a_held_lease_keeps_a_second_persistor_out_until_released(void **s)
{
    (void)s;
    txagg_config cfg;
    archive_env_config(&cfg);
    char err[256];
    persistor *a = persistor_open(&cfg, err, sizeof err);
    persistor *b = persistor_open(&cfg, err, sizeof err);
    assert_int_equal(lease_acquire(a), PST_OK);
    assert_int_equal(lease_acquire(b), PST_NONE);
    assert_int_equal(b->fence, 0);
    /* renewed, a keeps it past several TTLs */
    for (int i = 0; i < 6; i++) {
        sig_sleep_ms(ARCHIVE_ENV_LEASE_MS / 3);
        assert_int_equal(lease_renew(a), PST_OK);
        assert_int_equal(lease_acquire(b), PST_NONE);
    }
    int64_t fa = a->fence;
    assert_int_equal(lease_release(a), PST_OK);
    assert_int_equal(lease_acquire(b), PST_OK);
    assert_int_equal(b->fence, fa + 1);
    assert_int_equal(lease_renew(a), PST_ELEASE);
    persistor_close(a);
    done(b);
}

static void test_lapsed_lease_goes_to_a_standby_with_a_higher_fence(void **s)
{
    (void)s;
    txagg_config cfg;
    archive_env_config(&cfg);
    char err[256];
    persistor *a = persistor_open(&cfg, err, sizeof err);
    persistor *b = persistor_open(&cfg, err, sizeof err);
    assert_int_equal(lease_acquire(a), PST_OK);
    int64_t t0 = sig_now_ms();
    int rv;
    while ((rv = lease_acquire(b)) == PST_NONE && sig_now_ms() - t0 < 5000) sig_sleep_ms(10);
    assert_int_equal(rv, PST_OK);
    assert_true(sig_now_ms() - t0 >= ARCHIVE_ENV_LEASE_MS - 50); /* not before the TTL */
    assert_true(b->fence > a->fence);
    a->lease_sent_ms = sig_now_ms(); /* a believes its lease is fresh: Redis says no */
    assert_int_equal(lease_renew(a), PST_ELEASE);
    persistor_close(a);
    done(b);
}

static void test_batches_array_stays_bounded_and_keeps_the_newest_ids(void **s)
{
    (void)s;
    set_clock("2026-06-30T00:00:00Z");
    persistor *p = archive_env_holder();
    long long want = 0;
    int cycles = 2 * PST_BATCHES_KEEP + 6;
    char last[PST_BATCHES_KEEP][PST_ID_MAX];
    for (int c = 0; c < cycles; c++) {
        hot_row("2026-06-01", "deposit", "visa", c + 1);
        want += c + 1;
        char id[PST_ID_MAX];
        assert_int_equal(freeze_batch(p, id, sizeof id), PST_OK);
        snprintf(last[c % PST_BATCHES_KEEP], PST_ID_MAX, "%s", id);
        assert_int_equal(cycle_run(p), PST_OK); /* recovery finishes it */
    }
    done(p);
    bson_t *d = doc_of("2026-06-01");
    assert_int_equal(cents_in(d, "deposits.visa"), want);
    char ids[2 * PST_BATCHES_KEEP + 8][PST_ID_MAX];
    int n = batches_of(d, ids, 2 * PST_BATCHES_KEEP + 8);
    bson_destroy(d);
    assert_true(n <= 2 * PST_BATCHES_KEEP);
    assert_true(n >= PST_BATCHES_KEEP);
    for (int i = 0; i < PST_BATCHES_KEEP; i++) { /* the newest ids are all kept */
        int found = 0;
        for (int j = 0; j < n; j++) found |= !strcmp(ids[j], last[i]);
        assert_true(found);
    }
}

static void test_clean_refuses_a_batch_not_confirmed_in_mongodb(void **s)
{
    (void)s;
    char id[PST_ID_MAX];
    persistor *p = holder_with_a_frozen_day(id);
    archive_batch b;
    assert_int_equal(archive_batch_load(p, id, &b), PST_OK);
    assert_int_equal(clean_batch(p, &b), PST_EDATA);
    char key[128];
    keys_frozen(key, sizeof key, NULL, id, "2026-07-01", "deposit");
    assert_true(exists(key)); /* nothing deleted */
    assert_int_equal(redis_int("SCARD %s", KEYS_ARCHIVE_PENDING), 1);
    assert_null(doc_of("2026-07-01"));
    archive_batch_free(&b);
    done(p);
}

/* A record whose fence is not exactly a positive integer is malformed: it is
 * refused whole (PST_EDATA), never read as the number its text starts with. */
static void test_a_batch_record_with_a_bad_fence_is_malformed(void **s)
{
    (void)s;
    persistor *p = archive_env_holder();
    const char *id = "000000000001-f3", *bad[] = {"3x", "", "-3", "0", " 3", "+3", "99999999999999999999"};
    char key[128];
    keys_batch(key, sizeof key, NULL, id);
    archive_batch b;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        redisReply *r = rconn_cmd(rc, "HSET %s days 2026-07-01 fence %s state frozen", key, bad[i]);
        assert_non_null(r);
        freeReplyObject(r);
        assert_int_equal(archive_batch_load(p, id, &b), PST_EDATA);
        assert_null(b.days);
    }
    redisReply *r = rconn_cmd(rc, "HDEL %s fence", key);
    freeReplyObject(r);
    assert_int_equal(archive_batch_load(p, id, &b), PST_EDATA); /* no fence at all */
    r = rconn_cmd(rc, "HSET %s fence 3", key);
    freeReplyObject(r);
    assert_int_equal(archive_batch_load(p, id, &b), PST_OK);
    assert_int_equal(b.fence, 3);
    assert_int_equal(b.ndays, 1);
    archive_batch_free(&b);
    done(p);
}

static void test_freeze_refuses_while_a_batch_is_pending(void **s)
{
    (void)s;
    char id[PST_ID_MAX], id2[PST_ID_MAX];
    persistor *p = holder_with_a_frozen_day(id);
    hot_row("2026-07-02", "deposit", "visa", 6);
    assert_int_equal(freeze_batch(p, id2, sizeof id2), PST_EDATA);
    assert_true(exists("agg:2026-07-02:deposit")); /* still hot */
    assert_true(tracked("2026-07-02"));
    assert_int_equal(redis_int("SCARD %s", KEYS_ARCHIVE_PENDING), 1);
    assert_int_equal(cycle_run(p), PST_OK); /* recovers the first, then freezes the second */
    assert_int_equal(redis_int("SCARD %s", KEYS_ARCHIVE_PENDING), 0);
    assert_int_equal(doc_cents("2026-07-02", "deposits.visa"), 6);
    done(p);
}

static void test_freeze_and_clean_record_the_batch_and_bump_the_version(void **s)
{
    (void)s;
    hot_row("2026-08-03", "deposit", "visa", 5);
    hot_row("2026-08-01", "withdrawal", "visa", 5);
    set_clock("2026-08-30T00:00:00Z");
    persistor *p = archive_env_holder();
    long long v0 = redis_int("GET %s", KEYS_ARCHIVE_VERSION);
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p, id, sizeof id), PST_OK);
    assert_int_equal(redis_int("GET %s", KEYS_ARCHIVE_VERSION), v0 + 1);
    char bkey[128];
    keys_batch(bkey, sizeof bkey, NULL, id);
    redisReply *r = rconn_cmd(rc, "HMGET %s days fence state created", bkey);
    assert_string_equal(r->element[0]->str, "2026-08-01,2026-08-03");
    char fence[24];
    snprintf(fence, sizeof fence, "%lld", (long long)p->fence);
    assert_string_equal(r->element[1]->str, fence);
    assert_string_equal(r->element[2]->str, "frozen");
    int64_t created;
    assert_int_equal(ts_parse(r->element[3]->str, r->element[3]->len, &created), 0);
    assert_true(llabs((long long)(created - (int64_t)time(NULL))) < 60);
    freeReplyObject(r);
    r = rconn_cmd(rc, "SMEMBERS %s", KEYS_ARCHIVE_PENDING);
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, id);
    freeReplyObject(r);
    char fk[128];
    keys_frozen(fk, sizeof fk, NULL, id, "2026-08-03", "deposit");
    assert_int_equal(redis_int("HGET %s visa", fk), 5);
    keys_frozen(fk, sizeof fk, NULL, id, "2026-08-03", "withdrawal");
    assert_false(exists(fk)); /* no hash, no frozen key */

    archive_batch b;
    assert_int_equal(archive_batch_load(p, id, &b), PST_OK);
    assert_int_equal(archive_write_batch(p, &b, 0), PST_OK);
    assert_int_equal(clean_mark_written(p, id), PST_OK);
    r = rconn_cmd(rc, "HGET %s state", bkey);
    assert_string_equal(r->str, "written");
    freeReplyObject(r);
    assert_int_equal(clean_batch(p, &b), PST_OK);
    assert_int_equal(redis_int("GET %s", KEYS_ARCHIVE_VERSION), v0 + 2);
    assert_false(exists(bkey));
    assert_int_equal(redis_int("SCARD %s", KEYS_ARCHIVE_PENDING), 0);
    r = rconn_cmd(rc, "GET %s", KEYS_ARCHIVED_THROUGH);
    assert_string_equal(r->str, "2026-08-03");
    freeReplyObject(r);
    archive_batch_free(&b);

    /* archived_through never goes back: a late row for an older day */
    hot_row("2026-08-02", "deposit", "visa", 1);
    assert_int_equal(cycle_run(p), PST_OK);
    r = rconn_cmd(rc, "GET %s", KEYS_ARCHIVED_THROUGH);
    assert_string_equal(r->str, "2026-08-03");
    freeReplyObject(r);
    done(p);
}

static void test_tracked_day_without_hashes_is_untracked_without_a_batch(void **s)
{
    (void)s;
    redisReply *r = rconn_cmd(rc, "SADD %s %s", KEYS_TRACKED_DAYS, "2026-09-01");
    freeReplyObject(r);
    set_clock("2026-09-30T00:00:00Z");
    persistor *p = archive_env_holder();
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p, id, sizeof id), PST_NONE);
    assert_false(tracked("2026-09-01"));
    assert_int_equal(redis_int("SCARD %s", KEYS_ARCHIVE_PENDING), 0);
    assert_int_equal(redis_int("GET %s", KEYS_ARCHIVE_VERSION), 0);
    assert_null(doc_of("2026-09-01"));
    done(p);
}

static void test_nothing_is_archived_without_a_virtual_clock(void **s)
{
    (void)s;
    hot_row("2020-01-01", "deposit", "visa", 5);
    persistor *p = run_cycle(NULL);
    assert_true(exists("agg:2020-01-01:deposit"));
    set_clock("not a time");
    run_cycle(p);
    assert_true(exists("agg:2020-01-01:deposit"));
    assert_null(doc_of("2020-01-01"));
    done(p);
}

/* 70 eligible days: a cycle freezes the oldest 64, then — although late rows
 * re-created every one of those meanwhile — the remaining 6, not the same 64
 * again; the re-created days wait for the next sweep. */
static void test_a_cycle_sweeps_past_days_that_late_rows_recreate(void **s)
{
    (void)s;
    char day[16];
    for (int d = 0; d < 70; d++) {
        snprintf(day, sizeof day, "2025-%02d-%02d", 1 + d / 28, 1 + d % 28);
        hot_row(day, "deposit", "visa", 100 + d);
    }
    set_clock("2026-06-01T00:00:00Z");
    persistor *p = archive_env_holder();
    char id[PST_ID_MAX], after[TS_DAY_LEN + 1] = "";
    assert_int_equal(freeze_batch_after(p, after, id, sizeof id, after), PST_OK);
    assert_string_equal(after, "2025-03-08"); /* the 64th day */
    assert_int_equal(recover_finish_batch(p, id, 0), PST_OK);
    for (int d = 0; d < 64; d++) { /* late rows for every archived day */
        snprintf(day, sizeof day, "2025-%02d-%02d", 1 + d / 28, 1 + d % 28);
        hot_row(day, "deposit", "visa", 1);
    }
    assert_int_equal(freeze_batch_after(p, after, id, sizeof id, after), PST_OK);
    assert_string_equal(after, "2025-03-14");
    assert_int_equal(recover_finish_batch(p, id, 0), PST_OK);
    assert_false(tracked("2025-03-14"));
    assert_true(tracked("2025-01-01")); /* re-created, waiting for the next sweep */
    assert_int_equal(freeze_batch_after(p, after, id, sizeof id, after), PST_NONE);
    /* the next cycle starts over from the oldest and merges the late rows */
    run_cycle(p);
    assert_false(tracked("2025-01-01"));
    assert_false(exists("agg:2025-01-01:deposit"));
    assert_int_equal(doc_cents("2025-01-01", "deposits.visa"), 101); /* 100 + the late 1, exactly once */
    assert_int_equal(doc_cents("2025-03-14", "deposits.visa"), 169);
    done(p);
}

static void set_appendonly(const char *v)
{
    redisReply *r = rconn_cmd(rc, "CONFIG SET appendonly %s", v);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

/* A fresh freeze is given time to reach Redis's AOF before MongoDB hears of
 * it; a server without AOF has no durability to wait for. */
static void test_a_fresh_freeze_settles_only_when_redis_has_an_aof(void **s)
{
    (void)s;
    persistor *p = archive_env_holder();
    set_appendonly("yes");
    int64_t t0 = sig_now_ms();
    int rv = freeze_settle(p, 1);
    int64_t waited = sig_now_ms() - t0;
    set_appendonly("no");
    assert_int_equal(rv, PST_OK);
    assert_true(waited >= PST_FREEZE_SETTLE_MS);

    /* Without AOF: no wait (anything near the settle time means it slept). */
    t0 = sig_now_ms();
    assert_int_equal(freeze_settle(p, 1), PST_OK);
    assert_true(sig_now_ms() - t0 < PST_FREEZE_SETTLE_MS / 2);
    done(p);
}

static void test_unarchivable_frozen_field_leaves_the_batch_pending_and_intact(void **s)
{
    (void)s;
    hot_row("2026-10-01", "deposit", "visa", 5);
    hot_row("2026-10-01", "deposit", "bad.method", 6); /* '.' would split a MongoDB path */
    set_clock("2026-10-30T00:00:00Z");
    persistor *p = archive_env_holder();
    assert_int_equal(cycle_run(p), PST_EDATA);
    assert_int_equal(redis_int("SCARD %s", KEYS_ARCHIVE_PENDING), 1);
    assert_null(doc_of("2026-10-01"));
    assert_int_equal(cycle_run(p), PST_EDATA); /* and stays so, losing nothing */
    done(p);
}

/* How far back the hot tier reaches (txagg_persistor_oldest_hot_day_age_seconds):
 * the virtual clock minus the start of the oldest tracked day, 0 without a
 * clock or a day, members that are not days skipped; once archival has caught
 * up it is below RETENTION_DAYS. */
static void test_hot_age_is_the_clock_minus_the_start_of_the_oldest_hot_day(void **s)
{
    (void)s;
    persistor *p = archive_env_holder();
    int64_t age = -1;
    assert_int_equal(archive_batch_hot_age(p, &age), PST_OK);
    assert_int_equal(age, 0);
    hot_row("2026-03-09", "deposit", "visa", 5);
    hot_row("2026-03-03", "withdrawal", "visa", 7);
    redisReply *r = rconn_cmd(rc, "SADD %s %s", KEYS_TRACKED_DAYS, "not-a-day");
    freeReplyObject(r);
    assert_int_equal(archive_batch_hot_age(p, &age), PST_OK);
    assert_int_equal(age, 0); /* no clock yet */
    set_clock("2026-03-10T12:00:00Z");
    assert_int_equal(archive_batch_hot_age(p, &age), PST_OK);
    assert_int_equal(age, 7 * 86400 + 12 * 3600);
    assert_true(age > ARCHIVE_ENV_RETENTION * 86400);
    run_cycle(p); /* the 3rd goes to MongoDB; the 9th stays */
    assert_int_equal(archive_batch_hot_age(p, &age), PST_OK);
    assert_int_equal(age, 1 * 86400 + 12 * 3600);
    assert_true(age < ARCHIVE_ENV_RETENTION * 86400);
    done(p);
}

/* ---- reads and writes a failover cannot undo --------------------------- */

/* What the persistor's client sent to MongoDB (command monitoring). */
typedef struct seen {
    int finds, majority_finds, updates;
    int steal_at_update; /* take the lease away when this update starts (0 = never) */
} seen;

static void on_command(const mongoc_apm_command_started_t *ev)
{
    seen *sn = mongoc_apm_command_started_get_context(ev);
    const char *name = mongoc_apm_command_started_get_command_name(ev);
    const bson_t *cmd = mongoc_apm_command_started_get_command(ev);
    if (!strcmp(name, "find")) {
        sn->finds++;
        bson_iter_t it, level;
        if (bson_iter_init(&it, cmd) && bson_iter_find_descendant(&it, "readConcern.level", &level) &&
            BSON_ITER_HOLDS_UTF8(&level) && !strcmp(bson_iter_utf8(&level, NULL), "majority"))
            sn->majority_finds++;
    } else if (!strcmp(name, "update")) {
        if (++sn->updates == sn->steal_at_update) {
            redisReply *r = rconn_cmd(rc, "SET %s another-replica PX 60000", KEYS_PERSISTOR_LEASE);
            freeReplyObject(r);
        }
    }
}

static void watch_commands(persistor *p, seen *sn)
{
    mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new();
    mongoc_apm_set_command_started_cb(cbs, on_command);
    assert_true(mongoc_client_set_apm_callbacks(p->mongo, cbs, sn));
    mongoc_apm_callbacks_destroy(cbs);
}

/* On a replica set, a write seen on the primary but not yet on a majority can
 * be rolled back: the reads that decide "this batch is applied" (before the
 * update, and again after an 11000 or a write-concern error) must be majority
 * reads, or the frozen hashes could be cleaned for a write that then vanishes. */
static void test_reads_that_decide_a_batch_is_applied_are_majority_reads(void **s)
{
    (void)s;
    set_clock("2026-06-30T00:00:00Z");
    persistor *p = archive_env_holder();
    seen sn = {0};
    watch_commands(p, &sn);
    hot_row("2026-06-01", "deposit", "visa", 100);
    run_cycle(p);
    hot_row("2026-06-01", "deposit", "visa", 5); /* late row: the day has a document, so it is read first */
    run_cycle(p);
    done(p);
    assert_int_equal(doc_cents("2026-06-01", "deposits.visa"), 105);
    assert_true(sn.finds >= 1);
    assert_int_equal(sn.majority_finds, sn.finds);
}

/* Pruning `batches` is a MongoDB write like the guarded update: the lease is
 * renewed before it, and a replica that lost the lease in between writes
 * nothing more (on FerretDB a stale write could overwrite the new holder's). */
static void test_no_prune_is_written_after_the_lease_is_lost(void **s)
{
    (void)s;
    set_clock("2026-06-30T00:00:00Z");
    bson_t *doc = BCON_NEW("date", BCON_UTF8("2026-06-01"), "deposits", "{", "visa", BCON_INT64(1), "}");
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(doc, "batches", &arr);
    for (int i = 0; i < 2 * PST_BATCHES_KEEP; i++) {
        char k[16], id[32];
        const char *key;
        bson_uint32_to_string((uint32_t)i, &key, k, sizeof k);
        snprintf(id, sizeof id, "000000000%03d-f0", i);
        bson_append_utf8(&arr, key, -1, id, -1);
    }
    bson_append_array_end(doc, &arr);
    bson_error_t e;
    assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &e));
    bson_destroy(doc);
    persistor *p = archive_env_holder();
    seen sn = {0, 0, 0, 1}; /* the lease goes as the guarded update starts */
    watch_commands(p, &sn);
    hot_row("2026-06-01", "deposit", "visa", 100);
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p, id, sizeof id), PST_OK);
    assert_int_equal(cycle_run(p), PST_ELEASE);
    assert_int_equal(sn.updates, 1); /* the update, and no $pullAll after it */
    bson_t *d = doc_of("2026-06-01");
    char ids[2 * PST_BATCHES_KEEP + 2][PST_ID_MAX];
    assert_int_equal(batches_of(d, ids, 2 * PST_BATCHES_KEEP + 2), 2 * PST_BATCHES_KEEP + 1);
    assert_int_equal(cents_in(d, "deposits.visa"), 101);
    bson_destroy(d);
    persistor_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_boundary_day_is_archived_and_the_day_after_stays_hot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_holds_int64_cents_batches_and_updated_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_rows_for_archived_days_merge_exactly_across_cycles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_held_lease_keeps_a_second_persistor_out_until_released, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lapsed_lease_goes_to_a_standby_with_a_higher_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_array_stays_bounded_and_keeps_the_newest_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_refuses_a_batch_not_confirmed_in_mongodb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_record_with_a_bad_fence_is_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freeze_refuses_while_a_batch_is_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freeze_and_clean_record_the_batch_and_bump_the_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tracked_day_without_hashes_is_untracked_without_a_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_is_archived_without_a_virtual_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_fresh_freeze_settles_only_when_redis_has_an_aof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_cycle_sweeps_past_days_that_late_rows_recreate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_age_is_the_clock_minus_the_start_of_the_oldest_hot_day, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unarchivable_frozen_field_leaves_the_batch_pending_and_intact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reads_that_decide_a_batch_is_applied_are_majority_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_prune_is_written_after_the_lease_is_lost, setup, teardown),
    };
    return testenv_run(tests, NULL, NULL);
}
