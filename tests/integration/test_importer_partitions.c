/* Hand-off 1 per partition on a real Redis Cluster (3 primaries + 3
 * replicas, started by this group): a partition's batch and checkpoint commit
 * together where the partition's slot lives — through ASK while the slot
 * migrates (all its keys already on the importing node) and MOVED after it
 * moved, through a lost connection or a lost EXEC reply, and through the
 * kill -9 of the partition's primary (durable mode: its replica had
 * acknowledged the batch); a checkpoint recording another stripe is another
 * importer's; the back-pressure backlog is the sum over the partitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../importer/backpressure.h"
#include "../../importer/publish.h"
#include "cluster.h"
#include "keys.h"
#include "metrics.h"
#include "testcluster.h"
#include "testenv.h"
#include "tier.h"

#define FILE_ID "00000000000000bb"

static char dir[1024];
static txagg_config ccfg;

static int setup(void **st)
{
    (void)st;
    if (!testenv_have_servers()) return 0;
    if (tcluster_start("importer-partitions", dir, sizeof dir, &ccfg) != 0) return -1;
    ccfg.redis_partitions = 4;
    ccfg.redis_timeout_ms = 20000; /* retries outlast a failover on a loaded machine */
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tcluster_stop(dir);
    return 0;
}

static void open_tier(tier *t)
{
    char err[512];
    assert_int_equal(tier_init(t, &ccfg, "importer-test", err, sizeof err), 0);
    assert_int_equal(t->n, 4);
    assert_true(t->tagged);
    int lr = tier_check_layout(t, err, sizeof err);
    if (lr != TIER_OK) print_error("tier_check_layout: %s\n", err);
    assert_int_equal(lr, TIER_OK);
}

/* An integer reply (or a string holding one) of a command on key's slot; -1 for nil. */
static long long cl_int(rcluster *cl, const char *fmt, const char *key)
{
    redisReply *r = NULL;
    for (int i = 0; i < 5 && !r; i++) /* NULL: a connection to a node killed since (the map refreshed) */
        r = rcluster_cmd(cl, keys_slot(key, strlen(key)), fmt, key);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) print_error("%s %s: %s\n", fmt, key, r->str);
    long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                  : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                  : r->type == REDIS_REPLY_NIL    ? -1
                                                  : -2;
    freeReplyObject(r);
    return v;
}

static void add_rows(publisher *p, int n, int64_t first_line, int64_t end)
{
    for (int i = 0; i < n; i++) {
        valid_row row = {.epoch = 1767584038 + i, .type = i % 2, .cents = 100 + i};
        snprintf(row.method, sizeof row.method, "m%d", i % 3);
        publish_add_row(p, &row, first_line + i);
    }
    publish_set_end(p, end);
}

static int commit_now(publisher *p, int done, import_counts *c)
{
    int st = publish_commit(p, done, c);
    return st != PUBLISH_OK ? st : publish_sync(p, c);
}

static publisher *open_part(tier *t, int part, int64_t stripe)
{
    publisher *p = publish_new_part(t, part, 100, NULL);
    assert_non_null(p);
    publish_set_stripe(p, stripe);
    int64_t rows;
    int done;
    assert_int_equal(publish_open_file(p, FILE_ID, "dir/p.csv", "p.csv", &rows, &done), PUBLISH_OK);
    return p;
}

static void ck_of(const tier *t, int part, char *buf, size_t n)
{
    assert_true(keys_checkpoint(buf, n, &t->parts[part], FILE_ID) > 0);
}

