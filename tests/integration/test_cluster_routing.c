/* The cluster layer against a real Redis Cluster (3 primaries + 3 replicas,
 * tests/lib/cluster.sh): key slots as the nodes compute them, every key on the
 * primary serving its slot, scripts and transactions routed whole, the replica
 * wait on a cluster primary, bad seeds and a cluster without full slot
 * coverage refused with an error naming REDIS_CLUSTER; on one Redis the same
 * calls use the one server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "keys.h"
#include "signals.h"
#include "testcluster.h"
#include "testenv.h"

static char dir[1024];
static txagg_config ccfg; /* REDIS_CLUSTER = the test cluster's seeds */

static int setup(void **st)
{
    (void)st;
    if (!testenv_have_servers()) return 0;
    if (tcluster_start("cluster-routing", dir, sizeof dir, &ccfg) != 0) return -1;
    ccfg.redis_timeout_ms = 10000; /* a loaded machine must not end a retry early */
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tcluster_stop(dir);
    return 0;
}

static rcluster *cluster(const char *name)
{
    rcluster *cl = rcluster_new(&ccfg, name);
    assert_non_null(cl);
    assert_true(rcluster_is_cluster(cl));
    return cl;
}

static int slot_of(const char *key) { return keys_slot(key, strlen(key)); }

static void test_keyslot_agrees_with_the_nodes_for_thousands_of_random_keys(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = cluster("keyslot");
    rconn *rc = rcluster_conn(cl, 0);
    assert_non_null(rc);
    assert_int_equal(rconn_ensure(rc), 0);
    enum { N = 3000 };
    static char keys[N][48];
    static size_t lens[N];
    static const char alphabet[] = "{}{}ab\0c:xyz{}";
    srand(20260105);
    for (int i = 0; i < N; i++) {
        lens[i] = (size_t)(rand() % 40);
        for (size_t j = 0; j < lens[i]; j++) /* many braces and a NUL: tags, empty tags, nesting */
            keys[i][j] = i % 3 ? alphabet[rand() % (int)(sizeof alphabet - 1)] : (char)(rand() % 256);
        const char *argv[] = {"CLUSTER", "KEYSLOT", keys[i]};
        size_t argl[] = {7, 7, lens[i]};
        assert_int_equal(redisAppendCommandArgv(rconn_ctx(rc), 3, argv, argl), REDIS_OK);
    }
    int tagged = 0;
    for (int i = 0; i < N; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(rconn_ctx(rc), (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        int mine = keys_slot(keys[i], lens[i]);
        if (mine != r->integer) print_error("key #%d (%zu bytes): %d, node says %lld\n", i, lens[i], mine, r->integer);
        assert_int_equal(mine, r->integer);
        tagged += memchr(keys[i], '{', lens[i]) != NULL;
        freeReplyObject(r);
    }
    assert_true(tagged > N / 3);
    rcluster_free(cl);
}

static void test_every_key_lands_on_the_primary_serving_its_slot(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = cluster("router");
    uint64_t moved0 = rcluster_redirect_total(RCLUSTER_MOVED);
    enum { N = 1000 };
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "route:%d", i);
        snprintf(val, sizeof val, "v%d", i * 7);
        redisReply *r = rcluster_cmd(cl, slot_of(key), "SET %s %s", key, val);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
        assert_ptr_equal(rcluster_last_conn(cl), rcluster_conn(cl, slot_of(key)));
    }
    /* Read each key straight from the connection rcluster_conn names, no
     * redirection followed: a wrong route would answer MOVED. */
    rconn *prim[8];
    int nprim = rcluster_primaries(cl, prim, 8);
    assert_int_equal(nprim, 3);
    int per[8] = {0};
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "route:%d", i);
        snprintf(val, sizeof val, "v%d", i * 7);
        rconn *rc = rcluster_conn(cl, slot_of(key));
        redisReply *r = rconn_cmd(rc, "GET %s", key);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_STRING) print_error("%s on %s:%d: %s\n", key, rconn_host(rc), rconn_port(rc), r->str);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, val);
        freeReplyObject(r);
        int k = 0;
        while (k < nprim && prim[k] != rc) k++;
        assert_true(k < nprim);
        per[k]++;
    }
    for (int k = 0; k < nprim; k++) assert_true(per[k] > N / 10); /* all three primaries serve keys */
    /* the map agrees with the nodes' own view */
    for (int s = 0; s < RCLUSTER_SLOTS; s += 4093) {
        int port = tcluster_int("cluster_owner %s %d", dir, s);
        assert_int_equal(rconn_port(rcluster_conn(cl, s)), port);
    }
    assert_int_equal(rcluster_redirect_total(RCLUSTER_MOVED), moved0);
    rcluster_free(cl);
}

