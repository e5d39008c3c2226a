/* The number of partitions is fixed for the data's life: recorded in Redis at
 * the first start, and a process started with another number (or in the other
 * layout) is refused with an error naming REDIS_PARTITIONS, writing nothing;
 * untagged data from before the record existed counts as one partition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "testenv.h"
#include "tier.h"

static int setup(void **st)
{
    (void)st;
    testenv_flush_redis();
    return 0;
}

/* tier_check_layout of a process with n partitions on the harness's Redis. */
static int check(int n, char *err, size_t errlen)
{
    txagg_config cfg;
    testenv_config(&cfg);
    cfg.redis_partitions = n;
    tier t;
    char e[256];
    assert_int_equal(tier_init(&t, &cfg, "test", e, sizeof e), 0);
    err[0] = '\0';
    int rv = tier_check_layout(&t, err, errlen);
    tier_free(&t);
    return rv;
}

static long long dbsize(void)
{
    rconn *rc = testenv_redis();
    redisReply *r = rconn_cmd(rc, "DBSIZE");
    long long n = r->integer;
    freeReplyObject(r);
    rconn_free(rc);
    return n;
}

static void test_the_first_start_records_the_number_and_the_same_number_starts_again(void **st)
{
    (void)st;
    char err[512];
    assert_int_equal(check(4, err, sizeof err), TIER_OK);
    assert_int_equal(check(4, err, sizeof err), TIER_OK);
    rconn *rc = testenv_redis();
    redisReply *r = rconn_cmd(rc, "GET %s", KEYS_PARTITIONS KEYS_GLOBAL_TAG);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "4");
    freeReplyObject(r);
    rconn_free(rc);
}

static void test_another_number_or_layout_is_refused_naming_the_variable(void **st)
{
    (void)st;
    char err[512];
    assert_int_equal(check(4, err, sizeof err), TIER_OK);
    long long keys = dbsize();
    assert_int_equal(check(8, err, sizeof err), TIER_ELAYOUT);
    assert_non_null(strstr(err, "REDIS_PARTITIONS=8"));
    assert_non_null(strstr(err, "written with 4 partition"));
    assert_int_equal(check(1, err, sizeof err), TIER_ELAYOUT); /* one untagged partition: other key names */
    assert_non_null(strstr(err, "REDIS_PARTITIONS=1"));
    assert_int_equal(dbsize(), keys); /* refused before writing anything */
    /* and the other way round */
    testenv_flush_redis();
    assert_int_equal(check(1, err, sizeof err), TIER_OK);
    assert_int_equal(check(2, err, sizeof err), TIER_ELAYOUT);
    assert_non_null(strstr(err, "written with 1 partition"));
}

static void test_untagged_data_from_before_the_record_counts_as_one_partition(void **st)
{
    (void)st;
    char err[512];
    rconn *rc = testenv_redis();
    redisReply *r = rconn_cmd(rc, "XADD %s * tx x", KEYS_STREAM);
    freeReplyObject(r);
    rconn_free(rc);
    assert_int_equal(check(16, err, sizeof err), TIER_ELAYOUT);
    assert_non_null(strstr(err, "REDIS_PARTITIONS=1"));
    assert_int_equal(check(1, err, sizeof err), TIER_OK); /* and it is recorded as such */
    assert_int_equal(check(16, err, sizeof err), TIER_ELAYOUT);
}

static void test_unreachable_redis_is_a_retry_not_a_verdict(void **st)
{
    (void)st;
    txagg_config cfg;
    testenv_config(&cfg);
    cfg.redis_port = 1; /* nothing listens there */
    cfg.redis_timeout_ms = 200;
    cfg.redis_partitions = 4;
    tier t;
    char err[256];
    assert_int_equal(tier_init(&t, &cfg, "test", err, sizeof err), 0);
    assert_int_equal(tier_check_layout(&t, err, sizeof err), TIER_EREDIS);
    tier_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_the_first_start_records_the_number_and_the_same_number_starts_again, setup),
        cmocka_unit_test_setup(test_another_number_or_layout_is_refused_naming_the_variable, setup),
        cmocka_unit_test_setup(test_untagged_data_from_before_the_record_counts_as_one_partition, setup),
        cmocka_unit_test_setup(test_unreachable_redis_is_a_retry_not_a_verdict, setup),
    };
    return testenv_run(tests, NULL, NULL);
}
