/* The /stats query string: valid ranges parse to day numbers; every kind of
 * bad input is refused with a sentence naming the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../api/query.h"
#include "timeparse.h"

static int parse(const char *q, int max, query_range *out, char *err, size_t errlen)
{
    return query_parse_stats(q, q ? strlen(q) : 0, max, out, err, errlen);
}

/* Refused, with a detail containing `want`. */
static void refused(const char *q, int max, const char *want)
{
    query_range r;
    char err[256];
    int rv = parse(q, max, &r, err, sizeof err);
    if (rv != -1) fail_msg("accepted: %s", q ? q : "(null)");
    if (!strstr(err, want)) fail_msg("query %s: detail '%s' lacks '%s'", q ? q : "(null)", err, want);
}

static int64_t day(int y, unsigned m, unsigned d) { return ts_days_from_civil(y, m, d); }

static void test_valid_range_parses_to_inclusive_day_numbers(void **st)
{
    (void)st;
    query_range r;
    char err[256];
    assert_int_equal(parse("from_date=2026-01-01&to_date=2026-01-31", 3660, &r, err, sizeof err), 0);
    assert_int_equal(r.from_day, day(2026, 1, 1));
    assert_int_equal(r.to_day, day(2026, 1, 31));
    /* order of parameters is free; a single day is a range */
    assert_int_equal(parse("to_date=2024-02-29&from_date=2024-02-29", 3660, &r, err, sizeof err), 0);
    assert_int_equal(r.from_day, r.to_day);
    assert_int_equal(r.from_day, day(2024, 2, 29));
}

static void test_percent_encoding_and_empty_pairs_are_accepted(void **st)
{
    (void)st;
    query_range r;
    char err[256];
    assert_int_equal(parse("from%5Fdate=2026%2D01%2D01&&to_date=2026-01-02&", 10, &r, err, sizeof err), 0);
    assert_int_equal(r.from_day, day(2026, 1, 1));
    assert_int_equal(r.to_day, day(2026, 1, 2));
}

static void test_missing_parameters_are_named(void **st)
{
    (void)st;
    refused(NULL, 10, "missing parameter from_date");
    refused("", 10, "missing parameter from_date");
    refused("from_date=2026-01-01", 10, "missing parameter to_date");
    refused("to_date=2026-01-01", 10, "missing parameter from_date");
}

static void test_malformed_dates_are_refused(void **st)
{
    (void)st;
    refused("from_date=2026-1-01&to_date=2026-01-02", 10, "from_date must be a date YYYY-MM-DD, got '2026-1-01'");
    refused("from_date=2026-01-01&to_date=20260102", 10, "to_date must be a date YYYY-MM-DD");
    refused("from_date=&to_date=2026-01-02", 10, "from_date must be a date YYYY-MM-DD");
    refused("from_date&to_date=2026-01-02", 10, "from_date must be a date YYYY-MM-DD");
    refused("from_date=+2026-01-01&to_date=2026-01-02", 10, "from_date must be a date");
    refused("from_date=2026-01-01T00:00:00&to_date=2026-01-02", 10, "from_date must be a date");
    refused("from_date=2026-01-01%20&to_date=2026-01-02", 10, "from_date must be a date");
}

static void test_impossible_dates_are_refused(void **st)
{
    (void)st;
    refused("from_date=2026-02-30&to_date=2026-03-01", 100, "from_date 2026-02-30 is not a real calendar date");
    refused("from_date=2025-02-29&to_date=2025-03-01", 100, "not a real calendar date");
    refused("from_date=2026-13-01&to_date=2026-12-01", 100, "not a real calendar date");
    refused("from_date=2026-00-10&to_date=2026-12-01", 100, "not a real calendar date");
    refused("from_date=1969-12-31&to_date=1970-01-01", 100, "not a real calendar date");
    refused("from_date=2026-01-01&to_date=2026-04-31", 1000, "to_date 2026-04-31 is not a real calendar date");
}