static void test_a_partition_commits_through_ask_and_moved_while_its_slot_migrates(void **st)
{
    (void)st;
    tier t;
    open_tier(&t);
    rcluster *admin = rcluster_new(&ccfg, NULL);
    const int part = 2;
    char ck[KEYS_NAME_MAX * 2];
    ck_of(&t, part, ck, sizeof ck);
    publisher *p = open_part(&t, part, 10);
    import_counts c = {0};
    add_rows(p, 10, 2, 10);
    assert_int_equal(commit_now(p, 0, &c), PUBLISH_OK);

    int slot = t.parts[part].slot;
    int from = tcluster_int("cluster_owner %s %d", dir, slot);
    int to = tcluster_int("cluster_other_primary %s %d", dir, from);
    assert_true(from > 0 && to > 0 && to != from);
    /* every key of the slot moved, the slot still MIGRATING: the source answers ASK */
    assert_int_equal(tcluster_sh("cluster_migrate_begin %s %d %d 1000", dir, slot, to), 0);
    char count[64];
    assert_int_equal(tcluster_out(count, sizeof count, "cluster_cli %s %d CLUSTER COUNTKEYSINSLOT %d", dir, from, slot), 0);
    assert_string_equal(count, "0");
    add_rows(p, 10, 12, 50); /* stripe 4 of partition 0… : rows jumps to 50 */
    assert_int_equal(commit_now(p, 0, &c), PUBLISH_OK);
    /* committed on the importing node: the source still has no key of the slot */
    assert_int_equal(tcluster_out(count, sizeof count, "cluster_cli %s %d CLUSTER COUNTKEYSINSLOT %d", dir, from, slot), 0);
    assert_string_equal(count, "0");
    assert_int_equal(cl_int(admin, "XLEN %s", t.parts[part].stream), 20);
    assert_int_equal(cl_int(admin, "HGET %s rows", ck), 50);

    assert_int_equal(tcluster_sh("cluster_migrate_finish %s %d", dir, slot), 0);
    assert_int_equal(tcluster_int("cluster_owner %s %d", dir, slot), to);
    add_rows(p, 10, 52, 90); /* the publisher's map is stale: MOVED, then the new primary */
    assert_int_equal(commit_now(p, 1, &c), PUBLISH_OK);
    assert_int_equal(c.published, 30);
    assert_int_equal(cl_int(admin, "XLEN %s", t.parts[part].stream), 30);
    assert_int_equal(cl_int(admin, "HGET %s rows", ck), 90);
    assert_int_equal(cl_int(admin, "HGET %s done", ck), 1);
    assert_int_equal(cl_int(admin, "HGET %s stripe", ck), 10);
    publish_free(p);
    rcluster_free(admin);
    tier_free(&t);
}

static void check_fault_commits_once(int part, int fault)
{
    tier t;
    open_tier(&t);
    rcluster *admin = rcluster_new(&ccfg, NULL);
    char ck[KEYS_NAME_MAX * 2];
    ck_of(&t, part, ck, sizeof ck);
    publisher *p = open_part(&t, part, 50);
    import_counts c = {0};
    add_rows(p, 50, 2, 50);
    assert_int_equal(commit_now(p, 0, &c), PUBLISH_OK);
    add_rows(p, 50, 402, 450);
    publish_test_fault(p, fault);
    uint64_t reconnects = rconn_reconnect_total();
    assert_int_equal(commit_now(p, 1, &c), PUBLISH_OK);
    assert_true(rconn_reconnect_total() > reconnects); /* the fault really cut the connection */
    assert_int_equal(c.published, 100);
    assert_int_equal(cl_int(admin, "XLEN %s", t.parts[part].stream), 100);
    assert_int_equal(cl_int(admin, "HGET %s rows", ck), 450);
    assert_int_equal(cl_int(admin, "HGET %s done", ck), 1);
    publish_free(p);
    rcluster_free(admin);
    tier_free(&t);
}

static void test_connection_lost_before_exec_resends_the_partition_batch_once(void **st)
{
    (void)st;
    check_fault_commits_once(0, 1);
}

static void test_exec_reply_lost_is_not_sent_again_on_the_partition(void **st)
{
    (void)st;
    check_fault_commits_once(1, 2);
}