static void test_scripts_and_transactions_run_whole_on_their_slot(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = cluster("scripts");
    int slot = slot_of("{s}n");
    rscript s = RSCRIPT_INIT("incrby2", "redis.call('INCRBY', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], ARGV[1])");
    const char *argv[] = {"{s}n", "{s}m", "3"};
    redisReply *r = rcluster_script(cl, slot, &s, 2, 3, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 3);
    freeReplyObject(r);
    /* each node has its own script cache: an emptied one is filled again */
    r = rconn_cmd(rcluster_conn(cl, slot), "SCRIPT FLUSH");
    assert_non_null(r);
    freeReplyObject(r);
    r = rcluster_script(cl, slot, &s, 2, 3, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 6);
    freeReplyObject(r);

    const char *set[] = {"SET", "{t}a", "40"}, *incr[] = {"INCRBY", "{t}a", "2"}, *get[] = {"GET", "{t}a"};
    rcluster_argv tx[] = {{3, set, NULL}, {3, incr, NULL}, {2, get, NULL}};
    r = rcluster_multi(cl, slot_of("{t}a"), 3, tx);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_int_equal(r->element[1]->integer, 42);
    assert_string_equal(r->element[2]->str, "42");
    freeReplyObject(r);

    /* keys of two slots: Redis refuses the transaction, nothing runs */
    const char *other[] = {"SET", "{u}b", "1"};
    rcluster_argv cross[] = {{3, set, NULL}, {3, other, NULL}};
    r = rcluster_multi(cl, slot_of("{t}a"), 2, cross);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = rcluster_cmd(cl, slot_of("{t}a"), "GET {t}a");
    assert_string_equal(r->str, "42");
    freeReplyObject(r);
    rcluster_free(cl);
}

static void test_replica_wait_counts_the_cluster_primarys_replica(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = cluster("waiter");
    redisReply *r = rcluster_cmd(cl, slot_of("{w}k"), "SET {w}k 1");
    assert_non_null(r);
    freeReplyObject(r);
    int replicas = -1, acked = -1;
    char err[256] = "";
    assert_int_equal(rconn_replica_wait(rcluster_last_conn(cl), 5000, &replicas, &acked, err, sizeof err), 0);
    assert_int_equal(replicas, 1);
    assert_int_equal(acked, 1);
    rcluster_free(cl);
}

static void test_a_dead_seed_is_skipped(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    txagg_config cfg = ccfg;
    snprintf(cfg.redis_cluster, sizeof cfg.redis_cluster, "127.0.0.1:1,%.900s", ccfg.redis_cluster);
    rcluster *cl = rcluster_new(&cfg, "dead-seed");
    assert_int_equal(rcluster_refresh(cl), 0);
    redisReply *r = rcluster_cmd(cl, slot_of("x"), "SET x 1");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    rcluster_free(cl);
}

static void test_unreachable_seeds_are_an_error_naming_REDIS_CLUSTER(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    txagg_config cfg = ccfg;
    cfg.redis_timeout_ms = 500;
    snprintf(cfg.redis_cluster, sizeof cfg.redis_cluster, "127.0.0.1:1,127.0.0.1:2");
    rcluster *cl = rcluster_new(&cfg, "no-seed");
    assert_int_equal(rcluster_refresh(cl), -1);
    const char *err = rcluster_error(cl);
    assert_non_null(strstr(err, "REDIS_CLUSTER"));
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_non_null(strstr(err, "127.0.0.1:2"));
    assert_non_null(strstr(err, "refused"));
    assert_null(rcluster_conn(cl, 0));
    int64_t t0 = sig_now_ms();
    assert_null(rcluster_cmd(cl, 0, "PING")); /* retried for REDIS_TIMEOUT_MS, then given up */
    assert_true(sig_now_ms() - t0 < 5000);
    assert_non_null(strstr(rcluster_error(cl), "REDIS_CLUSTER"));
    rconn *out[4];
    assert_int_equal(rcluster_primaries(cl, out, 4), 0);
    rcluster_free(cl);
}

static void test_a_seed_that_is_no_cluster_node_is_refused_with_the_reason(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    txagg_config cfg;
    testenv_config(&cfg); /* the harness's plain redis-server */
    snprintf(cfg.redis_cluster, sizeof cfg.redis_cluster, "127.0.0.1:%d", cfg.redis_port);
    rcluster *cl = rcluster_new(&cfg, "plain");
    assert_int_equal(rcluster_refresh(cl), -1);
    assert_non_null(strstr(rcluster_error(cl), "REDIS_CLUSTER"));
    assert_non_null(strstr(rcluster_error(cl), "cluster support disabled"));
    rcluster_free(cl);
}

