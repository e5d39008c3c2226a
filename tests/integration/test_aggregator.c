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

/* publish n entries of one cell, of first, first + step, first + 2 × step…
 * cents (their ids into ids[i] when ids is given); the sum of their cents. */
static long long publish_series(rconn *rc, int n, const char *ts, const char *type, const char *method,
                                long long first, long long step, char (*ids)[64])
{
    long long sum = 0;
    for (int i = 0; i < n; i++) {
        publish(rc, ts, type, method, first + step * i, ids ? ids[i] : NULL);
        sum += first + step * i;
    }
    return sum;
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

/* ---- the fixture ----------------------------------------------------------
 * Every test starts on an empty Redis (FLUSHALL) with `admin`, a connection of
 * its own to publish and inspect with; setup_group also creates the consumer
 * group first, where a test needs it before any consumer exists.  What a test
 * builds through the fixture (consumers, a script run) is freed by the
 * teardown, also when a failed assertion ends the test half-way. */
#define FX_CONSUMERS 2

/* A batch read by a bare connection, and the script's arguments for it: for
 * the tests that drive apply_send / apply_run by hand. */
typedef struct script_run {
    rconn *rc;
    batch b;
    apply_args a;
    redisReply *owner; /* the XREADGROUP reply the batch was read from */
} script_run;

typedef struct fixture {
    rconn *admin;
    agg_stats stats; /* of every consumer (the counters are process-wide) */
    consumer *c[FX_CONSUMERS];
    rconn *rc[FX_CONSUMERS]; /* c[i]'s connection */
    script_run run;          /* run.rc is NULL until fx_script_run */
} fixture;

static int setup(void **st)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    testenv_flush_redis();
    fx->admin = testenv_redis();
    *st = fx;
    return 0;
}