static void test_another_stripe_recorded_is_a_conflict_publishing_nothing(void **st)
{
    (void)st;
    tier t;
    open_tier(&t);
    rcluster *admin = rcluster_new(&ccfg, NULL);
    char ck[KEYS_NAME_MAX * 2];
    ck_of(&t, 3, ck, sizeof ck);
    redisReply *r = rcluster_cmd(admin, t.parts[3].slot, "DEL %s %s", ck, t.parts[3].stream);
    assert_non_null(r);
    freeReplyObject(r);
    publisher *p = open_part(&t, 3, 10);
    /* another importer began the file with BATCH_SIZE 7 meanwhile */
    r = rcluster_cmd(admin, t.parts[3].slot, "HSET %s rows 0 done 0 stripe 7", ck);
    assert_non_null(r);
    freeReplyObject(r);
    import_counts c = {0};
    add_rows(p, 10, 32, 40);
    assert_int_equal(publish_commit(p, 0, &c), PUBLISH_CONFLICT);
    assert_int_equal(cl_int(admin, "XLEN %s", t.parts[3].stream), 0);
    assert_int_equal(cl_int(admin, "HGET %s stripe", ck), 7);
    publish_free(p);
    rcluster_free(admin);
    tier_free(&t);
}

static void test_backlog_is_the_sum_over_the_partitions(void **st)
{
    (void)st;
    tier t;
    open_tier(&t);
    rcluster *admin = rcluster_new(&ccfg, NULL);
    for (int i = 0; i < t.n; i++) {
        redisReply *r = rcluster_cmd(admin, t.parts[i].slot, "DEL %s", t.parts[i].stream);
        assert_non_null(r);
        freeReplyObject(r);
    }
    backpressure *bp = backpressure_new_tier(&t, 11, NULL);
    assert_int_equal(backpressure_ensure_group(bp), 0);
    for (int i = 0; i < t.n; i++) {
        assert_int_equal(cl_int(admin, "EXISTS %s", t.parts[i].stream), 1);
        for (int k = 0; k <= i; k++) { /* 1 + 2 + 3 + 4 = 10 entries */
            redisReply *r = rcluster_cmd(admin, t.parts[i].slot, "XADD %s * a 1", t.parts[i].stream);
            assert_non_null(r);
            freeReplyObject(r);
        }
    }
    /* measured through the cluster (XINFO where each partition lives), summed:
     * MAX_BACKLOG 11 leaves room for one row */
    assert_int_equal(backpressure_reserve(bp, 1), 0);
    metric *g = metrics_gauge("txagg_importer_backlog", "group backlog (lag + pending) last measured", NULL);
    assert_int_equal((int64_t)metrics_value(g), 10);
    backpressure_free(bp);
    rcluster_free(admin);
    tier_free(&t);
}

static void test_a_durable_batch_survives_the_kill_of_its_primary(void **st)
{
    (void)st;
    tier t;
    open_tier(&t);
    rcluster *admin = rcluster_new(&ccfg, NULL);
    const int part = 0;
    char ck[KEYS_NAME_MAX * 2];
    ck_of(&t, part, ck, sizeof ck);
    redisReply *r = rcluster_cmd(admin, t.parts[part].slot, "DEL %s %s", ck, t.parts[part].stream);
    assert_non_null(r);
    freeReplyObject(r);
    publisher *p = open_part(&t, part, 20);
    publish_set_durable(p, 1); /* forgotten only once the partition's replica has it */
    import_counts c = {0};
    add_rows(p, 20, 2, 20);
    assert_int_equal(commit_now(p, 0, &c), PUBLISH_OK);
    assert_int_equal(tcluster_kill_primary(dir, t.parts[part].slot, NULL, NULL), 0);
    add_rows(p, 20, 162, 100);
    assert_int_equal(commit_now(p, 1, &c), PUBLISH_OK);
    assert_int_equal(c.published, 40);
    assert_int_equal(cl_int(admin, "XLEN %s", t.parts[part].stream), 40);
    assert_int_equal(cl_int(admin, "HGET %s rows", ck), 100);
    assert_int_equal(cl_int(admin, "HGET %s done", ck), 1);
    publish_free(p);
    rcluster_free(admin);
    tier_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_partition_commits_through_ask_and_moved_while_its_slot_migrates),
        cmocka_unit_test(test_connection_lost_before_exec_resends_the_partition_batch_once),
        cmocka_unit_test(test_exec_reply_lost_is_not_sent_again_on_the_partition),
        cmocka_unit_test(test_another_stripe_recorded_is_a_conflict_publishing_nothing),
        cmocka_unit_test(test_backlog_is_the_sum_over_the_partitions),
        cmocka_unit_test(test_a_durable_batch_survives_the_kill_of_its_primary),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
