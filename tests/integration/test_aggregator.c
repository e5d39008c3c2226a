/* The aggregator against the real Redis: exact totals, the ownership check
 * (a claimed entry is never counted twice, a replayed script applies
 * nothing), recovery of pending entries, claims of a dead consumer's entries,
 * dead letters, the script cache flushed, the clock, trimming and reaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../aggregator/apply.h"
#include "../../aggregator/consumer.h"
#include "reply_arena.h"
#include "../../aggregator/stats.h"
#include "../../aggregator/trim.h"
#include "keys.h"
#include "signals.h"
#include "testenv.h"

static agg_stats stats;

static int setup(void **st)
{
    (void)st;
    testenv_flush_redis();
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static redisReply *cmd(rconn *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rconn_ctx(rc), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static void cmd_ok(rconn *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rconn_ctx(rc), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("redis error: %s", r->str);
    freeReplyObject(r);
}

static long long integer(rconn *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rconn_ctx(rc), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_INTEGER) fail_msg("not an integer reply (type %d)", r->type);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* XADD an entry in the documented format; the id into id (64 bytes). */
static void publish(rconn *rc, const char *ts, const char *type, const char *method, long long cents, char *id)
{
    redisReply *r = cmd(rc, "XADD %s * ts %s type %s method %s cents %lld src test.csv:1", KEYS_STREAM, ts, type,
                        method, cents);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    if (id) snprintf(id, 64, "%s", r->str);
    freeReplyObject(r);
}