static int setup_group(void **st)
{
    if (setup(st) != 0) return -1;
    fixture *fx = *st;
    testenv_cmd_ok(fx->admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    return 0;
}

static int teardown(void **st)
{
    fixture *fx = *st;
    for (int i = 0; i < FX_CONSUMERS; i++) {
        consumer_free(fx->c[i]);
        rconn_free(fx->rc[i]);
    }
    if (fx->run.owner) freeReplyObject(fx->run.owner);
    batch_free(&fx->run.b);
    apply_args_free(&fx->run.a);
    rconn_free(fx->run.rc);
    rconn_free(fx->admin);
    free(fx);
    return 0;
}

/* A consumer `name` on a connection of its own (both the fixture's). */
static consumer *fx_consumer(fixture *fx, const char *name, int batch_size)
{
    int i = 0;
    while (i < FX_CONSUMERS && (fx->c[i] || fx->rc[i])) i++;
    if (i == FX_CONSUMERS) fail_msg("more than %d consumers in one test", FX_CONSUMERS);
    txagg_config cfg;
    testenv_config(&cfg);
    fx->rc[i] = rconn_new(&cfg, name);
    assert_int_equal(rconn_ensure(fx->rc[i]), 0);
    agg_stats_init(&fx->stats);
    fx->c[i] = consumer_new(fx->rc[i], name, batch_size, 20, &fx->stats);
    assert_non_null(fx->c[i]);
    return fx->c[i];
}

/* The consumer "crashes": gone with its connection, its entries left pending. */
static void fx_consumer_crash(fixture *fx, consumer *c)
{
    for (int i = 0; i < FX_CONSUMERS; i++)
        if (fx->c[i] == c) {
            consumer_free(fx->c[i]);
            rconn_free(fx->rc[i]);
            fx->c[i] = NULL;
            fx->rc[i] = NULL;
            return;
        }
    fail_msg("not a consumer of the fixture");
}

/* Connect as `name`, load the scripts, read up to 1000 entries as `name` and
 * build the script's arguments for them. */
static script_run *fx_script_run(fixture *fx, const char *name)
{
    script_run *s = &fx->run;
    txagg_config cfg;
    testenv_config(&cfg);
    s->rc = rconn_new(&cfg, name);
    assert_int_equal(rconn_ensure(s->rc), 0);
    assert_int_equal(apply_load(s->rc), 0);
    assert_int_equal(batch_init(&s->b), 0);
    apply_args_init(&s->a);
    s->owner = cmd(s->rc, "XREADGROUP GROUP %s %s COUNT 1000 STREAMS %s >", KEYS_GROUP, name, KEYS_STREAM);
    assert_int_equal(s->owner->type, REDIS_REPLY_ARRAY);
    assert_int_equal(consumer_batch_from_entries(&s->b, s->owner->element[0]->element[1]), 0);
    assert_int_equal(apply_build(&s->a, &s->b, KEYS_GROUP, name, APPLY_OWN_IDS), 0);
    return s;
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
    fixture *fx = *st;
    rconn *admin = fx->admin;
    expect ex;
    memset(&ex, 0, sizeof ex);
    gen_publish(admin, 400, 7, &ex);
    consumer *c = fx_consumer(fx, "exact", 37); /* many batches, the last one partial */
    drain_all(c, admin);
    check_totals(admin, &ex);
    assert_int_equal(integer(admin, "SCARD %s", KEYS_TRACKED_DAYS), GEN_DAYS);
    redisReply *r = cmd(admin, "GET %s", KEYS_VIRTUAL_CLOCK);
    assert_string_equal(r->str, ex.max_ts);
    freeReplyObject(r);
    assert_int_equal(group_pending(admin), 0);
}

static void test_entry_claimed_by_another_consumer_before_apply_is_counted_once(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    char ids[10][64];
    long long want = publish_series(admin, 10, "2026-03-01T12:00:00Z", "deposit", "visa", 100, 1, ids);
    consumer *a = fx_consumer(fx, "owner-a", 100);
    consumer *b = fx_consumer(fx, "thief-b", 100);
    assert_int_equal(consumer_setup(a), 0);
    assert_int_equal(consumer_fetch(a, 0), 10);
    /* B steals one entry between A's read and A's apply (XCLAIM ignores ownership) */
    testenv_cmd_ok(admin, "XCLAIM %s %s thief-b 0 %s", KEYS_STREAM, KEYS_GROUP, ids[3]);
    uint64_t stale_before = metrics_value(fx->stats.stale_batches);
    apply_result res;
    consumer_commit(a, &res);
    assert_int_equal(res.status, APPLY_STALE);
    assert_int_equal(metrics_value(fx->stats.stale_batches), stale_before + 1);
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
}

static void test_malformed_entries_are_dead_lettered_once_and_acknowledged(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    publish(admin, "2026-03-02T00:00:01Z", "deposit", "visa", 500, NULL);
    char bad1[64], bad2[64], bad3[64];
    redisReply *r = cmd(admin, "XADD %s * ts 2026-03-02T00:00:00Z type deposit method visa src x:2", KEYS_STREAM);
    snprintf(bad1, sizeof bad1, "%s", r->str);
    freeReplyObject(r);
    publish(admin, "2026-03-02T00:00:02Z", "deposit", "visa", 0, bad2);
    publish(admin, "2026-03-02T00:00:03Z", "refund", "visa", 5, bad3);
    publish(admin, "2026-03-02T00:00:04Z", "withdrawal", "visa", 700, NULL);
    consumer *c = fx_consumer(fx, "dl", 2);
    uint64_t rejected_before = metrics_value(fx->stats.rejected);
    drain_all(c, admin);
    assert_int_equal(metrics_value(fx->stats.rejected), rejected_before + 3);
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
}

static void test_batches_apply_after_the_script_cache_is_flushed(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    consumer *c = fx_consumer(fx, "noscript", 10);
    assert_int_equal(consumer_step(c), 0); /* set up: scripts loaded, group created */
    for (int round = 0; round < 2; round++) {
        testenv_cmd_ok(admin, "SCRIPT FLUSH");
        publish_series(admin, 25, "2026-03-03T00:00:00Z", "deposit", "amex", 10, 0, NULL);
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
}

static void test_virtual_clock_never_moves_backwards(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    testenv_cmd_ok(admin, "SET %s 2026-06-01T00:00:00Z", KEYS_VIRTUAL_CLOCK);
    consumer *c = fx_consumer(fx, "clock", 100);
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
    fixture *fx = *st;
    rconn *admin = fx->admin;
    assert_int_equal(trim_stream(admin), 0); /* no stream yet */
    testenv_cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    testenv_cmd_ok(admin, "XGROUP CREATE %s other 0", KEYS_STREAM);
    char ids[20][64];
    publish_series(admin, 20, "2026-03-04T00:00:00Z", "deposit", "visa", 1, 0, ids);
    /* the other group has read 5, acknowledged 2: its oldest pending is ids[2] */
    redisReply *r = cmd(admin, "XREADGROUP GROUP other o1 COUNT 5 STREAMS %s >", KEYS_STREAM);
    freeReplyObject(r);
    testenv_cmd_ok(admin, "XACK %s other %s %s", KEYS_STREAM, ids[0], ids[1]);
    consumer *c = fx_consumer(fx, "trimmer", 100);
    drain_all(c, admin); /* our group: everything delivered and acknowledged */
    assert_int_equal(trim_stream(admin), 2);
    assert_int_equal(integer(admin, "XLEN %s", KEYS_STREAM), 18);
    assert_true(entry_exists(admin, ids[2]));
    assert_false(entry_exists(admin, ids[1]));
    assert_int_equal(trim_stream(admin), 0); /* idempotent */

    /* the other group acknowledges all it read: its bound is its last
     * delivered id; what it never received stays */
    testenv_cmd_ok(admin, "XACK %s other %s %s %s", KEYS_STREAM, ids[2], ids[3], ids[4]);
    assert_int_equal(trim_stream(admin), 2);
    assert_int_equal(integer(admin, "XLEN %s", KEYS_STREAM), 16);
    assert_true(entry_exists(admin, ids[4]));
    for (int i = 5; i < 20; i++) assert_true(entry_exists(admin, ids[i]));

    /* our own pending entries are kept too */
    testenv_cmd_ok(admin, "XGROUP DESTROY %s other", KEYS_STREAM);
    char mine[3][64];
    publish_series(admin, 3, "2026-03-04T00:00:00Z", "deposit", "visa", 1, 0, mine);
    assert_int_equal(consumer_fetch(c, 0), 3); /* read, not applied */
    trim_stream(admin);
    for (int i = 0; i < 3; i++) assert_true(entry_exists(admin, mine[i]));
    assert_int_equal(integer(admin, "XLEN %s", KEYS_STREAM), 3);
    drain_all(c, admin);
    trim_stream(admin);
    assert_int_equal(integer(admin, "XLEN %s", KEYS_STREAM), 1); /* the last delivered entry */
    assert_true(entry_exists(admin, mine[2]));
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
    fixture *fx = *st;
    rconn *admin = fx->admin;
    assert_int_equal(trim_reap_consumers(admin, KEYS_GROUP, "me", 0), 0); /* no stream: nothing */
    testenv_cmd_ok(admin, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    publish(admin, "2026-03-05T00:00:00Z", "deposit", "visa", 1, NULL);
    testenv_cmd_ok(admin, "XGROUP CREATECONSUMER %s %s idle-empty", KEYS_STREAM, KEYS_GROUP);
    testenv_cmd_ok(admin, "XGROUP CREATECONSUMER %s %s me", KEYS_STREAM, KEYS_GROUP);
    redisReply *r = cmd(admin, "XREADGROUP GROUP %s idle-pending COUNT 1 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    sig_sleep_ms(300);
    testenv_cmd_ok(admin, "XGROUP CREATECONSUMER %s %s fresh-empty", KEYS_STREAM, KEYS_GROUP);
    assert_int_equal(trim_reap_consumers(admin, KEYS_GROUP, "me", 200), 1);
    assert_false(has_consumer(admin, "idle-empty"));
    assert_true(has_consumer(admin, "idle-pending")); /* DELCONSUMER would drop its entry */
    assert_true(has_consumer(admin, "me"));
    assert_true(has_consumer(admin, "fresh-empty"));
    assert_int_equal(group_pending(admin), 1);
    assert_true(trim_reap_idle_ms(30000) == 600000 && trim_reap_idle_ms(120000) == 1200000);
}

/* The client id of the run's connection (for CLIENT KILL), then its script
 * sent and flushed to Redis, its reply not read; with pause_writes, Redis
 * pauses writes (for 5 s) just before, so the script waits there unrun. */
static long long send_unread(script_run *s, rconn *admin, int pause_writes)
{
    long long id = integer(s->rc, "CLIENT ID");
    if (pause_writes) testenv_cmd_ok(admin, "CLIENT PAUSE 5000 WRITE");
    assert_int_equal(apply_send(s->rc, &s->a), 0);
    for (int done = 0; !done;) assert_int_equal(redisBufferWrite(rconn_ctx(s->rc), &done), REDIS_OK);
    return id;
}

static void test_script_replayed_after_its_reply_was_lost_applies_nothing_more(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    long long want = publish_series(admin, 50, "2026-03-06T00:00:00Z", "withdrawal", "visa", 1000, 1, NULL);
    script_run *s = fx_script_run(fx, "victim");

    /* the script runs, then the connection dies before its reply is read */
    long long id = send_unread(s, admin, 0);
    for (int i = 0; i < 500 && group_pending(admin) != 0; i++) sig_sleep_ms(10);
    assert_int_equal(group_pending(admin), 0);
    assert_int_equal(integer(admin, "CLIENT KILL ID %lld", id), 1);
    rconn_drop(s->rc); /* the reply is never read */

    /* the retry (same arguments, new connection) finds the ids acknowledged */
    apply_result res;
    apply_run(s->rc, &s->a, &res);
    assert_int_equal(res.status, APPLY_STALE);
    assert_int_equal(hget(admin, "2026-03-06", "withdrawal", "visa"), want);
}

static void test_script_lost_before_it_ran_is_applied_by_the_retry(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    long long want = publish_series(admin, 30, "2026-03-07T00:00:00Z", "deposit", "paypal", 7, 1, NULL);
    script_run *s = fx_script_run(fx, "victim2");

    /* writes are paused: the script waits in Redis and dies with its client */
    long long id = send_unread(s, admin, 1);
    sig_sleep_ms(200);
    assert_int_equal(integer(admin, "CLIENT KILL ID %lld", id), 1);
    testenv_cmd_ok(admin, "CLIENT UNPAUSE");
    rconn_drop(s->rc);
    assert_int_equal(consumer_pending(admin, "victim2"), 30);
    assert_int_equal(count_keys(admin, "agg:*"), 0);

    apply_result res;
    apply_run(s->rc, &s->a, &res);
    assert_int_equal(res.status, APPLY_OK);
    assert_int_equal(res.count, 30);
    apply_run(s->rc, &s->a, &res); /* and once more: nothing */
    assert_int_equal(res.status, APPLY_STALE);
    assert_int_equal(hget(admin, "2026-03-07", "deposit", "paypal"), want);
}

static void test_dead_consumers_entries_are_claimed_and_applied_once(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    long long want = publish_series(admin, 30, "2026-03-08T00:00:00Z", "deposit", "visa", 1, 3, NULL);
    redisReply *r = cmd(admin, "XREADGROUP GROUP %s dead COUNT 100 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    consumer *c = fx_consumer(fx, "rescuer", 7);
    assert_int_equal(consumer_step(c), 0);
    assert_int_equal(consumer_claim(c, 60000), 0); /* not idle long enough yet */
    sig_sleep_ms(150);
    uint64_t claims_before = metrics_value(fx->stats.claims);
    assert_int_equal(consumer_claim(c, 100), 30);
    assert_int_equal(metrics_value(fx->stats.claims), claims_before + 30);
    assert_int_equal(hget(admin, "2026-03-08", "deposit", "visa"), want);
    assert_int_equal(group_pending(admin), 0);
    assert_int_equal(consumer_claim(c, 0), 0);
    assert_int_equal(hget(admin, "2026-03-08", "deposit", "visa"), want);
}

static void test_restarted_consumer_recovers_its_pending_and_acks_deleted_entries(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    char ids[20][64];
    long long want = 0;
    publish_series(admin, 20, "2026-03-09T00:00:00Z", "deposit", "visa", 11, 1, ids);
    consumer *c = fx_consumer(fx, "phoenix", 100);
    assert_int_equal(consumer_step(c), 0);
    assert_int_equal(consumer_fetch(c, 0), 20);
    fx_consumer_crash(fx, c); /* with 20 entries pending */
    testenv_cmd_ok(admin, "XDEL %s %s %s", KEYS_STREAM, ids[4], ids[5]);
    for (int i = 0; i < 20; i++)
        if (i != 4 && i != 5) want += 11 + i;
    c = fx_consumer(fx, "phoenix", 8); /* same name, smaller pages */
    uint64_t gone_before = metrics_value(fx->stats.gone);
    assert_int_equal(consumer_step(c), 20); /* set-up and recovery */
    assert_int_equal(metrics_value(fx->stats.gone), gone_before + 2);
    assert_int_equal(hget(admin, "2026-03-09", "deposit", "visa"), want);
    assert_int_equal(group_pending(admin), 0);
}

static void test_apply_refuses_bad_arguments_and_bad_keys_without_writing(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    char id[64];
    publish(admin, "2026-03-10T00:00:00Z", "deposit", "visa", 5, id);
    redisReply *r = cmd(admin, "XREADGROUP GROUP %s me COUNT 10 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    assert_int_equal(apply_load(admin), 0);
    const char *k = "agg:2026-03-10:deposit";
    /* the script's arguments for the pending entry: 6 keys, then ARGV */
    const char *good[] = {KEYS_STREAM, KEYS_TRACKED_DAYS, KEYS_VIRTUAL_CLOCK, KEYS_REJECTED, KEYS_HOT_VERSION, k, KEYS_GROUP, "me",
                          "2026-03-10T00:00:00Z", "1", "1", "0", "ids", id, "1", "visa", "5", "2026-03-10"};
    enum { NARGS = sizeof good / sizeof good[0] };
    /* each case: the good arguments with argument `at` replaced by `bad` */
    static const struct {
        const char *why;
        int at;
        const char *bad;
    } cases[] = {
        {"count does not add up", 14, "2"},
        {"cents not an integer", 16, "5.0"},
        {"bad day", 17, "10/03/2026"},
        {"unknown ownership form", 12, "mine"},
        {"negative n", 9, "-1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = redisCommand(rconn_ctx(admin), "SCRIPT EXISTS x"); /* keep the connection warm */
        freeReplyObject(r);
        const char *argv[NARGS];
        size_t lens[NARGS];
        for (int j = 0; j < NARGS; j++) {
            argv[j] = j == cases[i].at ? cases[i].bad : good[j];
            lens[j] = strlen(argv[j]);
        }
        apply_args a = {argv, lens, NARGS, 0, 6, NULL, 0};
        apply_result res;
        apply_run(admin, &a, &res);
        if (res.status != APPLY_EREPLY) fail_msg("%s: status %d", cases[i].why, res.status);
    }
    /* a key of the wrong type: refused before anything is written */
    testenv_cmd_ok(admin, "SET %s oops", k);
    size_t lens[NARGS];
    for (int j = 0; j < NARGS; j++) lens[j] = strlen(good[j]);
    apply_args a = {good, lens, NARGS, 0, 6, NULL, 0};
    apply_result res;
    apply_run(admin, &a, &res);
    assert_int_equal(res.status, APPLY_REFUSED); /* names the counter: the consumer isolates its entries */
    assert_non_null(strstr(res.err, "not a hash"));
    assert_int_equal(count_keys(admin, KEYS_TRACKED_DAYS), 0);
    assert_int_equal(count_keys(admin, KEYS_VIRTUAL_CLOCK), 0);
    assert_int_equal(group_pending(admin), 1);
    /* repaired, the same arguments apply */
    testenv_cmd_ok(admin, "DEL %s", k);
    apply_run(admin, &a, &res);
    assert_int_equal(res.status, APPLY_OK);
    assert_int_equal(hget(admin, "2026-03-10", "deposit", "visa"), 5);
}

static void test_counters_near_the_limits_are_incremented_exactly(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
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
        if (cases[i].before) testenv_cmd_ok(admin, "HSET agg:2026-03-11:deposit %s %s", cases[i].method, cases[i].before);
    long long inc = 0;
    for (int j = 0; j < 3; j++) {
        for (size_t i = 0; i < n; i++) publish(admin, "2026-03-11T00:00:00Z", "deposit", cases[i].method, 99999999999LL - j, NULL);
        inc += 99999999999LL - j;
    }
    consumer *c = fx_consumer(fx, "limits", 1000);
    drain_all(c, admin);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = cmd(admin, "HGET agg:2026-03-11:deposit %s", cases[i].method);
        char want[32];
        snprintf(want, sizeof want, "%lld", cases[i].before_v + inc);
        if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0)
            fail_msg("%s: got %s want %s", cases[i].method, r->type == REDIS_REPLY_STRING ? r->str : "nil", want);
        freeReplyObject(r);
    }
    /* a value that is not an integer Redis accepts is refused: its entry is
     * dead-lettered, the rest of the batch applied, the value left alone */
    testenv_cmd_ok(admin, "HSET agg:2026-03-11:deposit m15 007");
    publish(admin, "2026-03-11T00:00:00Z", "deposit", "zero", 1, NULL);
    publish(admin, "2026-03-11T00:00:00Z", "deposit", "m15", 1, NULL);
    for (int i = 0; i < 3; i++) consumer_step(c);
    assert_int_equal(group_pending(admin), 0);
    assert_int_equal(integer(admin, "XLEN %s", KEYS_REJECTED), 1);
    char want[32];
    snprintf(want, sizeof want, "%lld", inc + 1);
    redisReply *r = cmd(admin, "HGET agg:2026-03-11:deposit zero");
    assert_string_equal(r->str, want);
    freeReplyObject(r);
    r = cmd(admin, "HGET agg:2026-03-11:deposit m15");
    assert_string_equal(r->str, "007");
    freeReplyObject(r);
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
    fixture *fx = *st;
    rconn *rc = fx->admin;
    char id[64];
    for (int i = 0; i < 20000; i++) publish(rc, "2026-03-12T00:00:00Z", "deposit", "visa", i + 1, i == 5 ? id : NULL);
    redisReply *r = cmd(rc, "XREADGROUP GROUP %s a COUNT 10 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    freeReplyObject(r);
    testenv_cmd_ok(rc, "XDEL %s %s", KEYS_STREAM, id); /* pending and deleted: [id, nil] */
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
}

static void test_batch_larger_than_the_scripts_unpack_chunk_is_applied_whole(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
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
    consumer *c = fx_consumer(fx, "big", n);
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
}

static void test_dead_letter_stream_is_kept_to_about_its_bound(void **st)
{
    fixture *fx = *st;
    rconn *rc = fx->admin;
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
}

/* ---- valid input never stalls: exact int64 bounds, refused counters ------- */

/* XADD n entries for one cell in one pipeline; cents_of(i) gives each amount. */
static void publish_many(rconn *rc, long n, const char *ts, const char *type, const char *method, long long cents)
{
    redisContext *ctx = rconn_ctx(rc);
    for (long i = 0; i < n; i++)
        assert_int_equal(redisAppendCommand(ctx, "XADD %s * ts %s type %s method %s cents %lld src t.csv:%ld",
                                            KEYS_STREAM, ts, type, method, cents, i + 2),
                         REDIS_OK);
    for (long i = 0; i < n; i++) {
        void *r = NULL;
        assert_int_equal(redisGetReply(ctx, &r), REDIS_OK);
        freeReplyObject(r);
    }
}

static void assert_field(rconn *rc, const char *key, const char *field, const char *want)
{
    redisReply *r = cmd(rc, "HGET %s %s", key, field);
    if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0)
        fail_msg("%s %s: got %s want %s", key, field, r->type == REDIS_REPLY_STRING ? r->str : "nil", want);
    freeReplyObject(r);
}

/* BATCH_SIZE may be 100,000 and a row 1e11 cents: one cell of one batch sums
 * to 1e16 (17 digits), which must apply like any other sum. */
static void test_a_full_batch_of_maximum_rows_for_one_cell_is_applied_exactly(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    publish_many(admin, 100000, "2026-03-11T10:00:00Z", "deposit", "visa", 100000000000LL);
    consumer *c = fx_consumer(fx, "maxrows", 100000);
    drain_all(c, admin);
    assert_field(admin, "agg:2026-03-11:deposit", "visa", "10000000000000000");
    assert_int_equal(integer(admin, "XLEN %s", KEYS_REJECTED), 0);
}

/* HINCRBY makes 18- and 19-digit counters long before 2^63: they keep counting
 * exactly, up to INT64_MAX itself. */
static void test_counters_past_17_digits_keep_counting_exactly_up_to_int64_max(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    testenv_cmd_ok(admin, "HSET agg:2026-03-11:deposit visa 99999999900000000");     /* 999,999 maximum rows */
    testenv_cmd_ok(admin, "HSET agg:2026-03-11:deposit amex 999999999999999999");    /* 18 digits */
    testenv_cmd_ok(admin, "HSET agg:2026-03-11:deposit jcb 9223371936854775807");    /* INT64_MAX - 1e11 */
    testenv_cmd_ok(admin, "HSET agg:2026-03-11:deposit diners 9223372036854775806"); /* INT64_MAX - 1 */
    publish_many(admin, 2, "2026-03-11T10:00:00Z", "deposit", "visa", 100000000000LL);
    publish_many(admin, 1, "2026-03-11T10:00:00Z", "deposit", "amex", 1);
    publish_many(admin, 1, "2026-03-11T10:00:00Z", "deposit", "jcb", 100000000000LL);
    publish_many(admin, 1, "2026-03-11T10:00:00Z", "deposit", "diners", 1);
    consumer *c = fx_consumer(fx, "digits", 1000);
    drain_all(c, admin);
    assert_field(admin, "agg:2026-03-11:deposit", "visa", "100000199900000000");
    assert_field(admin, "agg:2026-03-11:deposit", "amex", "1000000000000000000");
    assert_field(admin, "agg:2026-03-11:deposit", "jcb", "9223372036854775807");
    assert_field(admin, "agg:2026-03-11:deposit", "diners", "9223372036854775807");
    assert_int_equal(integer(admin, "XLEN %s", KEYS_REJECTED), 0);
}

/* The reason and stream id of every dead letter, "reason id" per line. */
static void dead_letters(rconn *rc, char *out, size_t n)
{
    out[0] = '\0';
    redisReply *r = cmd(rc, "XRANGE %s - +", KEYS_REJECTED);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        const char *reason = "", *id = "";
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (!strcmp(f->element[j]->str, "reason")) reason = f->element[j + 1]->str;
            if (!strcmp(f->element[j]->str, "id")) id = f->element[j + 1]->str;
        }
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s %s\n", reason, id);
    }
    freeReplyObject(r);
}

/* A counter that cannot take an entry (at INT64_MAX, or a key of the wrong
 * type) costs exactly the entries that touch it: they are dead-lettered with
 * their reason and counted; every other entry of the batch is applied and
 * nothing stays pending. */
static void test_entries_a_counter_refuses_are_dead_lettered_and_the_rest_of_the_batch_applied(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    testenv_cmd_ok(admin, "HSET agg:2026-03-12:deposit visa 9223372036854775657"); /* INT64_MAX - 150 */
    testenv_cmd_ok(admin, "SET agg:2026-03-13:withdrawal oops");                   /* not a hash */
    char poison[4][64], want_dead[512] = "";
    long long ok_sum = 0;
    for (int i = 0; i < 5000; i++) {
        if (i == 1000) publish(admin, "2026-03-12T01:00:00Z", "deposit", "visa", 100, NULL); /* fits: 50 left */
        else if (i == 2000 || i == 3000) publish(admin, "2026-03-12T01:00:00Z", "deposit", "visa", 100, poison[i / 1000 - 2]);
        else if (i == 2500 || i == 4000) publish(admin, "2026-03-13T01:00:00Z", "withdrawal", "visa", 7, poison[i == 2500 ? 2 : 3]);
        else {
            publish(admin, "2026-03-12T01:00:00Z", "deposit", "amex", i + 1, NULL);
            ok_sum += i + 1;
        }
    }
    /* poison ids in stream order: 2000, 2500, 3000, 4000 */
    const char *order[4] = {poison[0], poison[2], poison[1], poison[3]};
    for (int i = 0; i < 4; i++) {
        size_t len = strlen(want_dead);
        snprintf(want_dead + len, sizeof want_dead - len, "%s %s\n", BATCH_REASON_REFUSED, order[i]);
    }
    consumer *c = fx_consumer(fx, "poison", 5000);
    uint64_t refused_before = metrics_value(fx->stats.refused);
    drain_all(c, admin);
    char got[512];
    dead_letters(admin, got, sizeof got);
    assert_string_equal(got, want_dead);
    assert_int_equal(metrics_value(fx->stats.refused), refused_before + 4);
    assert_int_equal(hget(admin, "2026-03-12", "deposit", "amex"), ok_sum);
    assert_field(admin, "agg:2026-03-12:deposit", "visa", "9223372036854775757");
    redisReply *r = cmd(admin, "GET agg:2026-03-13:withdrawal");
    assert_string_equal(r->str, "oops");
    freeReplyObject(r);
    /* each dead letter says why */
    r = cmd(admin, "XRANGE %s - + COUNT 1", KEYS_REJECTED);
    const redisReply *f = r->element[0]->element[1];
    int saw_detail = 0;
    for (size_t j = 0; j + 1 < f->elements; j += 2)
        if (!strcmp(f->element[j]->str, "detail") && strstr(f->element[j + 1]->str, "9223372036854775807")) saw_detail = 1;
    freeReplyObject(r);
    assert_true(saw_detail);
    assert_int_equal(group_pending(admin), 0);
}

/* A system key of the wrong type names no counter: nothing can be isolated,
 * so the consumer applies nothing, keeps everything pending, and goes on by
 * itself once the key is repaired. */
static void test_a_system_key_of_the_wrong_type_holds_the_batch_until_repaired(void **st)
{
    fixture *fx = *st;
    rconn *admin = fx->admin;
    testenv_cmd_ok(admin, "SET %s oops", KEYS_TRACKED_DAYS);
    publish_series(admin, 10, "2026-03-14T00:00:00Z", "deposit", "visa", 3, 0, NULL);
    consumer *c = fx_consumer(fx, "sysbad", 100);
    for (int i = 0; i < 3; i++) consumer_step(c);
    assert_int_equal(group_pending(admin), 10);
    assert_int_equal(hget(admin, "2026-03-14", "deposit", "visa"), 0);
    assert_int_equal(integer(admin, "XLEN %s", KEYS_REJECTED), 0);
    testenv_cmd_ok(admin, "DEL %s", KEYS_TRACKED_DAYS);
    drain_all(c, admin);
    assert_int_equal(hget(admin, "2026-03-14", "deposit", "visa"), 30);
}

/* cmocka names each test after its function. */
#define FX_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
#define FX_TEST_GROUP(t) cmocka_unit_test_setup_teardown(t, setup_group, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_totals_of_a_few_hundred_entries_are_exact),
        FX_TEST_GROUP(test_entry_claimed_by_another_consumer_before_apply_is_counted_once),
        FX_TEST(test_malformed_entries_are_dead_lettered_once_and_acknowledged),
        FX_TEST(test_batches_apply_after_the_script_cache_is_flushed),
        FX_TEST(test_virtual_clock_never_moves_backwards),
        FX_TEST(test_trim_never_passes_a_lagging_groups_pending_or_undelivered_entries),
        FX_TEST(test_reaping_deletes_only_idle_consumers_without_pending_entries),
        FX_TEST_GROUP(test_script_replayed_after_its_reply_was_lost_applies_nothing_more),
        FX_TEST_GROUP(test_script_lost_before_it_ran_is_applied_by_the_retry),
        FX_TEST_GROUP(test_dead_consumers_entries_are_claimed_and_applied_once),
        FX_TEST(test_restarted_consumer_recovers_its_pending_and_acks_deleted_entries),
        FX_TEST_GROUP(test_apply_refuses_bad_arguments_and_bad_keys_without_writing),
        FX_TEST(test_counters_near_the_limits_are_incremented_exactly),
        FX_TEST_GROUP(test_arena_replies_equal_hiredis_replies),
        FX_TEST(test_batch_larger_than_the_scripts_unpack_chunk_is_applied_whole),
        FX_TEST(test_dead_letter_stream_is_kept_to_about_its_bound),
        FX_TEST_GROUP(test_a_full_batch_of_maximum_rows_for_one_cell_is_applied_exactly),
        FX_TEST(test_counters_past_17_digits_keep_counting_exactly_up_to_int64_max),
        FX_TEST_GROUP(test_entries_a_counter_refuses_are_dead_lettered_and_the_rest_of_the_batch_applied),
        FX_TEST_GROUP(test_a_system_key_of_the_wrong_type_holds_the_batch_until_repaired),
    };
    return testenv_run(tests, NULL, NULL);
}
