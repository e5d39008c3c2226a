/* A stream entry round-trips through the real Redis with hiredis; scripts
 * survive a flushed script cache; a dropped connection is re-made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "metrics.h"
#include "redis.h"
#include "stream.h"
#include "testenv.h"

static int setup(void **st)
{
    (void)st;
    testenv_flush_redis();
    return 0;
}

static void test_stream_entry_round_trips_through_a_consumer_group(void **st)
{
    (void)st;
    rconn *rc = testenv_redis();
    redisReply *r = rconn_cmd(rc, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    r = rconn_cmd(rc, "XADD %s * ts %s type %s method %s cents %s src %s", KEYS_STREAM, "2026-01-05T03:33:58Z",
                  "withdrawal", "apple_pay", "168786", "sample.csv:2");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char id[64];
    snprintf(id, sizeof id, "%s", r->str);
    freeReplyObject(r);

    r = rconn_cmd(rc, "XREADGROUP GROUP %s c1 COUNT 10 STREAMS %s >", KEYS_GROUP, KEYS_STREAM);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    redisReply *entries = r->element[0]->element[1];
    assert_int_equal(entries->elements, 1);
    redisReply *e = entries->element[0];
    assert_string_equal(e->element[0]->str, id);
    redisReply *f = e->element[1];
    assert_int_equal(f->elements, 10);
    assert_string_equal(f->element[6]->str, "cents");
    assert_string_equal(f->element[7]->str, "168786");
    freeReplyObject(r);

    r = rconn_cmd(rc, "XACK %s %s %s", KEYS_STREAM, KEYS_GROUP, id);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = rconn_cmd(rc, "XPENDING %s %s", KEYS_STREAM, KEYS_GROUP);
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
    rconn_free(rc);
}

static void test_script_runs_again_after_the_script_cache_is_flushed(void **st)
{
    (void)st;
    rconn *rc = testenv_redis();
    rscript s = RSCRIPT_INIT("incr2", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
    const char *argv[] = {"counter", "2"};
    redisReply *r = rscript_run(rc, &s, 1, 2, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    assert_int_equal(strlen(s.sha), 40);

    r = rconn_cmd(rc, "SCRIPT FLUSH");
    freeReplyObject(r);
    r = rscript_run(rc, &s, 1, 2, argv, NULL); /* NOSCRIPT → reload → retry */
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 4);
    freeReplyObject(r);
    rconn_free(rc);
}

static void test_connection_killed_by_the_server_is_re_made(void **st)
{
    (void)st;
    txagg_config cfg;
    testenv_config(&cfg);
    rconn *victim = rconn_new(&cfg, "victim");
    assert_int_equal(rconn_ensure(victim), 0);
    rconn *admin = testenv_redis();
    redisReply *r = rconn_cmd(admin, "CLIENT KILL TYPE normal SKIPME yes");
    assert_non_null(r);
    assert_true(r->integer >= 1);
    freeReplyObject(r);

    r = rconn_cmd(victim, "PING"); /* the dead socket: an I/O error, context dropped */
    if (r) freeReplyObject(r);
    uint64_t errors_before = rconn_error_total();
    int64_t deadline = 50;
    while (!(r = rconn_cmd(victim, "PING")) && deadline--) {
    }
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    assert_true(rconn_error_total() >= errors_before);
    assert_true(rconn_reconnect_total() >= 1);
    rconn_free(victim);
    rconn_free(admin);
}

static void test_unreachable_server_fails_fast_with_backoff(void **st)
{
    (void)st;
    txagg_config cfg;
    testenv_config(&cfg);
    cfg.redis_port = 1; /* nothing listens there */
    rconn *rc = rconn_new(&cfg, NULL);
    assert_int_equal(rconn_ensure(rc), -1);
    assert_non_null(strstr(rconn_error(rc), "connect"));
    assert_int_equal(rconn_ensure(rc), -1); /* within the backoff: no attempt, still -1 */
    assert_null(rconn_cmd(rc, "PING"));
    /* txagg_redis_up: a server of this process failed its last contact */
    assert_int_equal(rconn_up(), 0);
    char *text = metrics_render(NULL);
    assert_non_null(strstr(text, "\ntxagg_redis_up 0\n"));
    free(text);
    rconn_free(rc);
}

static void test_backlog_is_exact_and_survives_a_stale_or_missing_lag(void **st)
{
    (void)st;
    rconn *rc = testenv_redis();
    stream_backlog b;
    assert_int_equal(stream_group_backlog(rc, "s", "g", &b), 0);
    assert_false(b.found);
    assert_int_equal(b.length, 0);

    testenv_cmd_ok(rc, "XGROUP CREATE s g 0 MKSTREAM");
    char ids[6][32];
    for (int i = 0; i < 6; i++) {
        redisReply *r = rconn_cmd(rc, "XADD s * n %d", i);
        snprintf(ids[i], sizeof ids[i], "%s", r->str);
        freeReplyObject(r);
    }
    redisReply *r = rconn_cmd(rc, "XREADGROUP GROUP g c COUNT 2 STREAMS s >");
    freeReplyObject(r);
    assert_int_equal(stream_group_backlog(rc, "s", "g", &b), 0);
    assert_true(b.found);
    assert_int_equal(b.length, 6);
    assert_int_equal(b.pending, 2);
    assert_int_equal(b.lag, 4);

    /* Everything delivered and acknowledged, but Redis's entries-read counter
     * reset (as after an AOF reload): its lag says 6, the truth is 0. */
    r = rconn_cmd(rc, "XREADGROUP GROUP g c COUNT 10 STREAMS s >");
    freeReplyObject(r);
    for (int i = 0; i < 6; i++) testenv_cmd_ok(rc, "XACK s g %s", ids[i]);
    testenv_cmd_ok(rc, "XGROUP SETID s g $ ENTRIESREAD 0");
    r = rconn_cmd(rc, "XINFO GROUPS s");
    long long reported = -1;
    for (size_t j = 0; j + 1 < r->element[0]->elements; j += 2)
        if (!strcmp(r->element[0]->element[j]->str, "lag")) reported = r->element[0]->element[j + 1]->integer;
    freeReplyObject(r);
    assert_int_equal(reported, 6); /* the stale value we must not believe */
    assert_int_equal(stream_group_backlog(rc, "s", "g", &b), 0);
    assert_int_equal(b.lag, 0);
    assert_int_equal(b.pending, 0);

    /* Deleting an undelivered entry makes lag nil: bounded by the length. */
    testenv_cmd_ok(rc, "XGROUP SETID s g %s", ids[3]);
    testenv_cmd_ok(rc, "XDEL s %s", ids[4]);
    assert_int_equal(stream_group_backlog(rc, "s", "g", &b), 0);
    assert_true(b.lag >= 1 && b.lag + b.pending <= b.length);
    rconn_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_stream_entry_round_trips_through_a_consumer_group, setup),
        cmocka_unit_test_setup(test_script_runs_again_after_the_script_cache_is_flushed, setup),
        cmocka_unit_test_setup(test_connection_killed_by_the_server_is_re_made, setup),
        cmocka_unit_test_setup(test_unreachable_server_fails_fast_with_backoff, setup),
        cmocka_unit_test_setup(test_backlog_is_exact_and_survives_a_stale_or_missing_lag, setup),
    };
    return testenv_run(tests, NULL, NULL);
}
