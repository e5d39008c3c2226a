/* The persistor on a real Redis Cluster (3 primaries + 3 replicas, AOF on;
 * REDIS_PARTITIONS=4, issue 14): every partition archived exactly with its
 * own keys on the node serving its slot, the replica wait after each freeze;
 * a holder killed between freeze and clean is recovered exactly; a former
 * holder is fenced out; and a primary killed while a batch is in flight — the
 * partition's, then the lease's, while the persistor cycles — is followed
 * without a restart: once its replica is promoted every day is archived,
 * nothing pending, totals exact; and a partition's slot resharded live
 * under a frozen batch (ASK, TRYAGAIN, MOVED) changes nothing.  Bodies shared with the one-Redis program
 * (tests/lib/partition_env.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../persistor/archive_batch.h"
#include "../../persistor/archive_write.h"
#include "../../persistor/freeze.h"
#include "../../persistor/lease.h"
#include "../../persistor/persistor.h"
#include "cluster.h"
#include "keys.h"
#include "partition_env.h"
#include "signals.h"
#include "testcluster.h"
#include "testenv.h"

static char dir[1024];

static int setup(void **st)
{
    (void)st;
    txagg_config cfg;
    if (tcluster_start("persistor-partitions", dir, sizeof dir, &cfg) != 0) return -1;
    pe_use_cluster(cfg.redis_cluster);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    pe_use_cluster("");
    tcluster_stop(dir);
    return 0;
}

/* Bring a killed primary back (it rejoins as a replica of its successor)
 * and wait until it is in sync, so the next kill has a replica to promote. */
static void restart_as_replica(int port)
{
    assert_int_equal(tcluster_sh("cluster_restart_node %s %d", dir, port), 0);
    assert_int_equal(tcluster_sh("wait_until -i 0.5 60 eval \"cluster_cli %s %d INFO replication | grep -q "
                                 "'master_link_status:up'\" && cluster_wait_ok %s",
                                 dir, port, dir),
                     0);
}

static void test_every_partition_is_archived_exactly_on_a_cluster(void **st)
{
    (void)st;
    pe_test_every_partition_archived_exactly();
}

static void test_a_holder_killed_mid_write_is_recovered_exactly_on_a_cluster(void **st)
{
    (void)st;
    pe_test_crash_between_freeze_and_clean(1);
}

static void test_a_former_holder_is_fenced_out_on_a_cluster(void **st)
{
    (void)st;
    pe_test_former_holder_fenced_out();
}

static void test_the_partitions_primary_killed_with_a_batch_in_flight(void **st)
{
    (void)st;
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 21);
    persistor *p = pe_holder();
    assert_int_equal(persistor_use_partition(p, 2), 0);
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p, id, sizeof id), PST_OK);
    archive_batch b;
    assert_int_equal(archive_batch_load(p, id, &b), PST_OK);
    assert_int_equal(freeze_settle(p, 1), PST_OK); /* the replica holds the freeze */
    assert_int_equal(archive_write_day(p, id, b.days[0]), PST_OK);
    archive_batch_free(&b);
    assert_true(pe_exact(&l));

    int old = 0, neu = 0;
    assert_int_equal(tcluster_kill_primary(dir, p->t.parts[2].slot, &old, &neu), 0);
    assert_true(old != neu);
    /* the same process, no restart: its connections follow the promotion */
    pe_cycle_until_archived(p, &l);
    assert_true(pe_exact(&l));
    lease_release(p);
    persistor_close(p);
    restart_as_replica(old);
}

static void test_the_leases_primary_killed_while_the_persistor_cycles(void **st)
{
    (void)st;
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 22);
    persistor *p = pe_holder();
    /* with AOF on every fresh batch waits ~2 s before MongoDB: the kill
     * lands while batches are in flight */
    tcluster_killer k;
    char log[1100];
    snprintf(log, sizeof log, "%s/persistor-partitions-lease-kill.log", testenv_tmpdir());
    int saved = tcluster_stderr_to(log);
    int64_t t0 = sig_now_ms();
    assert_int_equal(tcluster_kill_start(&k, dir, p->lease_slot, 1500), 0);
    pe_cycle_until_archived(p, &l);
    int64_t took = sig_now_ms() - t0;
    int old = 0, neu = 0;
    int killed_rc = tcluster_kill_wait(&k, &old, &neu);
    tcluster_stderr_restore(saved);
    assert_true(took > 1500); /* the kill landed while the persistor was still at work */
    /* the persistor lost the lease's node and found its promoted replica */
    assert_true(tcluster_log_count(log, "svc=test", "primary replaced", NULL) +
                    tcluster_log_count(log, "lease lost", NULL) + tcluster_log_count(log, "cluster", "unusable", NULL) >=
                1);
    assert_int_equal(killed_rc, 0);
    /* whatever the kill interrupted, a later cycle finds nothing left */
    pe_cycle_until_archived(p, &l);
    assert_true(pe_exact(&l));
    lease_release(p);
    persistor_close(p);
    restart_as_replica(old);
}