static void test_reversed_and_oversized_ranges_are_refused(void **st)
{
    (void)st;
    refused("from_date=2026-02-01&to_date=2026-01-31", 100, "from_date 2026-02-01 is after to_date 2026-01-31");
    /* 2026-01-01 .. 2026-01-10 is 10 days: allowed at 10, refused at 9 */
    query_range r;
    char err[256];
    assert_int_equal(parse("from_date=2026-01-01&to_date=2026-01-10", 10, &r, err, sizeof err), 0);
    refused("from_date=2026-01-01&to_date=2026-01-10", 9, "spans 10 days, more than the limit of 9 (MAX_RANGE_DAYS)");
    refused("from_date=1970-01-01&to_date=9999-12-31", 3660, "more than the limit of 3660");
}

static void test_unknown_and_repeated_parameters_are_refused(void **st)
{
    (void)st;
    refused("from_date=2026-01-01&to_date=2026-01-02&page=2", 10, "unknown parameter 'page'");
    refused("from_data=2026-01-01&to_date=2026-01-02", 10, "unknown parameter 'from_data'");
    refused("from_date=2026-01-01&to_date=2026-01-02&from_date=2026-01-01", 10,
            "parameter from_date is given more than once");
    refused("=x&from_date=2026-01-01&to_date=2026-01-02", 10, "unknown parameter (expected");
}

static void test_nul_bytes_are_refused(void **st)
{
    (void)st;
    refused("from_date=2026-01-01%00&to_date=2026-01-02", 10, "from_date contains a NUL byte");
    refused("from%00_date=2026-01-01&to_date=2026-01-02", 10, "a parameter name contains a NUL byte");
    /* A raw NUL inside the buffer (not reachable through civetweb, but the parser takes lengths). */
    static const char raw[] = "from_date=2026-01-01\0&to_date=2026-01-02";
    query_range r;
    char err[256];
    assert_int_equal(query_parse_stats(raw, sizeof raw - 1, 10, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL"));
}

static void test_oversized_input_is_refused(void **st)
{
    (void)st;
    char q[QUERY_MAX_LEN + 64];
    /* a value over QUERY_VALUE_MAX bytes */
    int n = snprintf(q, sizeof q, "from_date=");
    for (int i = 0; i < QUERY_VALUE_MAX + 1; i++) q[n++] = '9';
    snprintf(q + n, sizeof q - (size_t)n, "&to_date=2026-01-01");
    refused(q, 10, "from_date is too long (at most 64 bytes)");
    /* the whole query string over QUERY_MAX_LEN bytes */
    memset(q, 'a', QUERY_MAX_LEN + 1);
    q[QUERY_MAX_LEN + 1] = '\0';
    refused(q, 10, "query string too long (at most 1024 bytes)");
}

static void test_unprintable_input_is_not_echoed(void **st)
{
    (void)st;
    query_range r;
    char err[256];
    assert_int_equal(parse("from_date=%FF%FE&to_date=2026-01-01", 10, &r, err, sizeof err), -1);
    for (const char *p = err; *p; p++) assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    assert_null(strstr(err, "got"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_range_parses_to_inclusive_day_numbers),
        cmocka_unit_test(test_percent_encoding_and_empty_pairs_are_accepted),
        cmocka_unit_test(test_missing_parameters_are_named),
        cmocka_unit_test(test_malformed_dates_are_refused),
        cmocka_unit_test(test_impossible_dates_are_refused),
        cmocka_unit_test(test_reversed_and_oversized_ranges_are_refused),
        cmocka_unit_test(test_unknown_and_repeated_parameters_are_refused),
        cmocka_unit_test(test_nul_bytes_are_refused),
        cmocka_unit_test(test_oversized_input_is_refused),
        cmocka_unit_test(test_unprintable_input_is_not_echoed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
