/* Configuration: the documented defaults (docs/CONTRACTS.md), bad values named,
 * empty = unset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static const char *const all_vars[] = {
    "REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_TIMEOUT_MS", "REDIS_CLUSTER", "REDIS_PARTITIONS", "MONGODB_URI",
    "MONGODB_DATABASE", "MONGODB_COLLECTION", "MONGODB_TIMEOUT_MS", "MONGODB_WRITE_CONCERN", "MONGODB_JOURNAL",
    "CSV_PATH", "BATCH_SIZE", "IMPORT_SPEED", "MAX_BACKLOG", "MAX_FUTURE_DAYS", "CONSUMER_NAME", "CLAIM_IDLE_MS",
    "RETENTION_DAYS", "PERSIST_INTERVAL_MS", "PERSIST_LEASE_MS", "API_HOST", "API_PORT", "API_THREADS",
    "API_PROBE_PORT", "API_HEAD_TIMEOUT_S", "API_TOKEN", "MAX_RANGE_DAYS", "LOG_LEVEL", "METRICS_HOST", "METRICS_PORT"};

static int clear_env(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++) unsetenv(all_vars[i]);
    return 0;
}

static void test_defaults_are_those_of_the_design(void **st)
{
    (void)st;
    txagg_config c;
    char err[256];
    assert_int_equal(config_load(&c, CFG_ALL, err, sizeof err), 0);
    assert_string_equal(c.redis_host, "127.0.0.1");
    assert_int_equal(c.redis_port, 6379);
    assert_string_equal(c.mongodb_uri, "mongodb://127.0.0.1:27017");
    assert_string_equal(c.mongodb_database, "fintech_db");
    assert_string_equal(c.mongodb_collection, "daily_stats");
    assert_int_equal(c.retention_days, 7);
    assert_int_equal(c.log_level, LOG_LVL_INFO);
    assert_int_equal(c.import_speed_milli, 1000);
    assert_int_equal(c.max_backlog, 1000000);
    assert_int_equal(c.claim_idle_ms, 30000);
    assert_int_equal(c.persist_interval_ms, 10000);
    assert_string_equal(c.api_host, "0.0.0.0");
    assert_int_equal(c.api_port, 8000);
    assert_int_equal(c.api_probe_port, 8001);
    assert_int_equal(c.api_head_timeout_s, 5);
    assert_string_equal(c.api_token, "");
    assert_int_equal(c.max_range_days, 3660);
    assert_int_equal(c.max_future_days, 366);
    assert_string_equal(c.mongodb_write_concern, "majority");
    assert_int_equal(c.mongodb_journal, 1);
}

static void test_bad_port_names_the_variable(void **st)
{
    (void)st;
    txagg_config c;
    char err[256] = "";
    setenv("REDIS_PORT", "notaport", 1);
    assert_int_equal(config_load(&c, CFG_AGGREGATOR, err, sizeof err), -1);
    assert_non_null(strstr(err, "REDIS_PORT"));
    assert_non_null(strstr(err, "notaport"));
    setenv("REDIS_PORT", "70000", 1);
    assert_int_equal(config_load(&c, CFG_AGGREGATOR, err, sizeof err), -1);
    setenv("REDIS_PORT", "6380", 1);
    assert_int_equal(config_load(&c, CFG_AGGREGATOR, err, sizeof err), 0);
    assert_int_equal(c.redis_port, 6380);
}

static void test_negative_retention_is_refused(void **st)
{
    (void)st;
    txagg_config c;
    char err[256] = "";
    setenv("RETENTION_DAYS", "-1", 1);
    assert_int_equal(config_load(&c, CFG_PERSISTOR, err, sizeof err), -1);
    assert_non_null(strstr(err, "RETENTION_DAYS"));
    setenv("RETENTION_DAYS", "3x", 1);
    assert_int_equal(config_load(&c, CFG_PERSISTOR, err, sizeof err), -1);
}

static void test_a_variable_is_checked_only_by_binaries_that_read_it(void **st)
{
    (void)st;
    txagg_config c;
    char err[256] = "";
    setenv("API_PORT", "nope", 1);
    assert_int_equal(config_load(&c, CFG_AGGREGATOR, err, sizeof err), 0);
    assert_int_equal(config_load(&c, CFG_API, err, sizeof err), -1);
    assert_non_null(strstr(err, "API_PORT"));
}

static void test_empty_value_means_default(void **st)
{
    (void)st;
    txagg_config c;
    char err[256];
    setenv("REDIS_PORT", "", 1);
    setenv("API_TOKEN", "", 1);
    assert_int_equal(config_load(&c, CFG_ALL, err, sizeof err), 0);
    assert_int_equal(c.redis_port, 6379);
    assert_string_equal(c.api_token, "");
}

static void test_import_speed_is_exact_in_thousandths(void **st)
{
    (void)st;
    txagg_config c;
    char err[256];
    setenv("IMPORT_SPEED", "0", 1);
    assert_int_equal(config_load(&c, CFG_IMPORTER, err, sizeof err), 0);
    assert_int_equal(c.import_speed_milli, 0);
    assert_int_equal(config_pace_us(&c, 500), 0);
    setenv("IMPORT_SPEED", "2.5", 1);
    assert_int_equal(config_load(&c, CFG_IMPORTER, err, sizeof err), 0);
    assert_int_equal(c.import_speed_milli, 2500);
    assert_int_equal(config_pace_us(&c, 10), 4000);
    setenv("IMPORT_SPEED", "1", 1);
    assert_int_equal(config_load(&c, CFG_IMPORTER, err, sizeof err), 0);
    assert_int_equal(config_pace_us(&c, 14), 14000);
    static const char *bad[] = {"-1", "fast", "1e3", "0.0001", ".5", "1."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("IMPORT_SPEED", bad[i], 1);
        assert_int_equal(config_load(&c, CFG_IMPORTER, err, sizeof err), -1);
        assert_non_null(strstr(err, "IMPORT_SPEED"));
    }
}

static void test_log_level_accepts_the_four_names(void **st)
{
    (void)st;
    txagg_config c;
    char err[256];
    setenv("LOG_LEVEL", "debug", 1);
    assert_int_equal(config_load(&c, CFG_API, err, sizeof err), 0);
    assert_int_equal(c.log_level, LOG_LVL_DEBUG);
    setenv("LOG_LEVEL", "WARNING", 1);
    assert_int_equal(config_load(&c, CFG_API, err, sizeof err), 0);
    assert_int_equal(c.log_level, LOG_LVL_WARNING);
    setenv("LOG_LEVEL", "LOUD", 1);
    assert_int_equal(config_load(&c, CFG_API, err, sizeof err), -1);
    assert_non_null(strstr(err, "LOG_LEVEL"));
}

static void test_metrics_port_defaults_differ_per_worker(void **st)
{
    (void)st;
    txagg_config c;
    char err[256];
    assert_int_equal(config_load(&c, CFG_IMPORTER, err, sizeof err), 0);
    assert_int_equal(c.metrics_port, 9100);
    assert_int_equal(config_load(&c, CFG_AGGREGATOR, err, sizeof err), 0);
    assert_int_equal(c.metrics_port, 9101);
    assert_int_equal(config_load(&c, CFG_PERSISTOR, err, sizeof err), 0);
    assert_int_equal(c.metrics_port, 9102);
    setenv("METRICS_PORT", "0", 1);
    assert_int_equal(config_load(&c, CFG_PERSISTOR, err, sizeof err), 0);
    assert_int_equal(c.metrics_port, 0);
}

static void test_consumer_name_defaults_to_hostname_pid(void **st)
{
    (void)st;
    txagg_config c;
    char err[256], want[128], host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(want, sizeof want, "%s-%ld", host, (long)getpid());
    assert_int_equal(config_load(&c, CFG_AGGREGATOR, err, sizeof err), 0);
    assert_string_equal(c.consumer_name, want);
    setenv("CONSUMER_NAME", "agg 1", 1);
    assert_int_equal(config_load(&c, CFG_AGGREGATOR, err, sizeof err), -1);
    assert_non_null(strstr(err, "CONSUMER_NAME"));
}

static void test_mongodb_names_and_write_concern_are_validated(void **st)
{
    (void)st;
    txagg_config c;
    char err[256];
    setenv("MONGODB_DATABASE", "a.b", 1);
    assert_int_equal(config_load(&c, CFG_API, err, sizeof err), -1);
    assert_non_null(strstr(err, "MONGODB_DATABASE"));
    unsetenv("MONGODB_DATABASE");
    setenv("MONGODB_WRITE_CONCERN", "most", 1);
    assert_int_equal(config_load(&c, CFG_PERSISTOR, err, sizeof err), -1);
    setenv("MONGODB_WRITE_CONCERN", "1", 1);
    setenv("MONGODB_JOURNAL", "false", 1);
    assert_int_equal(config_load(&c, CFG_PERSISTOR, err, sizeof err), 0);
    assert_string_equal(c.mongodb_write_concern, "1");
    assert_int_equal(c.mongodb_journal, 0);
}

/* Listen addresses are refused with the configuration (exit 2 naming the
 * variable), not by a listener that then fails to start. */
