/* The aggregator's consumers on a partitioned hot tier (REDIS_PARTITIONS=4 on
 * the harness's Redis; hand-off 2 of the partition contract): a partition's
 * batch lands in that partition's keys only (its hashes, tracked set, clock,
 * dead letters, hot version), a counter that refuses its increment is
 * isolated inside its partition, and a partition whose batches are refused
 * for a system key is held off while another partition goes on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../aggregator/consumer.h"
#include "../../aggregator/stats.h"
#include "keys.h"
#include "signals.h"
#include "testenv.h"
#include "tier.h"

#define PARTS 4

typedef struct fixture {
    txagg_config cfg;
    tier t;
    rconn *admin;
    agg_stats st;
} fixture;

static int setup(void **state)
{
    static fixture fx;
    testenv_flush_redis();
    testenv_config(&fx.cfg);
    fx.cfg.redis_partitions = PARTS;
    char err[256];
    assert_int_equal(tier_init(&fx.t, &fx.cfg, "test-agg-parts", err, sizeof err), 0);
    assert_int_equal(tier_check_layout(&fx.t, err, sizeof err), TIER_OK);
    fx.admin = testenv_redis();
    agg_stats_init(&fx.st);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    rconn_free(fx->admin);
    tier_free(&fx->t);
    return 0;
}

static void add(fixture *fx, int p, const char *entry)
{
    redisReply *r = testenv_cmd(fx->admin, "XADD %s * tx %s", fx->t.parts[p].stream, entry);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

static long long hget(fixture *fx, const char *key, const char *field)
{
    redisReply *r = testenv_cmd(fx->admin, "HGET %s %s", key, field);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v;
}

static long long integer(fixture *fx, const char *fmt, const char *key)
{
    redisReply *r = testenv_cmd(fx->admin, fmt, key);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

/* Steps until n entries were applied (or 50 steps). */
static long run(consumer *c, long n)
{
    long total = 0;
    for (int i = 0; i < 50 && total < n; i++) {
        long k = consumer_step(c);
        if (k > 0) total += k;
    }
    return total;
}

static void test_a_partitions_batch_lands_in_its_own_keys_only(void **state)
{
    fixture *fx = *state;
    add(fx, 2, "2026-03-01T10:00:00Z deposit visa 10.50 t:1");
    add(fx, 2, "2026-03-01T11:00:00Z deposit visa 1.25 t:2");
    add(fx, 2, "2026-03-02T09:00:00Z withdrawal paypal 3.00 t:3");
    add(fx, 2, "2026-03-02T09:00:00Z refund paypal 3.00 t:4"); /* malformed */
    consumer *c = consumer_new_part(&fx->t, 2, "pc", 100, 20, &fx->st);
    assert_non_null(c);
    assert_int_equal(run(c, 4), 4);
    const keys_part *p = &fx->t.parts[2];
    char key[KEYS_NAME_MAX];
    keys_agg(key, sizeof key, p, "2026-03-01", "deposit");
    assert_int_equal(hget(fx, key, "visa"), 1175);
    keys_agg(key, sizeof key, p, "2026-03-02", "withdrawal");
    assert_int_equal(hget(fx, key, "paypal"), 300);
    assert_int_equal(integer(fx, "SCARD %s", p->tracked), 2);
    assert_int_equal(integer(fx, "XLEN %s", p->rejected), 1);
    assert_int_equal(integer(fx, "EXISTS %s", p->hot_version), 1);
    redisReply *r = testenv_cmd(fx->admin, "GET %s", p->clock);
    assert_string_equal(r->str, "2026-03-02T09:00:00Z");
    freeReplyObject(r);
    /* nothing under another partition's names, nor untagged */
    keys_agg(key, sizeof key, &fx->t.parts[1], "2026-03-01", "deposit");
    assert_int_equal(integer(fx, "EXISTS %s", key), 0);
    assert_int_equal(integer(fx, "EXISTS %s", "agg:2026-03-01:deposit"), 0);
    assert_int_equal(integer(fx, "EXISTS %s", KEYS_VIRTUAL_CLOCK), 0);
    assert_int_equal(integer(fx, "EXISTS %s", KEYS_STREAM), 0);
    /* everything acknowledged in partition 2's group */
    r = testenv_cmd(fx->admin, "XPENDING %s %s", p->stream, KEYS_GROUP);
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
    consumer_free(c);
}

