/* The persistor on a partitioned hot tier on one Redis (REDIS_PARTITIONS=4,
 * issue 14): one lease, every partition archived with its own keys and a
 * batch id naming the partition, the boundary from the greatest clock of
 * all partitions, MongoDB day totals = the sum over partitions, exact; a
 * holder that dies between freeze and clean in one partition is recovered
 * exactly; a former holder is fenced out of every partition; the service
 * binary runs partitioned (killed with -9 at random points, restarted) and
 * refuses another number of partitions with exit 2.  The bodies are in
 * tests/lib/partition_env.c, shared with the cluster program. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../persistor/lease.h"
#include "../../persistor/persistor.h"
#include "archive_env.h"
#include "partition_env.h"
#include "signals.h"
#include "testcluster.h"
#include "testenv.h"

static int setup(void **st)
{
    (void)st;
    pe_use_cluster("");
    return 0;
}

static void test_every_day_older_than_the_window_is_archived_from_every_partition_exactly(void **st)
{
    (void)st;
    pe_test_every_partition_archived_exactly();
}

static void test_a_holder_killed_after_the_freeze_is_recovered_exactly(void **st)
{
    (void)st;
    pe_test_crash_between_freeze_and_clean(0);
}

static void test_a_holder_killed_mid_write_is_recovered_exactly(void **st)
{
    (void)st;
    pe_test_crash_between_freeze_and_clean(1);
}

static void test_a_holder_killed_before_the_clean_is_recovered_exactly(void **st)
{
    (void)st;
    pe_test_crash_between_freeze_and_clean(2);
}

static void test_a_former_holder_is_fenced_out_of_every_partition(void **st)
{
    (void)st;
    pe_test_former_holder_fenced_out();
}

/* CONFIG SET appendonly on the harness's Redis (restored after the test):
 * with AOF on, every fresh batch waits ~2 s before MongoDB (freeze_settle),
 * so kills land while a batch is in flight. */
static void appendonly(const char *v, char *was, size_t n)
{
    rconn *rc = testenv_redis();
    if (was) {
        redisReply *r = testenv_cmd(rc, "CONFIG GET appendonly");
        assert_int_equal(r->elements, 2);
        snprintf(was, n, "%s", r->element[1]->str);
        freeReplyObject(r);
    }
    testenv_cmd_ok(rc, "CONFIG SET appendonly %s", v);
    rconn_free(rc);
}

static void test_the_service_archives_every_partition_through_kill_9(void **st)
{
    (void)st;
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 5);
    char was[16];
    appendonly("yes", was, sizeof was);
    char log[4096];
    snprintf(log, sizeof log, "%s/persistor-partitions.log", testenv_tmpdir());
    /* kill -9 at staggered instants: each lands somewhere in a cycle */
    int in_flight = 0;
    for (int i = 0; i < 6 && !pe_archived(&l); i++) {
        pid_t pid = pe_start_service(log);
        sig_sleep_ms(700 + 450 * i);
        kill(pid, SIGKILL);
        pe_wait_exit(pid);
        in_flight += pe_pending_partition() >= 0; /* killed between a freeze and its clean */
        assert_true(pe_exact(&l));                 /* exact at every stop */
    }
    pid_t pid = pe_start_service(log);
    int64_t deadline = sig_now_ms() + 90000;
    while (!pe_archived(&l) && sig_now_ms() < deadline) sig_sleep_ms(200);
    kill(pid, SIGTERM);
    int status = pe_wait_exit(pid);
    appendonly(was, NULL, 0);
    assert_int_equal(status, 0);
    assert_true(in_flight >= 1);
    assert_true(pe_archived(&l));
    assert_true(pe_exact(&l));
    assert_true(tcluster_log_count(log, "svc=persistor", "recovering archive batch", NULL) >= 1);
}

static void test_another_number_of_partitions_is_refused_with_exit_2(void **st)
{
    (void)st;
    pe_reset();
    pe_ledger l;
    pe_seed(&l, 6);
    persistor *p = pe_holder(); /* records 4 */
    lease_release(p);
    persistor_close(p);
    char bin[4096], log[4096];
    testenv_bin("persistor", bin, sizeof bin);
    snprintf(log, sizeof log, "%s/persistor-layout.log", testenv_tmpdir());
    int rc = testenv_sh("REDIS_PARTITIONS=2 METRICS_PORT=0 timeout 30 %s 2>%s", bin, log);
    assert_int_equal(rc, 2);
    assert_int_equal(testenv_sh("grep -q 'REDIS_PARTITIONS' %s", log), 0);
    assert_true(pe_exact(&l)); /* nothing archived */
    assert_false(pe_archived(&l));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_day_older_than_the_window_is_archived_from_every_partition_exactly),
        cmocka_unit_test(test_a_holder_killed_after_the_freeze_is_recovered_exactly),
        cmocka_unit_test(test_a_holder_killed_mid_write_is_recovered_exactly),
        cmocka_unit_test(test_a_holder_killed_before_the_clean_is_recovered_exactly),
        cmocka_unit_test(test_a_former_holder_is_fenced_out_of_every_partition),
        cmocka_unit_test(test_the_service_archives_every_partition_through_kill_9),
        cmocka_unit_test(test_another_number_of_partitions_is_refused_with_exit_2),
    };
    return testenv_run(tests, setup, NULL);
}