static void expect_host(const char *var, unsigned bin, const char *val, int ok, const char *why)
{
    txagg_config c;
    char err[256] = "";
    setenv(var, val, 1);
    int rv = config_load(&c, bin, err, sizeof err);
    unsetenv(var);
    if (ok) {
        assert_int_equal(rv, 0);
        assert_string_equal(bin == CFG_API ? c.api_host : c.metrics_host, val);
        return;
    }
    assert_int_equal(rv, -1);
    assert_non_null(strstr(err, var));
    if (why) assert_non_null(strstr(err, why));
}

static void test_listen_addresses_are_checked_with_the_configuration(void **st)
{
    (void)st;
    /* Debian's libcivetweb has no IPv6 (mg_check_feature(8) == 0). */
    expect_host("API_HOST", CFG_API, "::", 0, "IPv6 is not available");
    expect_host("METRICS_HOST", CFG_AGGREGATOR, "::", 0, "IPv6 is not available");
    expect_host("METRICS_HOST", CFG_PERSISTOR, "::1", 0, "IPv6 is not available");
    expect_host("METRICS_HOST", CFG_IMPORTER, "[::]", 0, "IPv6");
    /* civetweb's own parser would wrap 999 and take a ',' as a second port */
    expect_host("API_HOST", CFG_API, "999.0.0.1", 0, "IPv4");
    expect_host("API_HOST", CFG_API, "127.0.0.1,9999", 0, NULL);
    expect_host("METRICS_HOST", CFG_AGGREGATOR, "127.0.0.1:80", 0, NULL);
    expect_host("METRICS_HOST", CFG_AGGREGATOR, "bad_host", 0, "host name");
    expect_host("API_HOST", CFG_API, "-x.example", 0, "host name");
    expect_host("API_HOST", CFG_API, "127.0.0.1", 1, NULL);
    expect_host("API_HOST", CFG_API, "0.0.0.0", 1, NULL);
    expect_host("METRICS_HOST", CFG_PERSISTOR, "localhost", 1, NULL);
    expect_host("METRICS_HOST", CFG_IMPORTER, "api-0.txagg.svc", 1, NULL);
}