static void test_on_one_redis_every_slot_is_the_one_server(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    txagg_config cfg;
    testenv_config(&cfg);
    rcluster *cl = rcluster_new(&cfg, "single");
    assert_false(rcluster_is_cluster(cl));
    assert_int_equal(rcluster_refresh(cl), 0);
    rconn *rc = rcluster_conn(cl, 0);
    assert_non_null(rc);
    assert_ptr_equal(rcluster_conn(cl, RCLUSTER_SLOTS - 1), rc);
    assert_int_equal(rconn_port(rc), cfg.redis_port);
    rconn *out[4];
    assert_int_equal(rcluster_primaries(cl, out, 4), 1);
    assert_ptr_equal(out[0], rc);
    redisReply *r = rcluster_cmd(cl, slot_of("{a}x"), "SET {a}x 1");
    assert_non_null(r);
    freeReplyObject(r);
    const char *incr[] = {"INCR", "{a}x"}, *also[] = {"INCR", "{b}y"}; /* one server: no slot rule */
    rcluster_argv tx[] = {{2, incr, NULL}, {2, also, NULL}};
    r = rcluster_multi(cl, 0, 2, tx);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 2);
    freeReplyObject(r);
    rcluster_free(cl);

    cfg.redis_port = 1; /* down: NULL at once, as rconn_cmd */
    cl = rcluster_new(&cfg, "single-down");
    int64_t t0 = sig_now_ms();
    assert_null(rcluster_cmd(cl, 0, "PING"));
    assert_true(sig_now_ms() - t0 < 1000);
    assert_non_null(strstr(rcluster_error(cl), "127.0.0.1:1"));
    rcluster_free(cl);
}

/* Last: it takes slots away from the cluster for good. */
static void test_a_cluster_without_full_slot_coverage_is_an_error_naming_REDIS_CLUSTER(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    txagg_config cfg = ccfg;
    cfg.redis_timeout_ms = 1000;
    rcluster *before = rcluster_new(&cfg, "before");
    assert_int_equal(rcluster_refresh(before), 0);
    char log[1100];
    snprintf(log, sizeof log, "%s/coverage.log", dir);
    assert_int_equal(tcluster_sh("cluster_uncover %s 16000 16383", dir), 0);

    int saved = tcluster_stderr_to(log);
    rcluster *cl = rcluster_new(&cfg, "uncovered");
    int rv1 = rcluster_refresh(cl), rv2 = rcluster_refresh(cl);
    char err[1024];
    snprintf(err, sizeof err, "%s", rcluster_error(cl));
    /* a map loaded before: the node answers CLUSTERDOWN, retried, then returned */
    redisReply *r = rcluster_cmd(before, 16100, "GET x{16100}");
    tcluster_stderr_restore(saved);
    assert_int_equal(rv1, -1);
    assert_int_equal(rv2, -1);
    assert_non_null(strstr(err, "REDIS_CLUSTER"));
    assert_non_null(strstr(err, "384 of 16384 hash slots have no primary (first: 16000)"));
    assert_non_null(r);
    assert_int_equal(rcluster_classify(r, NULL), RCLUSTER_CLUSTERDOWN);
    freeReplyObject(r);
    /* the cluster's state is logged once, not once per refresh */
    assert_int_equal(tcluster_log_count(log, "dependency unreachable", "redis cluster", NULL), 1);
    rcluster_free(cl);
    rcluster_free(before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyslot_agrees_with_the_nodes_for_thousands_of_random_keys),
        cmocka_unit_test(test_every_key_lands_on_the_primary_serving_its_slot),
        cmocka_unit_test(test_scripts_and_transactions_run_whole_on_their_slot),
        cmocka_unit_test(test_replica_wait_counts_the_cluster_primarys_replica),
        cmocka_unit_test(test_a_dead_seed_is_skipped),
        cmocka_unit_test(test_unreachable_seeds_are_an_error_naming_REDIS_CLUSTER),
        cmocka_unit_test(test_a_seed_that_is_no_cluster_node_is_refused_with_the_reason),
        cmocka_unit_test(test_on_one_redis_every_slot_is_the_one_server),
        cmocka_unit_test(test_a_cluster_without_full_slot_coverage_is_an_error_naming_REDIS_CLUSTER),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
