/* rconn_replica_wait on one Redis primary with a real replica (--replicaof):
 * the replica's acknowledgement is counted, a stopped replica makes WAIT time
 * out and say so, and a server without replicas does not wait at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "redis.h"
#include "signals.h"
#include "testcluster.h"
#include "testenv.h"

static char dir[1024];
static int primary_port, replica_port, replica_pid;

static int setup(void **st)
{
    (void)st;
    if (!testenv_have_servers()) return 0;
    tcluster_dir("replica-pair", dir, sizeof dir);
    if (tcluster_sh("cluster_pair_start %s", dir) != 0) return -1;
    primary_port = tcluster_int("cluster_pair_port %s primary", dir);
    replica_port = tcluster_int("cluster_pair_port %s replica", dir);
    replica_pid = tcluster_int("cluster_pid %s %d", dir, replica_port);
    return primary_port > 0 && replica_port > 0 && replica_pid > 0 ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    tcluster_stop(dir);
    return 0;
}

static rconn *conn_to(int port, const char *name)
{
    txagg_config cfg;
    testenv_config(&cfg);
    cfg.redis_timeout_ms = 10000;
    rconn *rc = rconn_new_at(&cfg, "127.0.0.1", port, name);
    assert_non_null(rc);
    assert_int_equal(rconn_ensure(rc), 0);
    return rc;
}

static void set(rconn *rc, const char *key, const char *val)
{
    redisReply *r = rconn_cmd(rc, "SET %s %s", key, val);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

static void test_the_replicas_acknowledgement_is_counted(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rconn *rc = conn_to(primary_port, "waiter");
    set(rc, "handoff", "1");
    int replicas = -1, acked = -1;
    char err[256] = "";
    assert_int_equal(rconn_replica_wait(rc, 5000, &replicas, &acked, err, sizeof err), 0);
    assert_int_equal(replicas, 1);
    assert_int_equal(acked, 1);
    /* acknowledged means the replica holds it */
    rconn *rep = conn_to(replica_port, "reader");
    redisReply *r = rconn_cmd(rep, "GET handoff");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    rconn_free(rep);
    rconn_free(rc);
}

static void test_a_scripts_writes_are_waited_for_after_the_script(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rconn *rc = conn_to(primary_port, "scripter");
    rscript s = RSCRIPT_INIT("incr", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
    const char *argv[] = {"scripted", "5"};
    redisReply *r = rscript_run(rc, &s, 1, 2, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    /* WAIT itself is refused inside a script: that is why it follows on the connection */
    rscript w = RSCRIPT_INIT("wait", "return redis.call('WAIT', 1, 100)");
    r = rscript_run(rc, &w, 0, 0, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    int replicas, acked;
    char err[256];
    assert_int_equal(rconn_replica_wait(rc, 5000, &replicas, &acked, err, sizeof err), 0);
    assert_int_equal(replicas, 1);
    assert_int_equal(acked, 1);
    rconn_free(rc);
}

static void test_a_stopped_replica_makes_wait_time_out_and_report_it(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rconn *rc = conn_to(primary_port, "waiter2");
    assert_int_equal(kill((pid_t)replica_pid, SIGSTOP), 0);
    set(rc, "unacked", "1");
    int replicas = -1, acked = -1;
    char err[256] = "";
    int64_t t0 = sig_now_ms();
    int rv = rconn_replica_wait(rc, 300, &replicas, &acked, err, sizeof err);
    int64_t waited = sig_now_ms() - t0;
    kill((pid_t)replica_pid, SIGCONT);
    assert_int_equal(rv, 0);
    assert_int_equal(replicas, 1); /* still connected: its socket is open */
    assert_int_equal(acked, 0);
    assert_true(waited >= 290); /* WAIT waited for it, then gave up */

    /* resumed, it catches up and acknowledges the same write */
    assert_int_equal(rconn_replica_wait(rc, 5000, &replicas, &acked, err, sizeof err), 0);
    assert_int_equal(replicas, 1);
    assert_int_equal(acked, 1);
    rconn_free(rc);
}

static void test_a_server_without_replicas_is_not_waited_for(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rconn *rc = testenv_redis(); /* the harness's redis-server: no replica */
    set(rc, "alone", "1");
    int replicas = -1, acked = -1;
    char err[256];
    int64_t t0 = sig_now_ms();
    assert_int_equal(rconn_replica_wait(rc, 1900, &replicas, &acked, err, sizeof err), 0);
    assert_int_equal(replicas, 0);
    assert_int_equal(acked, 0);
    assert_true(sig_now_ms() - t0 < 1900); /* no WAIT was sent */
    rconn_free(rc);
}

static void test_waiting_on_a_replica_or_a_new_connection_is_refused(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    int replicas, acked;
    char err[256] = "";
    rconn *rep = conn_to(replica_port, "on-replica");
    assert_int_equal(rconn_replica_wait(rep, 100, &replicas, &acked, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a primary"));
    rconn_free(rep);

    /* the connection that wrote is gone: a new one would prove nothing */
    rconn *rc = conn_to(primary_port, "victim");
    set(rc, "lost", "1");
    rconn *admin = conn_to(primary_port, "admin");
    redisReply *r = rconn_cmd(admin, "CLIENT KILL TYPE normal SKIPME yes");
    assert_non_null(r);
    freeReplyObject(r);
    err[0] = '\0';
    assert_int_equal(rconn_replica_wait(rc, 100, &replicas, &acked, err, sizeof err), -1);
    assert_non_null(strstr(err, "ROLE"));
    err[0] = '\0';
    assert_int_equal(rconn_replica_wait(rc, 100, &replicas, &acked, err, sizeof err), -1);
    assert_non_null(strstr(err, "lost since the write"));
    rconn_free(admin);
    rconn_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_replicas_acknowledgement_is_counted),
        cmocka_unit_test(test_a_scripts_writes_are_waited_for_after_the_script),
        cmocka_unit_test(test_a_stopped_replica_makes_wait_time_out_and_report_it),
        cmocka_unit_test(test_a_server_without_replicas_is_not_waited_for),
        cmocka_unit_test(test_waiting_on_a_replica_or_a_new_connection_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