typedef struct mover {
    int slot;
    int rc;
} mover;

static void *finish_later(void *arg)
{
    mover *m = arg;
    m->rc = tcluster_sh("sleep 2; cluster_migrate_finish %s %d", dir, m->slot);
    return NULL;
}

/* A partition's slot resharded live under a frozen batch: mid-migration
 * (some of its keys on the target: ASK, TRYAGAIN for the scripts whose keys
 * are split) for ~2 s while the persistor cycles, then moved (MOVED). */
static void test_a_partitions_slot_moved_live_under_a_frozen_batch(void **st)
{
    (void)st;
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 24);
    persistor *p = pe_holder();
    assert_int_equal(persistor_use_partition(p, 1), 0);
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p, id, sizeof id), PST_OK);
    int slot = pe_slot(1);
    int from = tcluster_int("cluster_owner %s %d", dir, slot);
    int to = tcluster_int("cluster_other_primary %s %d", dir, from);
    assert_true(from > 0 && to > 0 && from != to);
    assert_int_equal(tcluster_sh("cluster_migrate_begin %s %d %d 5", dir, slot, to), 0);
    uint64_t redirects = rcluster_redirect_total(RCLUSTER_ASK) + rcluster_redirect_total(RCLUSTER_TRYAGAIN) +
                         rcluster_redirect_total(RCLUSTER_MOVED);
    mover m = {.slot = slot, .rc = -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, finish_later, &m), 0);
    pe_cycle_until_archived(p, &l);
    pthread_join(th, NULL);
    assert_int_equal(m.rc, 0);
    pe_cycle_until_archived(p, &l);
    assert_true(pe_exact(&l));
    assert_int_equal(tcluster_int("cluster_owner %s %d", dir, slot), to);
    /* the redirections were met (by the persistor or the checks, one process) */
    assert_true(rcluster_redirect_total(RCLUSTER_ASK) + rcluster_redirect_total(RCLUSTER_TRYAGAIN) +
                    rcluster_redirect_total(RCLUSTER_MOVED) >
                redirects);
    lease_release(p);
    persistor_close(p);
}

static void test_the_service_follows_a_primary_killed_while_it_archives(void **st)
{
    (void)st;
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 23);
    char log[1100];
    snprintf(log, sizeof log, "%s/persistor-partitions-service.log", testenv_tmpdir());
    int pid = pe_start_service(log);
    /* wait for a batch in flight (each fresh one waits ~2 s for the AOF),
     * then kill the primary of its partition */
    int part = -1;
    int64_t until = sig_now_ms() + 30000;
    while ((part = pe_pending_partition()) < 0 && sig_now_ms() < until) sig_sleep_ms(50);
    assert_true(part >= 0);
    int old = 0, neu = 0;
    assert_int_equal(tcluster_kill_primary(dir, pe_slot(part), &old, &neu), 0);
    int64_t deadline = sig_now_ms() + 90000;
    while (!pe_archived(&l) && sig_now_ms() < deadline) sig_sleep_ms(300);
    kill(pid, SIGTERM);
    assert_int_equal(pe_wait_exit(pid), 0);
    assert_true(pe_archived(&l));
    assert_true(pe_exact(&l));
    if (getenv("PE_KEEP_LOG")) testenv_sh("cp %s %s", log, getenv("PE_KEEP_LOG"));
    /* it met the failover (its map changed under it) and carried on */
    assert_true(tcluster_log_count(log, "svc=persistor", "redis cluster primary replaced", NULL) >= 1);
    assert_true(tcluster_log_count(log, "svc=persistor", "batch archived", NULL) >= 1);
    restart_as_replica(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_partition_is_archived_exactly_on_a_cluster),
        cmocka_unit_test(test_a_holder_killed_mid_write_is_recovered_exactly_on_a_cluster),
        cmocka_unit_test(test_a_former_holder_is_fenced_out_on_a_cluster),
        cmocka_unit_test(test_the_partitions_primary_killed_with_a_batch_in_flight),
        cmocka_unit_test(test_the_leases_primary_killed_while_the_persistor_cycles),
        cmocka_unit_test(test_the_service_follows_a_primary_killed_while_it_archives),
        cmocka_unit_test(test_a_partitions_slot_moved_live_under_a_frozen_batch),
    };
    return testenv_run(tests, setup, teardown);
}
