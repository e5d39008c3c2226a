/* The persistor on a Redis primary with a replica: a failover (the replica
 * promoted) must never count a day twice.  A freeze moves a day's amounts
 * from the hot hashes into a frozen batch; if MongoDB received the batch and
 * the freeze were then rolled back (the replica never got it), the amounts
 * would be in MongoDB AND back in the hot tier.  So the first MongoDB write
 * of a batch waits until every replica acknowledged the freeze.
 *
 * Each test starts its own primary + replica (tests/lib/cluster.sh), seeds
 * the primary with archive_probe's ledger and checks hot + frozen + cold
 * against it on whichever server is the primary at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../persistor/cycle.h"
#include "../../persistor/freeze.h"
#include "../../persistor/lease.h"
#include "../../persistor/persistor.h"
#include "../../persistor/recover.h"
#include "archive_env.h"
#include "mongo.h"
#include "redis.h"
#include "signals.h"
#include "testcluster.h"
#include "testenv.h"

#define LEDGER "persistor_failover.ledger"
#define NDAYS 9 /* RETENTION_DAYS 3: days 1-6 eligible */

static char dir[1024], saved_port[16];
static int primary_port, replica_port, primary_pid, replica_pid;

static void use_port(int port)
{
    char v[16];
    snprintf(v, sizeof v, "%d", port);
    setenv("REDIS_PORT", v, 1);
}

static int setup(void **st)
{
    (void)st;
    if (!testenv_have_servers()) return 0;
    const char *p = getenv("REDIS_PORT");
    snprintf(saved_port, sizeof saved_port, "%s", p ? p : "");
    tcluster_dir("persistor-pair", dir, sizeof dir);
    if (tcluster_sh("cluster_pair_start %s", dir) != 0) return -1;
    primary_port = tcluster_int("cluster_pair_port %s primary", dir);
    replica_port = tcluster_int("cluster_pair_port %s replica", dir);
    primary_pid = tcluster_int("cluster_pid %s %d", dir, primary_port);
    replica_pid = tcluster_int("cluster_pid %s %d", dir, replica_port);
    if (primary_port <= 0 || replica_port <= 0 || primary_pid <= 0 || replica_pid <= 0) return -1;
    use_port(primary_port);
    archive_env_reset(LEDGER);
    if (archive_env_seed(LEDGER, 11, "2026-01-01", NDAYS, 1200) != 0) return -1;
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    if (replica_pid > 0) kill(replica_pid, SIGCONT);
    tcluster_stop(dir);
    setenv("REDIS_PORT", saved_port, 1);
    return 0;
}

static rconn *conn_to(int port)
{
    txagg_config cfg;
    testenv_config(&cfg);
    cfg.redis_timeout_ms = 10000;
    rconn *rc = rconn_new_at(&cfg, "127.0.0.1", port, "failover-test");
    assert_non_null(rc);
    assert_int_equal(rconn_ensure(rc), 0);
    return rc;
}

/* The replica holds everything the primary wrote so far (the seed). */
static void replica_caught_up(void)
{
    rconn *rc = conn_to(primary_port);
    redisReply *r = rconn_cmd(rc, "SET failover-test-mark 1"); /* a write: WAIT covers the seed before it */
    assert_non_null(r);
    freeReplyObject(r);
    int replicas = 0, acked = 0;
    char err[256] = "";
    assert_int_equal(rconn_replica_wait(rc, 5000, &replicas, &acked, err, sizeof err), 0);
    assert_int_equal(replicas, 1);
    assert_int_equal(acked, 1);
    rconn_free(rc);
}

/* A new holder runs cycles until nothing is eligible or pending. */
static void archive_all(void)
{
    persistor *p = archive_env_holder();
    archive_state s;
    int64_t deadline = sig_now_ms() + 30000;
    do {
        assert_int_equal(cycle_run(p), PST_OK);
        archive_env_state(&s);
    } while ((s.eligible > 0 || s.pending > 0) && sig_now_ms() < deadline);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.eligible, 0);
    assert_true(s.docs > 0);
    lease_release(p);
    persistor_close(p);
}

static void test_with_its_replica_in_sync_a_frozen_batch_is_archived_as_before(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    replica_caught_up();
    persistor *p = archive_env_holder();
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p, id, sizeof id), PST_OK);
    assert_int_equal(recover_finish_batch(p, id, 0), PST_OK);
    lease_release(p);
    persistor_close(p);
    archive_state s;
    archive_env_state(&s);
    assert_int_equal(s.pending, 0);
    assert_true(s.docs > 0);
    assert_true(archive_env_exact(LEDGER));
}

static void test_a_freeze_the_replica_lacks_never_reaches_mongodb_and_a_failover_counts_each_cent_once(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    replica_caught_up();
    persistor *p = archive_env_holder();
    assert_int_equal(kill(replica_pid, SIGSTOP), 0); /* the replica stops receiving: the freeze stays on the primary */
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p, id, sizeof id), PST_OK);
    assert_int_equal(recover_finish_batch(p, id, 0), PST_EREDIS); /* not acknowledged: left pending */
    archive_state s;
    archive_env_state(&s);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.docs, 0); /* MongoDB was not told */
    persistor_close(p);           /* the holder dies with its primary */

    /* Failover: the primary is lost, the replica (without the freeze) promoted. */
    assert_int_equal(kill(primary_pid, SIGKILL), 0);
    assert_int_equal(kill(replica_pid, SIGCONT), 0);
    rconn *rc = conn_to(replica_port);
    redisReply *r = rconn_cmd(rc, "REPLICAOF NO ONE");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    rconn_free(rc);
    use_port(replica_port);
    /* Whether the bytes of the freeze already in the replica's socket reach
     * it once it runs again is up to the kernel: the promoted replica holds
     * the batch pending (recovery finishes it) or the days still hot (they
     * are frozen again).  Either way each cent counts once. */
    archive_all();
    assert_true(archive_env_exact(LEDGER));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_with_its_replica_in_sync_a_frozen_batch_is_archived_as_before, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_freeze_the_replica_lacks_never_reaches_mongodb_and_a_failover_counts_each_cent_once, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
