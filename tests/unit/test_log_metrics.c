/* Logging quotes free text and reports dependency state once per change;
 * metrics render valid Prometheus text, one group per family; the MongoDB
 * driver's log lines get the right level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "mongo.h"

static void test_log_q_escapes_quotes_and_newlines(void **st)
{
    (void)st;
    char b[64];
    assert_string_equal(log_q(b, sizeof b, "a \"b\"\nc\\"), "\"a \\\"b\\\"\\nc\\\\\"");
    assert_string_equal(log_q(b, 6, "abcdefgh"), "\"ab\"");
    assert_string_equal(log_qv(b, sizeof b, "mongodb"), "mongodb");
    assert_string_equal(log_qv(b, sizeof b, "redis 1.2.3.4:6379"), "\"redis 1.2.3.4:6379\"");
    assert_string_equal(log_qv(b, sizeof b, "a=b"), "\"a=b\"");
    assert_string_equal(log_qv(b, sizeof b, ""), "\"\"");
}

static void test_dependency_state_is_reported_once_per_change(void **st)
{
    (void)st;
    log_init("test", LOG_LVL_ERROR + 1); /* invalid: keeps the previous level */
    log_set_level(LOG_LVL_ERROR);
    log_state s = {0};
    assert_int_equal(log_state_report(&s, "redis", 0, "refused"), 1);
    assert_int_equal(log_state_report(&s, "redis", 0, "refused"), 0);
    assert_int_equal(log_state_report(&s, "redis", 0, "timeout"), 0);
    assert_int_equal(log_state_report(&s, "redis", 1, NULL), 1);
    assert_int_equal(log_state_report(&s, "redis", 1, NULL), 0);
}

static void test_level_names_parse_case_insensitively(void **st)
{
    (void)st;
    assert_int_equal(log_level_parse("warn"), LOG_LVL_WARNING);
    assert_int_equal(log_level_parse("Error"), LOG_LVL_ERROR);
    assert_int_equal(log_level_parse("trace"), -1);
}

static uint64_t forty_two(void) { return 42; }

static void test_log_fail_formats_the_error_and_returns_the_status(void **st)
{
    (void)st;
    char err[16];
    assert_int_equal(log_fail(400, err, sizeof err, "bad date %s", "2026-13-01"), 400);
    assert_string_equal(err, "bad date 2026-1"); /* truncated to fit, terminated */
    assert_int_equal(log_fail(-1, NULL, 0, "no buffer %d", 1), -1);
}

static void test_metrics_render_families_once_and_cumulative_buckets(void **st)
{
    (void)st;
    metric *a = metrics_counter("t_requests_total", "Requests", "route=\"/a\"");
    metric *b = metrics_counter("t_requests_total", "Requests", "route=\"/b\"");
    assert_ptr_equal(a, metrics_counter("t_requests_total", "Requests", "route=\"/a\""));
    metrics_inc(a);
    metrics_add(b, 5);
    metric *g = metrics_gauge("t_lag", "Lag", NULL);
    metrics_set(g, -3);
    int64_t bounds[] = {1000, 5000};
    metric *h = metrics_histogram("t_latency_seconds", "Latency", NULL, bounds, 2);
    metrics_observe_us(h, 500);
    metrics_observe_us(h, 2500);
    metrics_observe_us(h, 2500000);
    metrics_counter_fn("t_fn_total", "From a function", NULL, forty_two);

    char *text = metrics_render(NULL);
    assert_non_null(text);
    const char *first = strstr(text, "# TYPE t_requests_total counter");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE t_requests_total counter"));
    assert_non_null(strstr(text, "t_requests_total{route=\"/a\"} 1\n"));
    assert_non_null(strstr(text, "t_requests_total{route=\"/b\"} 5\n"));
    assert_non_null(strstr(text, "t_lag -3\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "t_latency_seconds_sum 2.503\n"));
    assert_non_null(strstr(text, "t_latency_seconds_count 3\n"));
    assert_non_null(strstr(text, "t_fn_total 42\n"));
    assert_non_null(strstr(text, "txagg_build_info{version=\""));
    assert_non_null(strstr(text, "process_resident_memory_bytes "));
    free(text);
}

/* Counts the lines of text that start with prefix. */
static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, prefix, len)) n++;
    return n;
}

/* The api registers a request counter and a latency histogram per route,
 * route by route: each family must still come out as one group. */
