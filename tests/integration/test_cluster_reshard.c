/* Redirections from a live reshard of a real Redis Cluster: MOVED after a slot
 * moved (the map refreshed, the command run once on the new primary), ASK
 * while the slot migrates (ASKING on the importing node, the map unchanged),
 * TRYAGAIN for a multi-key command over a half-migrated slot (retried until
 * the migration ends, or returned when it does not end in time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "keys.h"
#include "signals.h"
#include "testcluster.h"
#include "testenv.h"

static char dir[1024];
static txagg_config ccfg;

static int setup(void **st)
{
    (void)st;
    if (!testenv_have_servers()) return 0;
    if (tcluster_start("cluster-reshard", dir, sizeof dir, &ccfg) != 0) return -1;
    ccfg.redis_timeout_ms = 20000; /* retries outlast a migration finished by a loaded machine */
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tcluster_stop(dir);
    return 0;
}

static int slot_of(const char *key) { return keys_slot(key, strlen(key)); }

/* N keys "{tag}k0".."{tag}k<N-1>" = "0".."N-1" through cl; returns their slot. */
static int write_keys(rcluster *cl, const char *tag, int n)
{
    char key[64];
    snprintf(key, sizeof key, "{%s}", tag);
    int slot = slot_of(key);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "{%s}k%d", tag, i);
        redisReply *r = rcluster_cmd(cl, slot, "SET %s %d", key, i);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    return slot;
}

static void expect_keys(rcluster *cl, const char *tag, int n)
{
    char key[64], want[16];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "{%s}k%d", tag, i);
        snprintf(want, sizeof want, "%d", i);
        redisReply *r = rcluster_cmd(cl, slot_of(key), "GET %s", key);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_STRING) print_error("GET %s: type %d %s\n", key, r->type, r->str ? r->str : "");
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, want);
        freeReplyObject(r);
    }
}

/* A primary other than the one serving slot. */
static int other_primary(int slot)
{
    int from = tcluster_int("cluster_owner %s %d", dir, slot);
    assert_true(from > 0);
    int to = tcluster_int("cluster_other_primary %s %d", dir, from);
    assert_true(to > 0 && to != from);
    return to;
}

static void test_moved_after_a_slot_moved_refreshes_the_map_and_runs_on_the_new_primary(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = rcluster_new(&ccfg, "moved");
    int slot = write_keys(cl, "mv", 20);
    int from = rconn_port(rcluster_conn(cl, slot)), to = other_primary(slot);
    assert_int_equal(tcluster_sh("cluster_move_slot %s %d %d", dir, slot, to), 0);

    uint64_t moved0 = rcluster_redirect_total(RCLUSTER_MOVED), maps0 = rcluster_refresh_total();
    assert_int_equal(rconn_port(rcluster_conn(cl, slot)), from); /* stale until told */
    redisReply *r = rcluster_cmd(cl, slot, "INCR {mv}k3");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 4); /* ran once, where the key now lives */
    freeReplyObject(r);
    assert_true(rcluster_redirect_total(RCLUSTER_MOVED) > moved0);
    assert_true(rcluster_refresh_total() > maps0);
    assert_int_equal(rconn_port(rcluster_conn(cl, slot)), to);
    assert_int_equal(rconn_port(rcluster_last_conn(cl)), to);
    r = rcluster_cmd(cl, slot, "SET {mv}k3 3");
    freeReplyObject(r);
    expect_keys(cl, "mv", 20);
    rcluster_free(cl);
}

/* What the api's answer cache keys on (api/stats.h): a map loaded again by
 * another client is a load, not a change; a slot moved is a change, counted
 * once however many clients then load it. */
static void test_a_map_counts_as_changed_only_when_an_owner_differs_from_the_last_map_loaded(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *a = rcluster_new(&ccfg, "map-a"), *b = rcluster_new(&ccfg, "map-b");
    assert_int_equal(rcluster_refresh(a), 0);
    uint64_t loads0 = rcluster_refresh_total(), changes0 = rcluster_map_changes();
    assert_int_equal(rcluster_refresh(b), 0);
    assert_int_equal(rcluster_refresh(a), 0);
    assert_true(rcluster_refresh_total() >= loads0 + 2);
    assert_true(rcluster_map_changes() == changes0);

    int slot = write_keys(a, "mc", 3);
    assert_int_equal(tcluster_sh("cluster_move_slot %s %d %d", dir, slot, other_primary(slot)), 0);
    assert_int_equal(rcluster_refresh(a), 0);
    assert_true(rcluster_map_changes() == changes0 + 1);
    assert_int_equal(rcluster_refresh(b), 0);
    assert_true(rcluster_map_changes() == changes0 + 1);
    expect_keys(b, "mc", 3);
    rcluster_free(a);
    rcluster_free(b);
}