static long long hget(rconn *rc, const char *day, const char *type, const char *method)
{
    redisReply *r = cmd(rc, "HGET agg:%s:%s %s", day, type, method);
    long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

static long long group_pending(rconn *rc)
{
    redisReply *r = cmd(rc, "XPENDING %s %s", KEYS_STREAM, KEYS_GROUP);
    long long v = r->type == REDIS_REPLY_ARRAY ? r->element[0]->integer : -1;
    freeReplyObject(r);
    return v;
}

static long long consumer_pending(rconn *rc, const char *name)
{
    redisReply *r = cmd(rc, "XPENDING %s %s - + 100000 %s", KEYS_STREAM, KEYS_GROUP, name);
    long long v = r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
    freeReplyObject(r);
    return v;
}

static long long count_keys(rconn *rc, const char *pattern)
{
    redisReply *r = cmd(rc, "KEYS %s", pattern);
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

static consumer *new_consumer(rconn **rcp, const char *name, int batch_size)
{
    txagg_config cfg;
    testenv_config(&cfg);
    *rcp = rconn_new(&cfg, name);
    assert_int_equal(rconn_ensure(*rcp), 0);
    agg_stats_init(&stats);
    consumer *c = consumer_new(*rcp, name, batch_size, 20, &stats);
    assert_non_null(c);
    return c;
}

/* Step until the group has delivered and acknowledged everything. */
static void drain_all(consumer *c, rconn *admin)
{
    for (int i = 0; i < 2000; i++) {
        long n = consumer_step(c);
        if (n == 0 && group_pending(admin) == 0) {
            redisReply *r = cmd(admin, "XINFO GROUPS %s", KEYS_STREAM);
            long long lag = -1;
            for (size_t j = 0; j + 1 < r->element[0]->elements; j += 2)
                if (!strcmp(r->element[0]->element[j]->str, "lag")) lag = r->element[0]->element[j + 1]->integer;
            freeReplyObject(r);
            if (lag == 0) return;
        }
    }
    fail_msg("the consumer did not drain the stream");
}

/* A small deterministic generator and the expected sums computed here. */
#define GEN_DAYS 5
#define GEN_METHODS 5
static const char *gen_methods[GEN_METHODS] = {"visa", "paypal", "apple_pay", "crypto", "bank_transfer"};
typedef struct expect {
    long long sum[GEN_DAYS][2][GEN_METHODS];
    char max_ts[32];
} expect;

static void gen_publish(rconn *rc, int n, uint32_t seed, expect *ex)
{
    uint32_t x = seed;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        int d = (int)((x >> 5) % GEN_DAYS), t = (int)((x >> 9) % 2), m = (int)((x >> 13) % GEN_METHODS);
        long long cents = 1 + (long long)((x >> 2) % 5000000);
        char ts[32];
        snprintf(ts, sizeof ts, "2026-02-%02dT%02u:%02u:%02uZ", 1 + d, (x >> 17) % 24, (x >> 20) % 60, (x >> 24) % 60);
        publish(rc, ts, t ? "withdrawal" : "deposit", gen_methods[m], cents, NULL);
        ex->sum[d][t][m] += cents;
        if (strcmp(ts, ex->max_ts) > 0) snprintf(ex->max_ts, sizeof ex->max_ts, "%s", ts);
    }
}

static void check_totals(rconn *rc, const expect *ex)
{
    int keys = 0;
    for (int d = 0; d < GEN_DAYS; d++) {
        char day[16];
        snprintf(day, sizeof day, "2026-02-%02d", 1 + d);
        for (int t = 0; t < 2; t++) {
            int any = 0;
            for (int m = 0; m < GEN_METHODS; m++) {
                long long got = hget(rc, day, t ? "withdrawal" : "deposit", gen_methods[m]);
                if (got != ex->sum[d][t][m])
                    fail_msg("%s %s %s: got %lld want %lld", day, t ? "withdrawal" : "deposit", gen_methods[m], got,
                             ex->sum[d][t][m]);
                any |= ex->sum[d][t][m] != 0;
            }
            keys += any;
        }
    }
    assert_int_equal(count_keys(rc, "agg:*"), keys);
}

/* ---- tests --------------------------------------------------------------- */

static void test_totals_of_a_few_hundred_entries_are_exact(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    expect ex;
    memset(&ex, 0, sizeof ex);
    gen_publish(admin, 400, 7, &ex);
    rconn *rc;
    consumer *c = new_consumer(&rc, "exact", 37); /* many batches, the last one partial */
    drain_all(c, admin);
    check_totals(admin, &ex);
    assert_int_equal(integer(admin, "SCARD %s", KEYS_TRACKED_DAYS), GEN_DAYS);
    redisReply *r = cmd(admin, "GET %s", KEYS_VIRTUAL_CLOCK);
    assert_string_equal(r->str, ex.max_ts);
    freeReplyObject(r);
    assert_int_equal(group_pending(admin), 0);
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_entry_claimed_by_another_consumer_before_apply_is_counted_once(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    char ids[10][64];
    long long want = 0;
    for (int i = 0; i < 10; i++) {
        publish(admin, "2026-03-01T12:00:00Z", "deposit", "visa", 100 + i, ids[i]);
        want += 100 + i;
    }
    rconn *ra, *rb;
    consumer *a = new_consumer(&ra, "owner-a", 100);
    consumer *b = new_consumer(&rb, "thief-b", 100);
    assert_int_equal(consumer_setup(a), 0);
    assert_int_equal(consumer_fetch(a, 0), 10);
    /* B steals one entry between A's read and A's apply (XCLAIM ignores ownership) */
    cmd_ok(admin, "XCLAIM %s %s thief-b 0 %s", KEYS_STREAM, KEYS_GROUP, ids[3]);
    uint64_t stale_before = metrics_value(stats.stale_batches);
    apply_result res;
    consumer_commit(a, &res);
    assert_int_equal(res.status, APPLY_STALE);
    assert_int_equal(metrics_value(stats.stale_batches), stale_before + 1);
    assert_int_equal(count_keys(admin, "agg:*"), 0); /* nothing written */
    assert_int_equal(consumer_pending(admin, "owner-a"), 9);
    /* A recovers from its own pending list: 9 entries, B's one stays B's */
    assert_int_equal(consumer_recover(a), 9);
    assert_int_equal(hget(admin, "2026-03-01", "deposit", "visa"), want - 103);
    assert_int_equal(consumer_pending(admin, "thief-b"), 1);
    assert_int_equal(consumer_recover(b), 1);
    assert_int_equal(hget(admin, "2026-03-01", "deposit", "visa"), want);
    assert_int_equal(group_pending(admin), 0);
    /* replaying recovery changes nothing */
    assert_int_equal(consumer_recover(a), 0);
    assert_int_equal(hget(admin, "2026-03-01", "deposit", "visa"), want);
    consumer_free(a);
    consumer_free(b);
    rconn_free(ra);
    rconn_free(rb);
    rconn_free(admin);
}

static void test_malformed_entries_are_dead_lettered_once_and_acknowledged(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    publish(admin, "2026-03-02T00:00:01Z", "deposit", "visa", 500, NULL);
    char bad1[64], bad2[64], bad3[64];
    redisReply *r = cmd(admin, "XADD %s * ts 2026-03-02T00:00:00Z type deposit method visa src x:2", KEYS_STREAM);
    snprintf(bad1, sizeof bad1, "%s", r->str);
    freeReplyObject(r);
    publish(admin, "2026-03-02T00:00:02Z", "deposit", "visa", 0, bad2);
    publish(admin, "2026-03-02T00:00:03Z", "refund", "visa", 5, bad3);
    publish(admin, "2026-03-02T00:00:04Z", "withdrawal", "visa", 700, NULL);
    rconn *rc;
    consumer *c = new_consumer(&rc, "dl", 2);
    uint64_t rejected_before = metrics_value(stats.rejected);
    drain_all(c, admin);
    assert_int_equal(metrics_value(stats.rejected), rejected_before + 3);
    assert_int_equal(hget(admin, "2026-03-02", "deposit", "visa"), 500);
    assert_int_equal(hget(admin, "2026-03-02", "withdrawal", "visa"), 700);
    assert_int_equal(group_pending(admin), 0);
    r = cmd(admin, "XRANGE %s - +", KEYS_REJECTED);
    assert_int_equal(r->elements, 3);
    const char *want_ids[3] = {bad1, bad2, bad3};
    const char *want_detail[3] = {"cents: missing", "cents: not an integer", "type: not"};
    for (size_t i = 0; i < 3; i++) {
        redisReply *f = r->element[i]->element[1];
        assert_int_equal(f->elements, 8);
        assert_string_equal(f->element[0]->str, "reason");
        assert_string_equal(f->element[1]->str, "malformed_entry");
        assert_string_equal(f->element[2]->str, "id");
        assert_string_equal(f->element[3]->str, want_ids[i]);
        assert_string_equal(f->element[4]->str, "raw");
        assert_non_null(strstr(f->element[5]->str, "method=visa"));
        assert_string_equal(f->element[6]->str, "detail");
        assert_int_equal(strncmp(f->element[7]->str, want_detail[i], strlen(want_detail[i])), 0);
    }
    freeReplyObject(r);
    assert_int_equal(consumer_recover(c), 0); /* nothing pending: no second dead letter */
    assert_int_equal(integer(admin, "XLEN %s", KEYS_REJECTED), 3);
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_batches_apply_after_the_script_cache_is_flushed(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    rconn *rc;
    consumer *c = new_consumer(&rc, "noscript", 10);
    assert_int_equal(consumer_step(c), 0); /* set up: scripts loaded, group created */
    for (int round = 0; round < 2; round++) {
        cmd_ok(admin, "SCRIPT FLUSH");
        for (int i = 0; i < 25; i++) publish(admin, "2026-03-03T00:00:00Z", "deposit", "amex", 10, NULL);
        /* round 0: the pipelined pump meets NOSCRIPT; round 1: the synchronous path */
        if (round == 0) {
            drain_all(c, admin);
        } else {
            assert_int_equal(consumer_fetch(c, 0), 10);
            apply_result res;
            consumer_commit(c, &res);
            assert_int_equal(res.status, APPLY_OK);
            drain_all(c, admin);
        }
        assert_int_equal(hget(admin, "2026-03-03", "deposit", "amex"), 250 * (round + 1));
    }
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_virtual_clock_never_moves_backwards(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    cmd_ok(admin, "SET %s 2026-06-01T00:00:00Z", KEYS_VIRTUAL_CLOCK);
    rconn *rc;
    consumer *c = new_consumer(&rc, "clock", 100);
    publish(admin, "2026-01-01T00:00:00Z", "deposit", "visa", 1, NULL);
    drain_all(c, admin);
    redisReply *r = cmd(admin, "GET %s", KEYS_VIRTUAL_CLOCK);
    assert_string_equal(r->str, "2026-06-01T00:00:00Z");
    freeReplyObject(r);
    /* one batch, out of order: the clock takes its greatest timestamp */
    assert_int_equal(consumer_step(c), 0);
    publish(admin, "2026-07-01T00:00:00Z", "deposit", "visa", 1, NULL);
    publish(admin, "2026-07-02T09:30:00+02:00", "deposit", "visa", 1, NULL); /* 07:30Z */
    publish(admin, "2026-06-15T00:00:00Z", "deposit", "visa", 1, NULL);
    drain_all(c, admin);
    r = cmd(admin, "GET %s", KEYS_VIRTUAL_CLOCK);
    assert_string_equal(r->str, "2026-07-02T07:30:00Z");
    freeReplyObject(r);
    assert_int_equal(hget(admin, "2026-07-02", "deposit", "visa"), 1);
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static int entry_exists(rconn *rc, const char *id)
{
    redisReply *r = cmd(rc, "XRANGE %s %s %s", KEYS_STREAM, id, id);
    int n = (int)r->elements;
    freeReplyObject(r);
    return n == 1;
}

static void test_trim_never_passes_a_lagging_groups_pending_or_undelivered_entries(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    assert_int_equal(trim_stream(admin), 0); /* no stream yet */
    cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    cmd_ok(admin, "XGROUP CREATE %s other 0", KEYS_STREAM);
    char ids[20][64];
    for (int i = 0; i < 20; i++) publish(admin, "2026-03-04T00:00:00Z", "deposit", "visa", 1, ids[i]);
    /* the other group has read 5, acknowledged 2: its oldest pending is ids[2] */
    redisReply *r = cmd(admin, "XREADGROUP GROUP other o1 COUNT 5 STREAMS %s >", KEYS_STREAM);
    freeReplyObject(r);
    cmd_ok(admin, "XACK %s other %s %s", KEYS_STREAM, ids[0], ids[1]);
    rconn *rc;
    consumer *c = new_consumer(&rc, "trimmer", 100);
    drain_all(c, admin); /* our group: everything delivered and acknowledged */
    assert_int_equal(trim_stream(admin), 2);
    assert_int_equal(integer(admin, "XLEN %s", KEYS_STREAM), 18);
    assert_true(entry_exists(admin, ids[2]));
    assert_false(entry_exists(admin, ids[1]));
    assert_int_equal(trim_stream(admin), 0); /* idempotent */

    /* the other group acknowledges all it read: its bound is its last
     * delivered id; what it never received stays */
    cmd_ok(admin, "XACK %s other %s %s %s", KEYS_STREAM, ids[2], ids[3], ids[4]);
    assert_int_equal(trim_stream(admin), 2);
    assert_int_equal(integer(admin, "XLEN %s", KEYS_STREAM), 16);
    assert_true(entry_exists(admin, ids[4]));
    for (int i = 5; i < 20; i++) assert_true(entry_exists(admin, ids[i]));

    /* our own pending entries are kept too */
    cmd_ok(admin, "XGROUP DESTROY %s other", KEYS_STREAM);
    char mine[3][64];
    for (int i = 0; i < 3; i++) publish(admin, "2026-03-04T00:00:00Z", "deposit", "visa", 1, mine[i]);
    assert_int_equal(consumer_fetch(c, 0), 3); /* read, not applied */
    trim_stream(admin);
    for (int i = 0; i < 3; i++) assert_true(entry_exists(admin, mine[i]));
    assert_int_equal(integer(admin, "XLEN %s", KEYS_STREAM), 3);
    drain_all(c, admin);
    trim_stream(admin);
    assert_int_equal(integer(admin, "XLEN %s", KEYS_STREAM), 1); /* the last delivered entry */
    assert_true(entry_exists(admin, mine[2]));
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static int has_consumer(rconn *rc, const char *name)
{
    redisReply *r = cmd(rc, "XINFO CONSUMERS %s %s", KEYS_STREAM, KEYS_GROUP);
    int found = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (!strcmp(r->element[i]->element[1]->str, name)) found = 1;
    freeReplyObject(r);
    return found;
}

static void test_reaping_deletes_only_idle_consumers_without_pending_entries(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    assert_int_equal(trim_reap_consumers(admin, KEYS_GROUP, "me", 0), 0); /* no stream: nothing */
    cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    publish(admin, "2026-03-05T00:00:00Z", "deposit", "visa", 1, NULL);
    cmd_ok(admin, "XGROUP CREATECONSUMER %s %s idle-empty", KEYS_STREAM, KEYS_GROUP);
    cmd_ok(admin, "XGROUP CREATECONSUMER %s %s me", KEYS_STREAM, KEYS_GROUP);
    redisReply *r = cmd(admin, "XREADGROUP GROUP %s idle-pending COUNT 1 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    sig_sleep_ms(300);
    cmd_ok(admin, "XGROUP CREATECONSUMER %s %s fresh-empty", KEYS_STREAM, KEYS_GROUP);
    assert_int_equal(trim_reap_consumers(admin, KEYS_GROUP, "me", 200), 1);
    assert_false(has_consumer(admin, "idle-empty"));
    assert_true(has_consumer(admin, "idle-pending")); /* DELCONSUMER would drop its entry */
    assert_true(has_consumer(admin, "me"));
    assert_true(has_consumer(admin, "fresh-empty"));
    assert_int_equal(group_pending(admin), 1);
    assert_true(trim_reap_idle_ms(30000) == 600000 && trim_reap_idle_ms(120000) == 1200000);
    rconn_free(admin);
}

static long long client_id(rconn *rc)
{
    return integer(rc, "CLIENT ID");
}

/* Read n entries as `name` and build the script's arguments for them. */
static redisReply *read_batch(rconn *rc, const char *name, batch *b, apply_args *a)
{
    redisReply *r = cmd(rc, "XREADGROUP GROUP %s %s COUNT 1000 STREAMS %s >", KEYS_GROUP, name, KEYS_STREAM);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(consumer_batch_from_entries(b, r->element[0]->element[1]), 0);
    assert_int_equal(apply_build(a, b, KEYS_GROUP, name), 0);
    return r;
}

static void flush_pipeline(rconn *rc)
{
    for (int done = 0; !done;) assert_int_equal(redisBufferWrite(rconn_ctx(rc), &done), REDIS_OK);
}

static void test_script_replayed_after_its_reply_was_lost_applies_nothing_more(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    long long want = 0;
    for (int i = 0; i < 50; i++) {
        publish(admin, "2026-03-06T00:00:00Z", "withdrawal", "visa", 1000 + i, NULL);
        want += 1000 + i;
    }
    txagg_config cfg;
    testenv_config(&cfg);
    rconn *victim = rconn_new(&cfg, "victim");
    assert_int_equal(rconn_ensure(victim), 0);
    assert_int_equal(apply_load(victim), 0);
    batch b;
    apply_args a;
    assert_int_equal(batch_init(&b), 0);
    apply_args_init(&a);
    redisReply *owner = read_batch(victim, "victim", &b, &a);

    /* the script runs, then the connection dies before its reply is read */
    long long id = client_id(victim);
    assert_int_equal(apply_send(victim, &a), 0);
    flush_pipeline(victim);
    for (int i = 0; i < 500 && group_pending(admin) != 0; i++) sig_sleep_ms(10);
    assert_int_equal(group_pending(admin), 0);
    assert_int_equal(integer(admin, "CLIENT KILL ID %lld", id), 1);
    rconn_drop(victim); /* the reply is never read */

    /* the retry (same arguments, new connection) finds the ids acknowledged */
    apply_result res;
    apply_run(victim, &a, &res);
    assert_int_equal(res.status, APPLY_STALE);
    assert_int_equal(hget(admin, "2026-03-06", "withdrawal", "visa"), want);
    freeReplyObject(owner);
    batch_free(&b);
    apply_args_free(&a);
    rconn_free(victim);
    rconn_free(admin);
}

static void test_script_lost_before_it_ran_is_applied_by_the_retry(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    long long want = 0;
    for (int i = 0; i < 30; i++) {
        publish(admin, "2026-03-07T00:00:00Z", "deposit", "paypal", 7 + i, NULL);
        want += 7 + i;
    }
    txagg_config cfg;
    testenv_config(&cfg);
    rconn *victim = rconn_new(&cfg, "victim2");
    assert_int_equal(rconn_ensure(victim), 0);
    assert_int_equal(apply_load(victim), 0);
    batch b;
    apply_args a;
    assert_int_equal(batch_init(&b), 0);
    apply_args_init(&a);
    redisReply *owner = read_batch(victim, "victim2", &b, &a);

    /* writes are paused: the script waits in Redis and dies with its client */
    long long id = client_id(victim);
    cmd_ok(admin, "CLIENT PAUSE 5000 WRITE");
    assert_int_equal(apply_send(victim, &a), 0);
    flush_pipeline(victim);
    sig_sleep_ms(200);
    assert_int_equal(integer(admin, "CLIENT KILL ID %lld", id), 1);
    cmd_ok(admin, "CLIENT UNPAUSE");
    rconn_drop(victim);
    assert_int_equal(consumer_pending(admin, "victim2"), 30);
    assert_int_equal(count_keys(admin, "agg:*"), 0);

    apply_result res;
    apply_run(victim, &a, &res);
    assert_int_equal(res.status, APPLY_OK);
    assert_int_equal(res.count, 30);
    apply_run(victim, &a, &res); /* and once more: nothing */
    assert_int_equal(res.status, APPLY_STALE);
    assert_int_equal(hget(admin, "2026-03-07", "deposit", "paypal"), want);
    freeReplyObject(owner);
    batch_free(&b);
    apply_args_free(&a);
    rconn_free(victim);
    rconn_free(admin);
}

static void test_dead_consumers_entries_are_claimed_and_applied_once(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    long long want = 0;
    for (int i = 0; i < 30; i++) {
        publish(admin, "2026-03-08T00:00:00Z", "deposit", "visa", 3 * i + 1, NULL);
        want += 3 * i + 1;
    }
    redisReply *r = cmd(admin, "XREADGROUP GROUP %s dead COUNT 100 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    rconn *rc;
    consumer *c = new_consumer(&rc, "rescuer", 7);
    assert_int_equal(consumer_step(c), 0);
    assert_int_equal(consumer_claim(c, 60000), 0); /* not idle long enough yet */
    sig_sleep_ms(150);
    uint64_t claims_before = metrics_value(stats.claims);
    assert_int_equal(consumer_claim(c, 100), 30);
    assert_int_equal(metrics_value(stats.claims), claims_before + 30);
    assert_int_equal(hget(admin, "2026-03-08", "deposit", "visa"), want);
    assert_int_equal(group_pending(admin), 0);
    assert_int_equal(consumer_claim(c, 0), 0);
    assert_int_equal(hget(admin, "2026-03-08", "deposit", "visa"), want);
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_restarted_consumer_recovers_its_pending_and_acks_deleted_entries(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    char ids[20][64];
    long long want = 0;
    for (int i = 0; i < 20; i++) publish(admin, "2026-03-09T00:00:00Z", "deposit", "visa", 11 + i, ids[i]);
    rconn *rc;
    consumer *c = new_consumer(&rc, "phoenix", 100);
    assert_int_equal(consumer_step(c), 0);
    assert_int_equal(consumer_fetch(c, 0), 20);
    consumer_free(c); /* "crash" with 20 entries pending */
    rconn_free(rc);
    cmd_ok(admin, "XDEL %s %s %s", KEYS_STREAM, ids[4], ids[5]);
    for (int i = 0; i < 20; i++)
        if (i != 4 && i != 5) want += 11 + i;
    c = new_consumer(&rc, "phoenix", 8); /* same name, smaller pages */
    uint64_t gone_before = metrics_value(stats.gone);
    assert_int_equal(consumer_step(c), 20); /* set-up and recovery */
    assert_int_equal(metrics_value(stats.gone), gone_before + 2);
    assert_int_equal(hget(admin, "2026-03-09", "deposit", "visa"), want);
    assert_int_equal(group_pending(admin), 0);
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_apply_refuses_bad_arguments_and_bad_keys_without_writing(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    char id[64];
    publish(admin, "2026-03-10T00:00:00Z", "deposit", "visa", 5, id);
    redisReply *r = cmd(admin, "XREADGROUP GROUP %s me COUNT 10 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    assert_int_equal(apply_load(admin), 0);
    const char *k = "agg:2026-03-10:deposit";
    struct {
        const char *why;
        const char *argv[20];
        int argc;
    } cases[] = {
        {"count does not add up",
         {KEYS_STREAM, KEYS_TRACKED_DAYS, KEYS_VIRTUAL_CLOCK, KEYS_REJECTED, k, KEYS_GROUP, "me",
          "2026-03-10T00:00:00Z", "1", "1", "0", id, "2", "visa", "5", "2026-03-10"},
         16},
        {"cents not an integer",
         {KEYS_STREAM, KEYS_TRACKED_DAYS, KEYS_VIRTUAL_CLOCK, KEYS_REJECTED, k, KEYS_GROUP, "me",
          "2026-03-10T00:00:00Z", "1", "1", "0", id, "1", "visa", "5.0", "2026-03-10"},
         16},
        {"bad day",
         {KEYS_STREAM, KEYS_TRACKED_DAYS, KEYS_VIRTUAL_CLOCK, KEYS_REJECTED, k, KEYS_GROUP, "me",
          "2026-03-10T00:00:00Z", "1", "1", "0", id, "1", "visa", "5", "10/03/2026"},
         16},
        {"negative n",
         {KEYS_STREAM, KEYS_TRACKED_DAYS, KEYS_VIRTUAL_CLOCK, KEYS_REJECTED, k, KEYS_GROUP, "me",
          "2026-03-10T00:00:00Z", "-1", "1", "0", id, "1", "visa", "5", "2026-03-10"},
         16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = redisCommand(rconn_ctx(admin), "SCRIPT EXISTS x"); /* keep the connection warm */
        freeReplyObject(r);
        apply_args a = {(const char **)cases[i].argv, NULL, (size_t)(cases[i].argc - 5), 0, 5, NULL, 0};
        size_t lens[20];
        for (int j = 0; j < cases[i].argc; j++) lens[j] = strlen(cases[i].argv[j]);
        a.argc = (size_t)cases[i].argc;
        a.l = lens;
        apply_result res;
        apply_run(admin, &a, &res);
        if (res.status != APPLY_EREPLY) fail_msg("%s: status %d", cases[i].why, res.status);
    }
    /* a key of the wrong type: refused before anything is written */
    cmd_ok(admin, "SET %s oops", k);
    const char *good[] = {KEYS_STREAM, KEYS_TRACKED_DAYS, KEYS_VIRTUAL_CLOCK, KEYS_REJECTED, k, KEYS_GROUP, "me",
                          "2026-03-10T00:00:00Z", "1", "1", "0", id, "1", "visa", "5", "2026-03-10"};
    size_t lens[16];
    for (int j = 0; j < 16; j++) lens[j] = strlen(good[j]);
    apply_args a = {good, lens, 16, 0, 5, NULL, 0};
    apply_result res;
    apply_run(admin, &a, &res);
    assert_int_equal(res.status, APPLY_EREPLY);
    assert_non_null(strstr(res.err, "not a hash"));
    assert_int_equal(count_keys(admin, KEYS_TRACKED_DAYS), 0);
    assert_int_equal(count_keys(admin, KEYS_VIRTUAL_CLOCK), 0);
    assert_int_equal(group_pending(admin), 1);
    /* repaired, the same arguments apply */
    cmd_ok(admin, "DEL %s", k);
    apply_run(admin, &a, &res);
    assert_int_equal(res.status, APPLY_OK);
    assert_int_equal(hget(admin, "2026-03-10", "deposit", "visa"), 5);
    rconn_free(admin);
}

static void test_counters_near_the_limits_are_incremented_exactly(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    /* existing values on both sides of the exact-in-Lua bound (15 characters) */
    static const struct {
        const char *method, *before;
        long long before_v;
    } cases[] = {
        {"m15", "999999999999999", 999999999999999LL},      /* 15 digits: summed in Lua */
        {"m16", "9999999999999999", 9999999999999999LL},    /* 16 digits: HINCRBY */
        {"m17", "99999999999999999", 99999999999999999LL},  /* 17 digits: HINCRBY */
        {"neg", "-123456789012345", -123456789012345LL},    /* negative, 15 characters */
        {"neg16", "-9007199254740993", -9007199254740993LL}, /* 2^53 + 1: not a double */
        {"zero", "0", 0},
        {"new", NULL, 0},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++)
        if (cases[i].before) cmd_ok(admin, "HSET agg:2026-03-11:deposit %s %s", cases[i].method, cases[i].before);
    long long inc = 0;
    for (int j = 0; j < 3; j++) {
        for (size_t i = 0; i < n; i++) publish(admin, "2026-03-11T00:00:00Z", "deposit", cases[i].method, 99999999999LL - j, NULL);
        inc += 99999999999LL - j;
    }
    rconn *rc;
    consumer *c = new_consumer(&rc, "limits", 1000);
    drain_all(c, admin);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = cmd(admin, "HGET agg:2026-03-11:deposit %s", cases[i].method);
        char want[32];
        snprintf(want, sizeof want, "%lld", cases[i].before_v + inc);
        if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0)
            fail_msg("%s: got %s want %s", cases[i].method, r->type == REDIS_REPLY_STRING ? r->str : "nil", want);
        freeReplyObject(r);
    }
    /* a value that is not an integer Redis accepts is refused, nothing written */
    cmd_ok(admin, "HSET agg:2026-03-11:deposit m15 007");
    publish(admin, "2026-03-11T00:00:00Z", "deposit", "zero", 1, NULL);
    publish(admin, "2026-03-11T00:00:00Z", "deposit", "m15", 1, NULL);
    for (int i = 0; i < 3; i++) consumer_step(c);
    assert_int_equal(group_pending(admin), 2);
    char want[32];
    snprintf(want, sizeof want, "%lld", inc);
    redisReply *r = cmd(admin, "HGET agg:2026-03-11:deposit zero");
    assert_string_equal(r->str, want);
    freeReplyObject(r);
    r = cmd(admin, "HGET agg:2026-03-11:deposit m15");
    assert_string_equal(r->str, "007");
    freeReplyObject(r);
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static void assert_same_reply(const redisReply *a, const redisReply *b, const char *what)
{
    if (a->type != b->type) fail_msg("%s: type %d vs %d", what, a->type, b->type);
    switch (a->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        if (a->len != b->len || memcmp(a->str, b->str, a->len) != 0 || b->str[b->len] != '\0')
            fail_msg("%s: string differs", what);
        break;
    case REDIS_REPLY_INTEGER:
        if (a->integer != b->integer) fail_msg("%s: integer differs", what);
        break;
    case REDIS_REPLY_ARRAY:
        if (a->elements != b->elements) fail_msg("%s: %zu vs %zu elements", what, a->elements, b->elements);
        for (size_t i = 0; i < a->elements; i++) assert_same_reply(a->element[i], b->element[i], what);
        break;
    default:
        break;
    }
}

static void test_arena_replies_equal_hiredis_replies(void **st)
{
    (void)st;
    rconn *rc = testenv_redis();
    cmd_ok(rc, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    char id[64];
    for (int i = 0; i < 20000; i++) publish(rc, "2026-03-12T00:00:00Z", "deposit", "visa", i + 1, i == 5 ? id : NULL);
    redisReply *r = cmd(rc, "XREADGROUP GROUP %s a COUNT 10 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    cmd_ok(rc, "XDEL %s %s", KEYS_STREAM, id); /* pending and deleted: [id, nil] */
    static const char *cmds[] = {
        "XREADGROUP GROUP aggregators a COUNT 10 STREAMS transactions 0", /* nested, with a nil entry */
        "XRANGE transactions - +",                                        /* ~20,000 entries: several chunks */
        "XREADGROUP GROUP aggregators b COUNT 5 STREAMS transactions >",
        "XREADGROUP GROUP aggregators b STREAMS transactions 99999999999999-0", /* empty */
        "XPENDING transactions nosuchgroup",                                      /* error */
        "PING",                                                                  /* status */
        "XLEN transactions",                                                     /* integer */
        "GET nosuchkey",                                                         /* nil */
        "XPENDING transactions aggregators - + 10 nobody",                       /* empty array */
    };
    reply_arena a;
    reply_arena_init(&a);
    for (int round = 0; round < 2; round++) { /* round 1 reuses the merged chunk */
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            redisReply *want = rconn_cmd(rc, cmds[i]);
            assert_non_null(want);
            if (i == 2) { /* a read delivers new entries each time: compare with XRANGE of the same ids */
                freeReplyObject(want);
                continue;
            }
            assert_int_equal(redisAppendCommand(rconn_ctx(rc), cmds[i]), REDIS_OK);
            redisReply *got = NULL;
            assert_int_equal(reply_arena_get_reply(rconn_ctx(rc), &a, &got), REDIS_OK);
            assert_same_reply(want, got, cmds[i]);
            freeReplyObject(want);
            reply_arena_reset(&a);
        }
    }
    reply_arena_free(&a);
    /* the context still uses hiredis's own objects afterwards */
    r = rconn_cmd(rc, "XLEN %s", KEYS_STREAM);
    assert_int_equal(r->integer, 19999); /* one was deleted */
    freeReplyObject(r);
    rconn_free(rc);
}

static void test_batch_larger_than_the_scripts_unpack_chunk_is_applied_whole(void **st)
{
    (void)st;
    rconn *admin = testenv_redis();
    const int n = 9000; /* > 2 × 4,000: three XACK, HMGET and HSET chunks */
    redisContext *ctx = rconn_ctx(admin);
    for (int i = 0; i < n; i++)
        redisAppendCommand(ctx, "XADD %s * ts 2026-03-13T00:00:00Z type withdrawal method m%d cents %d src x:1",
                           KEYS_STREAM, i, i + 1);
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        assert_int_equal(redisGetReply(ctx, &r), REDIS_OK);
        freeReplyObject(r);
    }
    rconn *rc;
    consumer *c = new_consumer(&rc, "big", n);
    assert_int_equal(consumer_step(c), 0); /* set-up */
    assert_int_equal(consumer_fetch(c, 0), n);
    apply_result res;
    consumer_commit(c, &res);
    assert_int_equal(res.status, APPLY_OK);
    assert_int_equal(res.count, n);
    assert_int_equal(integer(admin, "HLEN agg:2026-03-13:withdrawal"), n);
    for (int i = 0; i < n; i += 997) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        assert_int_equal(hget(admin, "2026-03-13", "withdrawal", m), i + 1);
    }
    assert_int_equal(group_pending(admin), 0);
    consumer_free(c);
    rconn_free(rc);
    rconn_free(admin);
}

static void test_dead_letter_stream_is_kept_to_about_its_bound(void **st)
{
    (void)st;
    rconn *rc = testenv_redis();
    for (int i = 0; i < 1000; i++) {
        redisReply *r = rconn_cmd(rc, "XADD %s * reason amount n %d", KEYS_REJECTED, i);
        freeReplyObject(r);
    }
    long long removed = trim_dead_letters(rc, 100);
    redisReply *r = rconn_cmd(rc, "XLEN %s", KEYS_REJECTED);
    long long left = r->integer;
    freeReplyObject(r);
    assert_true(removed > 0);
    assert_int_equal(left + removed, 1000);
    assert_true(left >= 100 && left < 1000); /* whole nodes: at least the bound, far below the input */
    /* the newest entry survives */
    r = rconn_cmd(rc, "XREVRANGE %s + - COUNT 1", KEYS_REJECTED);
    assert_string_equal(r->element[0]->element[1]->element[3]->str, "999");
    freeReplyObject(r);
    rconn_free(rc);
}

int main(void)
{
    if (!testenv_have_servers()) return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_totals_of_a_few_hundred_entries_are_exact, setup),
        cmocka_unit_test_setup(test_entry_claimed_by_another_consumer_before_apply_is_counted_once, setup),
        cmocka_unit_test_setup(test_malformed_entries_are_dead_lettered_once_and_acknowledged, setup),
        cmocka_unit_test_setup(test_batches_apply_after_the_script_cache_is_flushed, setup),
        cmocka_unit_test_setup(test_virtual_clock_never_moves_backwards, setup),
        cmocka_unit_test_setup(test_trim_never_passes_a_lagging_groups_pending_or_undelivered_entries, setup),
        cmocka_unit_test_setup(test_reaping_deletes_only_idle_consumers_without_pending_entries, setup),
        cmocka_unit_test_setup(test_script_replayed_after_its_reply_was_lost_applies_nothing_more, setup),
        cmocka_unit_test_setup(test_script_lost_before_it_ran_is_applied_by_the_retry, setup),
        cmocka_unit_test_setup(test_dead_consumers_entries_are_claimed_and_applied_once, setup),
        cmocka_unit_test_setup(test_restarted_consumer_recovers_its_pending_and_acks_deleted_entries, setup),
        cmocka_unit_test_setup(test_apply_refuses_bad_arguments_and_bad_keys_without_writing, setup),
        cmocka_unit_test_setup(test_counters_near_the_limits_are_incremented_exactly, setup),
        cmocka_unit_test_setup(test_arena_replies_equal_hiredis_replies, setup),
        cmocka_unit_test_setup(test_batch_larger_than_the_scripts_unpack_chunk_is_applied_whole, setup),
        cmocka_unit_test_setup(test_dead_letter_stream_is_kept_to_about_its_bound, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