static void test_metrics_interleaved_families_render_as_one_group_each(void **st)
{
    (void)st;
    int64_t bounds[] = {1000};
    const char *routes[] = {"route=\"/x\"", "route=\"/y\"", "route=\"/z\""};
    for (int i = 0; i < 3; i++) {
        metrics_inc(metrics_counter("t_grp_requests_total", "Requests", routes[i]));
        metrics_gauge("t_grp_between", "A family registered in between", routes[i]);
        metrics_observe_us(metrics_histogram("t_grp_duration_seconds", "Duration", routes[i], bounds, 1), 10);
    }
    char *text = metrics_render(NULL);
    assert_non_null(text);
    const char *fams[] = {"t_grp_requests_total", "t_grp_between", "t_grp_duration_seconds"};
    for (int f = 0; f < 3; f++) {
        char help[96], type[96];
        snprintf(help, sizeof help, "# HELP %s ", fams[f]);
        snprintf(type, sizeof type, "# TYPE %s ", fams[f]);
        assert_int_equal(count_lines(text, help), 1);
        assert_int_equal(count_lines(text, type), 1);
        /* every sample of the family lies between its # TYPE and the next # HELP */
        const char *start = strstr(text, type), *end = strstr(start, "\n# HELP ");
        if (!end) end = start + strlen(start);
        int inside = 0, all = count_lines(text, fams[f]);
        for (const char *p = start; p < end; p = strchr(p, '\n') + 1)
            if (!strncmp(p, fams[f], strlen(fams[f]))) inside++;
        assert_int_equal(inside, all);
        assert_true(all >= 3);
    }
    free(text);
}

static void test_metrics_a_second_type_under_one_name_is_refused(void **st)
{
    (void)st;
    assert_non_null(metrics_counter("t_typed_total", "Typed", "a=\"1\""));
    assert_null(metrics_gauge("t_typed_total", "Typed", "a=\"2\""));
    assert_non_null(metrics_counter("t_typed_total", "Other help is ignored", "a=\"3\""));
    char *text = metrics_render(NULL);
    assert_non_null(strstr(text, "# HELP t_typed_total Typed\n# TYPE t_typed_total counter\n"));
    assert_null(strstr(text, "t_typed_total{a=\"2\"}"));
    free(text);
}

static void test_mongo_driver_io_warnings_are_debug_and_errors_stay_errors(void **st)
{
    (void)st;
    assert_int_equal(mongo_driver_log_level(MONGOC_LOG_LEVEL_WARNING, "stream", "Failed to buffer 4 bytes"),
                     LOG_LVL_DEBUG);
    assert_int_equal(mongo_driver_log_level(MONGOC_LOG_LEVEL_WARNING, "socket", "Failed to connect"), LOG_LVL_DEBUG);
    assert_int_equal(mongo_driver_log_level(MONGOC_LOG_LEVEL_WARNING, "client", "Couldn't send \"endSessions\": x"),
                     LOG_LVL_DEBUG);
    assert_int_equal(mongo_driver_log_level(MONGOC_LOG_LEVEL_WARNING, "cluster", "something else"), LOG_LVL_WARNING);
    assert_int_equal(mongo_driver_log_level(MONGOC_LOG_LEVEL_ERROR, "stream", "x"), LOG_LVL_ERROR);
    assert_int_equal(mongo_driver_log_level(MONGOC_LOG_LEVEL_CRITICAL, NULL, NULL), LOG_LVL_ERROR);
    assert_int_equal(mongo_driver_log_level(MONGOC_LOG_LEVEL_INFO, "client", "x"), LOG_LVL_DEBUG);
    assert_int_equal(mongo_driver_log_level(MONGOC_LOG_LEVEL_TRACE, "client", "x"), -1);
}

/* txagg_mongo_up follows what the process last reported (1 before any report). */
static void test_mongo_up_gauge_follows_the_reported_state(void **st)
{
    (void)st;
    mongo_global_init();
    char *text = metrics_render(NULL);
    assert_non_null(strstr(text, "\ntxagg_mongo_up 1\n"));
    free(text);
    mongo_report_state("mongodb", 0, "test outage");
    text = metrics_render(NULL);
    assert_non_null(strstr(text, "\ntxagg_mongo_up 0\n"));
    free(text);
    mongo_report_state("mongodb", 1, NULL);
    text = metrics_render(NULL);
    assert_non_null(strstr(text, "\ntxagg_mongo_up 1\n"));
    free(text);
    mongo_global_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_q_escapes_quotes_and_newlines),
        cmocka_unit_test(test_dependency_state_is_reported_once_per_change),
        cmocka_unit_test(test_level_names_parse_case_insensitively),
        cmocka_unit_test(test_log_fail_formats_the_error_and_returns_the_status),
        cmocka_unit_test(test_metrics_render_families_once_and_cumulative_buckets),
        cmocka_unit_test(test_metrics_interleaved_families_render_as_one_group_each),
        cmocka_unit_test(test_metrics_a_second_type_under_one_name_is_refused),
        cmocka_unit_test(test_mongo_driver_io_warnings_are_debug_and_errors_stay_errors),
        cmocka_unit_test(test_mongo_up_gauge_follows_the_reported_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