static void test_a_transaction_refused_by_moved_runs_once_on_the_new_primary(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = rcluster_new(&ccfg, "moved-tx");
    int slot = write_keys(cl, "mt", 5);
    assert_int_equal(tcluster_sh("cluster_move_slot %s %d %d", dir, slot, other_primary(slot)), 0);
    const char *incr[] = {"INCRBY", "{mt}k1", "10"}, *get[] = {"GET", "{mt}k1"};
    rcluster_argv tx[] = {{3, incr, NULL}, {2, get, NULL}};
    uint64_t moved0 = rcluster_redirect_total(RCLUSTER_MOVED);
    redisReply *r = rcluster_multi(cl, slot, 2, tx);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 11);
    assert_string_equal(r->element[1]->str, "11");
    freeReplyObject(r);
    assert_true(rcluster_redirect_total(RCLUSTER_MOVED) > moved0);
    rcluster_free(cl);
}

static void test_ask_during_a_migration_reaches_every_key_without_changing_the_map(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = rcluster_new(&ccfg, "ask");
    int slot = write_keys(cl, "as", 40);
    int from = rconn_port(rcluster_conn(cl, slot)), to = other_primary(slot);
    assert_int_equal(tcluster_sh("cluster_migrate_begin %s %d %d 20", dir, slot, to), 0);

    uint64_t ask0 = rcluster_redirect_total(RCLUSTER_ASK), moved0 = rcluster_redirect_total(RCLUSTER_MOVED);
    expect_keys(cl, "as", 40); /* 20 answered by the source, 20 after ASK by the target */
    assert_true(rcluster_redirect_total(RCLUSTER_ASK) >= ask0 + 20);
    assert_int_equal(rcluster_redirect_total(RCLUSTER_MOVED), moved0);
    assert_int_equal(rconn_port(rcluster_conn(cl, slot)), from);

    /* a script and a transaction on a migrated key: ASKING precedes them on
     * the target (before MULTI; and again after loading the script there) */
    char key[32] = "";
    for (int i = 0; i < 40 && !key[0]; i++) {
        snprintf(key, sizeof key, "{as}k%d", i);
        redisReply *r = rconn_cmd(rcluster_conn(cl, slot), "EXISTS %s", key);
        assert_non_null(r);
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) key[0] = '\0'; /* still on the source */
        freeReplyObject(r);
    }
    assert_true(key[0]);
    redisReply *r = rconn_cmd(rcluster_node(cl, "127.0.0.1", to), "SCRIPT FLUSH");
    freeReplyObject(r);
    rscript s = RSCRIPT_INIT("getlen", "return redis.call('STRLEN', KEYS[1])");
    const char *argv[] = {key};
    r = rcluster_script(cl, slot, &s, 1, 1, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    assert_int_equal(rconn_port(rcluster_last_conn(cl)), to);

    const char *append[] = {"APPEND", key, "x"}, *get[] = {"GET", key};
    rcluster_argv tx[] = {{3, append, NULL}, {2, get, NULL}};
    r = rcluster_multi(cl, slot, 2, tx);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[1]->type, REDIS_REPLY_STRING);
    assert_true(strchr(r->element[1]->str, 'x') != NULL);
    freeReplyObject(r);
    assert_int_equal(rconn_port(rcluster_conn(cl, slot)), from); /* ASK never changes the map */

    assert_int_equal(tcluster_sh("cluster_migrate_finish %s %d", dir, slot), 0);
    rcluster_free(cl);
}

typedef struct finisher {
    int slot;
    int64_t delay_ms;
    int rc;
} finisher;

static void *finish_later(void *arg)
{
    finisher *f = arg;
    sig_sleep_ms(f->delay_ms);
    f->rc = tcluster_sh("cluster_migrate_finish %s %d", dir, f->slot);
    return NULL;
}

/* A key of tag on the target and one still on the source. */
static void split_pair(rcluster *cl, int slot, int to, const char *tag, char *moved, char *stayed, size_t n)
{
    moved[0] = stayed[0] = '\0';
    for (int i = 0; i < 40; i++) {
        char key[32];
        snprintf(key, sizeof key, "{%s}k%d", tag, i);
        redisReply *r = rconn_cmd(rcluster_node(cl, "127.0.0.1", to), "ASKING");
        freeReplyObject(r);
        r = rconn_cmd(rcluster_node(cl, "127.0.0.1", to), "EXISTS %s", key);
        assert_non_null(r);
        snprintf(r->integer ? moved : stayed, n, "%s", key);
        freeReplyObject(r);
    }
    assert_true(moved[0] && stayed[0]);
    (void)slot;
}