static void test_a_refused_counter_is_isolated_inside_its_partition(void **state)
{
    fixture *fx = *state;
    const keys_part *p = &fx->t.parts[3];
    char key[KEYS_NAME_MAX];
    keys_agg(key, sizeof key, p, "2026-04-01", "deposit");
    testenv_cmd_ok(fx->admin, "SET %s notahash", key); /* this counter refuses every increment */
    add(fx, 3, "2026-04-01T10:00:00Z deposit visa 5.00 t:1");
    add(fx, 3, "2026-04-02T10:00:00Z deposit visa 7.00 t:2");
    add(fx, 3, "2026-04-02T11:00:00Z deposit visa 1.00 t:3");
    consumer *c = consumer_new_part(&fx->t, 3, "pc", 100, 20, &fx->st);
    assert_int_equal(run(c, 3), 3);
    char other[KEYS_NAME_MAX];
    keys_agg(other, sizeof other, p, "2026-04-02", "deposit");
    assert_int_equal(hget(fx, other, "visa"), 800);
    assert_int_equal(integer(fx, "XLEN %s", p->rejected), 1); /* the refused entry, dead-lettered */
    redisReply *r = testenv_cmd(fx->admin, "XRANGE %s - +", p->rejected);
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->element[1]->element[1]->str, "counter_refused");
    freeReplyObject(r);
    consumer_free(c);
}

static void test_a_partition_refused_for_a_system_key_is_held_off_while_another_goes_on(void **state)
{
    fixture *fx = *state;
    testenv_cmd_ok(fx->admin, "SET %s notaset", fx->t.parts[0].tracked); /* every batch of 0 refused */
    add(fx, 0, "2026-05-01T10:00:00Z deposit visa 2.00 t:1");
    add(fx, 1, "2026-05-01T10:00:00Z deposit visa 3.00 t:2");
    consumer *c0 = consumer_new_part(&fx->t, 0, "pc", 100, 20, &fx->st);
    consumer *c1 = consumer_new_part(&fx->t, 1, "pc", 100, 20, &fx->st);
    long applied0 = 0, applied1 = 0;
    for (int i = 0; i < 20; i++) { /* rounds, as the service loop: one step each */
        long k = consumer_step(c0);
        if (k > 0) applied0 += k;
        k = consumer_step(c1);
        if (k > 0) applied1 += k;
    }
    assert_int_equal(applied0, 0);
    assert_int_equal(applied1, 1);
    assert_true(consumer_idle(c0)); /* held off: nothing to do for now */
    char key[KEYS_NAME_MAX];
    keys_agg(key, sizeof key, &fx->t.parts[1], "2026-05-01", "deposit");
    assert_int_equal(hget(fx, key, "visa"), 300);
    /* repaired: partition 0 applies its entry once held off no more */
    testenv_cmd_ok(fx->admin, "DEL %s", fx->t.parts[0].tracked);
    long done = 0;
    for (int i = 0; i < 300 && done < 1; i++) {
        long k = consumer_step(c0);
        if (k > 0) done += k;
        else sig_sleep_ms(10);
    }
    assert_int_equal(done, 1);
    keys_agg(key, sizeof key, &fx->t.parts[0], "2026-05-01", "deposit");
    assert_int_equal(hget(fx, key, "visa"), 200);
    consumer_free(c0);
    consumer_free(c1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_partitions_batch_lands_in_its_own_keys_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_counter_is_isolated_inside_its_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_partition_refused_for_a_system_key_is_held_off_while_another_goes_on,
                                        setup, teardown),
    };
    return testenv_run(tests, NULL, NULL);
}