static void test_partitions_default_to_one_on_one_redis_and_more_in_cluster_mode(void **st)
{
    (void)st;
    txagg_config c;
    char err[256];
    assert_int_equal(config_load(&c, CFG_IMPORTER, err, sizeof err), 0);
    assert_string_equal(c.redis_cluster, "");
    assert_int_equal(c.redis_partitions, 1);
    setenv("REDIS_CLUSTER", "10.0.0.1:7000,10.0.0.2:7000", 1);
    assert_int_equal(config_load(&c, CFG_AGGREGATOR, err, sizeof err), 0);
    assert_string_equal(c.redis_cluster, "10.0.0.1:7000,10.0.0.2:7000");
    assert_int_equal(c.redis_partitions, 16);
    setenv("REDIS_PARTITIONS", "4", 1);
    assert_int_equal(config_load(&c, CFG_API, err, sizeof err), 0);
    assert_int_equal(c.redis_partitions, 4);
    setenv("REDIS_CLUSTER", "", 1); /* empty = unset: one Redis */
    assert_int_equal(config_load(&c, CFG_PERSISTOR, err, sizeof err), 0);
    assert_string_equal(c.redis_cluster, "");
    assert_int_equal(c.redis_partitions, 4);
}

static void test_partitions_out_of_bounds_name_the_variable(void **st)
{
    (void)st;
    txagg_config c;
    char err[256];
    static const char *bad[] = {"0", "1025", "-1", "x", "16 ", "1e2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("REDIS_PARTITIONS", bad[i], 1);
        for (unsigned bin = CFG_IMPORTER; bin <= CFG_API; bin <<= 1) {
            err[0] = '\0';
            assert_int_equal(config_load(&c, bin, err, sizeof err), -1);
            assert_non_null(strstr(err, "REDIS_PARTITIONS"));
        }
    }
    setenv("REDIS_PARTITIONS", "1024", 1);
    assert_int_equal(config_load(&c, CFG_IMPORTER, err, sizeof err), 0);
    assert_int_equal(c.redis_partitions, 1024);
}