static void test_tryagain_for_a_multi_key_command_is_retried_until_the_migration_ends(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = rcluster_new(&ccfg, "tryagain");
    int slot = write_keys(cl, "ta", 40);
    int to = other_primary(slot);
    assert_int_equal(tcluster_sh("cluster_migrate_begin %s %d %d 20", dir, slot, to), 0);
    char moved[32], stayed[32];
    split_pair(cl, slot, to, "ta", moved, stayed, sizeof moved);

    /* the slot stays half-migrated: TRYAGAIN, retried, then returned */
    txagg_config quick = ccfg;
    quick.redis_timeout_ms = 600;
    rcluster *impatient = rcluster_new(&quick, "impatient");
    uint64_t try0 = rcluster_redirect_total(RCLUSTER_TRYAGAIN);
    redisReply *r = rcluster_cmd(impatient, slot, "MGET %s %s", moved, stayed);
    assert_non_null(r);
    assert_int_equal(rcluster_classify(r, NULL), RCLUSTER_TRYAGAIN);
    freeReplyObject(r);
    assert_true(rcluster_redirect_total(RCLUSTER_TRYAGAIN) >= try0 + 2);
    rcluster_free(impatient);

    /* the migration ends while the command is retried: it then succeeds */
    finisher f = {slot, 300, -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, finish_later, &f), 0);
    try0 = rcluster_redirect_total(RCLUSTER_TRYAGAIN);
    r = rcluster_cmd(cl, slot, "MGET %s %s", moved, stayed);
    pthread_join(th, NULL);
    assert_int_equal(f.rc, 0);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) print_error("MGET: %s\n", r->str);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
    assert_int_equal(r->element[1]->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    assert_true(rcluster_redirect_total(RCLUSTER_TRYAGAIN) > try0);
    /* (it may have succeeded through ASK, all keys moved but the slot not yet
     * handed over; once it is, a MOVED points the map at the new primary) */
    expect_keys(cl, "ta", 40);
    assert_int_equal(rconn_port(rcluster_conn(cl, slot)), to);
    rcluster_free(cl);
}

static void test_a_pipelining_caller_detects_and_recovers_from_a_redirection(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = rcluster_new(&ccfg, "pipeliner");
    int slot = write_keys(cl, "pp", 10);
    assert_int_equal(tcluster_sh("cluster_move_slot %s %d %d", dir, slot, other_primary(slot)), 0);
    /* pipeline 10 GETs on the (stale) owner; every reply is MOVED */
    int done = 0;
    for (int attempt = 0; attempt < 5 && !done; attempt++) {
        rconn *rc = rcluster_conn(cl, slot);
        assert_int_equal(rconn_ensure(rc), 0);
        for (int i = 0; i < 10; i++) assert_int_equal(redisAppendCommand(rconn_ctx(rc), "GET {pp}k%d", i), REDIS_OK);
        rcluster_redirect rd = {RCLUSTER_REPLY, -1, "", 0}, one;
        int values = 0;
        for (int i = 0; i < 10; i++) {
            redisReply *r;
            assert_int_equal(redisGetReply(rconn_ctx(rc), (void **)&r), REDIS_OK);
            if (rcluster_classify(r, &one) != RCLUSTER_REPLY) rd = one;
            else values += r->type == REDIS_REPLY_STRING;
            freeReplyObject(r);
        }
        if (rd.kind == RCLUSTER_REPLY) {
            assert_int_equal(values, 10);
            done = 1;
        } else {
            assert_int_equal(attempt, 0); /* one recovery is enough */
            assert_int_equal(rd.kind, RCLUSTER_MOVED);
            assert_int_equal(rd.slot, slot);
            assert_int_equal(rcluster_recover(cl, &rd, attempt), 0);
            assert_int_equal(rconn_port(rcluster_conn(cl, slot)), rd.port);
        }
    }
    assert_true(done);
    rcluster_free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moved_after_a_slot_moved_refreshes_the_map_and_runs_on_the_new_primary),
        cmocka_unit_test(test_a_map_counts_as_changed_only_when_an_owner_differs_from_the_last_map_loaded),
        cmocka_unit_test(test_a_transaction_refused_by_moved_runs_once_on_the_new_primary),
        cmocka_unit_test(test_ask_during_a_migration_reaches_every_key_without_changing_the_map),
        cmocka_unit_test(test_tryagain_for_a_multi_key_command_is_retried_until_the_migration_ends),
        cmocka_unit_test(test_a_pipelining_caller_detects_and_recovers_from_a_redirection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
