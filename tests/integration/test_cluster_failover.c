/* kill -9 of a real Redis Cluster primary while a client keeps writing to
 * its slot: once the replica is promoted the client's commands succeed again
 * on it without a restart, what the replica had acknowledged is there, and the
 * outage and the new map are each logged once. */
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
static txagg_config ccfg;

static int setup(void **st)
{
    (void)st;
    if (!testenv_have_servers()) return 0;
    if (tcluster_start("cluster-failover", dir, sizeof dir, &ccfg) != 0) return -1;
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tcluster_stop(dir);
    return 0;
}

static void test_commands_succeed_again_once_the_replica_of_a_killed_primary_is_promoted(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = rcluster_new(&ccfg, "failover");
    int slot = keys_slot("{fo}", 4);
    for (int i = 0; i < 10; i++) {
        redisReply *r = rcluster_cmd(cl, slot, "SET {fo}k%d %d", i, i);
        assert_non_null(r);
        freeReplyObject(r);
    }
    int replicas, acked;
    char err[256];
    assert_int_equal(rconn_replica_wait(rcluster_last_conn(cl), 5000, &replicas, &acked, err, sizeof err), 0);
    assert_int_equal(acked, 1); /* the replica holds them: they must survive */
    int old = rconn_port(rcluster_conn(cl, slot));

    char log[1100];
    snprintf(log, sizeof log, "%s/cluster-failover.log", testenv_tmpdir());
    int saved = tcluster_stderr_to(log);
    tcluster_killer k;
    assert_int_equal(tcluster_kill_start(&k, dir, slot, 0), 0);
    /* write on, as a service would, until the kill is over and a write went through after it */
    int64_t deadline = sig_now_ms() + 180000, first_fail = -1, back = -1;
    int failed = 0, succeeded_after = 0;
    for (int i = 0; sig_now_ms() < deadline && !succeeded_after; i++) {
        int was_done = tcluster_kill_done(&k);
        redisReply *r = rcluster_cmd(cl, slot, "SET {fo}live %d", i);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok && failed++ == 0) first_fail = sig_now_ms();
        if (ok && first_fail >= 0 && back < 0) back = sig_now_ms();
        succeeded_after = ok && was_done;
        if (!ok || !was_done) sig_sleep_ms(20);
    }
    int killed = -1, promoted = -1;
    int killed_rc = tcluster_kill_wait(&k, &killed, &promoted);
    tcluster_stderr_restore(saved);
    /* each call retries for REDIS_TIMEOUT_MS: a short failover fails no call at all */
    print_message("# failover: %d calls failed; writes failed for %lld ms\n", failed,
                  first_fail < 0 ? 0LL : (long long)(back - first_fail));

    assert_int_equal(killed_rc, 0);
    assert_int_equal(killed, old);
    assert_int_not_equal(promoted, old);
    assert_true(succeeded_after);
    assert_int_equal(rconn_port(rcluster_conn(cl, slot)), promoted);
    for (int i = 0; i < 10; i++) {
        redisReply *r = rcluster_cmd(cl, slot, "GET {fo}k%d", i);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_int_equal(atoi(r->str), i);
        freeReplyObject(r);
    }

    char dep[64], from[64], to[64];
    snprintf(dep, sizeof dep, "dep=\"redis 127.0.0.1:%d\"", old);
    snprintf(from, sizeof from, "old=127.0.0.1:%d ", old);
    snprintf(to, sizeof to, "new=127.0.0.1:%d ", promoted);
    assert_int_equal(tcluster_log_count(log, "dependency unreachable", dep, NULL), 1);
    assert_int_equal(tcluster_log_count(log, "redis cluster primary replaced", from, to, NULL), 1);
    assert_int_equal(tcluster_log_count(log, "redis cluster primary replaced", NULL), 1);
    rcluster_free(cl);
}

static void test_the_killed_primary_rejoins_as_a_replica_and_clients_do_not_notice(void **st)
{
    (void)st;
    if (!testenv_have_servers()) skip();
    rcluster *cl = rcluster_new(&ccfg, "rejoin");
    int slot = keys_slot("{fo}", 4);
    int primary = rconn_port(rcluster_conn(cl, slot));
    /* the node the first test killed: the one that is not running */
    char ports[256], live[256];
    assert_int_equal(tcluster_out(ports, sizeof ports, "cluster_ports %s | sort", dir), 0);
    assert_int_equal(tcluster_out(live, sizeof live, "cluster_live_ports %s | sort", dir), 0);
    int dead = -1;
    for (char *p = strtok(ports, "\n"); p; p = strtok(NULL, "\n"))
        if (!strstr(live, p)) dead = atoi(p);
    assert_true(dead > 0);
    assert_int_equal(tcluster_sh("cluster_restart_node %s %d && cluster_wait_ok %s 60", dir, dead, dir), 0);
    char role[64];
    assert_int_equal(tcluster_out(role, sizeof role, "cluster_cli %s %d ROLE | head -1", dir, dead), 0);
    assert_string_equal(role, "slave");

    assert_int_equal(rcluster_refresh(cl), 0); /* the restarted node may answer it: same map */
    assert_int_equal(rconn_port(rcluster_conn(cl, slot)), primary);
    redisReply *r = rcluster_cmd(cl, slot, "GET {fo}k7");
    assert_non_null(r);
    assert_string_equal(r->str, "7");
    freeReplyObject(r);
    rcluster_free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_succeed_again_once_the_replica_of_a_killed_primary_is_promoted),
        cmocka_unit_test(test_the_killed_primary_rejoins_as_a_replica_and_clients_do_not_notice),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