static void test_cluster_seed_list_is_validated(void **st)
{
    (void)st;
    txagg_config c;
    char err[512];
    static const char *bad[] = {"redis",       "redis:",      "redis:0",   "redis:65536", ":7000",  "a:1,,b:2",
                                "a:1, b:2",    "a:1,",        ",a:1",      "a:+1",        "a:1x",   "[::1:7000",
                                "[]:7000",     "a b:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("REDIS_CLUSTER", bad[i], 1);
        for (unsigned bin = CFG_IMPORTER; bin <= CFG_API; bin <<= 1) {
            err[0] = '\0';
            if (config_load(&c, bin, err, sizeof err) != -1) print_error("REDIS_CLUSTER='%s' accepted\n", bad[i]);
            assert_int_equal(config_load(&c, bin, err, sizeof err), -1);
            assert_non_null(strstr(err, "REDIS_CLUSTER"));
        }
    }
    config_hostport hp[CONFIG_MAX_SEEDS];
    assert_int_equal(config_hostports("redis-0.redis:6379,10.1.2.3:7001,[::1]:7002", hp, CONFIG_MAX_SEEDS, err,
                                      sizeof err),
                     3);
    assert_string_equal(hp[0].host, "redis-0.redis");
    assert_int_equal(hp[0].port, 6379);
    assert_string_equal(hp[1].host, "10.1.2.3");
    assert_int_equal(hp[1].port, 7001);
    assert_string_equal(hp[2].host, "::1");
    assert_int_equal(hp[2].port, 7002);
    assert_int_equal(config_hostports("a:1,b:2,c:3", hp, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "at most 2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_are_those_of_the_design, clear_env),
        cmocka_unit_test_setup(test_bad_port_names_the_variable, clear_env),
        cmocka_unit_test_setup(test_negative_retention_is_refused, clear_env),
        cmocka_unit_test_setup(test_a_variable_is_checked_only_by_binaries_that_read_it, clear_env),
        cmocka_unit_test_setup(test_empty_value_means_default, clear_env),
        cmocka_unit_test_setup(test_import_speed_is_exact_in_thousandths, clear_env),
        cmocka_unit_test_setup(test_log_level_accepts_the_four_names, clear_env),
        cmocka_unit_test_setup(test_metrics_port_defaults_differ_per_worker, clear_env),
        cmocka_unit_test_setup(test_consumer_name_defaults_to_hostname_pid, clear_env),
        cmocka_unit_test_setup(test_mongodb_names_and_write_concern_are_validated, clear_env),
        cmocka_unit_test_setup(test_listen_addresses_are_checked_with_the_configuration, clear_env),
        cmocka_unit_test_setup(test_partitions_default_to_one_on_one_redis_and_more_in_cluster_mode, clear_env),
        cmocka_unit_test_setup(test_partitions_out_of_bounds_name_the_variable, clear_env),
        cmocka_unit_test_setup(test_cluster_seed_list_is_validated, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
