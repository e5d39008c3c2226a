/* The timestamp rule of docs/CONTRACTS.md, UTC days, leap years and offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "timeparse.h"

static int parse(const char *s, int64_t *e) { return ts_parse(s, strlen(s), e); }

static void day_of(const char *s, char *out)
{
    int64_t e;
    assert_int_equal(parse(s, &e), 0);
    ts_format_day(ts_day_of(e), out);
}

static void test_accepts_every_documented_form(void **st)
{
    (void)st;
    int64_t e;
    static const char *good[] = {"2026-01-05T03:33:58",       "2026-01-05 03:33:58",
                                 "2026-01-05t03:33:58",       "2026-01-05T03:33:58Z",
                                 "2026-01-05T03:33:58z",      "2026-01-05T03:33:58.5",
                                 "2026-01-05T03:33:58.123456789Z", "2026-01-05T04:33:58+01:00",
                                 "2026-01-05T02:33:58-01:00", "2026-01-05T03:33:58.999+00:00"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(parse(good[i], &e), 0);
        char iso[TS_ISO_LEN + 1];
        ts_format_iso(e, iso);
        assert_string_equal(iso, "2026-01-05T03:33:58Z");
    }
}

static void test_matches_the_c_library_for_plain_utc(void **st)
{
    (void)st;
    int64_t e;
    assert_int_equal(parse("2026-01-05T03:33:58", &e), 0);
    struct tm tm = {.tm_year = 126, .tm_mon = 0, .tm_mday = 5, .tm_hour = 3, .tm_min = 33, .tm_sec = 58};
    assert_int_equal(e, (int64_t)timegm(&tm));
    assert_int_equal(parse("1970-01-01T00:00:00", &e), 0);
    assert_int_equal(e, 0);
}

static void test_offsets_move_the_day_across_midnight(void **st)
{
    (void)st;
    char d[11];
    day_of("2026-01-05T23:30:00-01:00", d);
    assert_string_equal(d, "2026-01-06");
    day_of("2026-01-05T00:30:00+01:00", d);
    assert_string_equal(d, "2026-01-04");
    day_of("2026-12-31T23:59:59-23:59", d);
    assert_string_equal(d, "2027-01-01");
    day_of("2026-03-01T00:00:00+00:01", d);
    assert_string_equal(d, "2026-02-28");
    day_of("2024-03-01T00:00:00+00:01", d);
    assert_string_equal(d, "2024-02-29");
}

static void test_leap_days_exist_only_in_leap_years(void **st)
{
    (void)st;
    int64_t e;
    assert_int_equal(parse("2024-02-29T12:00:00", &e), 0);
    assert_int_equal(parse("2000-02-29T12:00:00", &e), 0);
    assert_int_equal(parse("2026-02-29T12:00:00", &e), -1);
    assert_int_equal(parse("1900-02-29T12:00:00", &e), -1); /* also < 1970 */
    assert_int_equal(parse("2100-02-29T12:00:00", &e), -1);
}

static void test_rejects_impossible_and_malformed_times(void **st)
{
    (void)st;
    static const char *bad[] = {
        "",                        "2026-01-05",                "2026-01-05T03:33",
        "2026-13-01T00:00:00",     "2026-00-10T00:00:00",       "2026-04-31T00:00:00",
        "2026-01-00T00:00:00",     "2026-01-05T24:00:00",       "2026-01-05T23:60:00",
        "2026-01-05T23:59:60",     "1969-12-31T23:59:59",       "0000-01-01T00:00:00",
        "2026-01-05X03:33:58",     "2026/01/05T03:33:58",       "2026-1-05T03:33:58",
        "2026-01-05T03:33:58.",    "2026-01-05T03:33:58.1234567890", "2026-01-05T03:33:58+24:00",
        "2026-01-05T03:33:58+01:60", "2026-01-05T03:33:58+0100", "2026-01-05T03:33:58+01",
        "2026-01-05T03:33:58 Z",   "2026-01-05T03:33:58ZZ",     "2026-01-05T03:33:58UTC",
        " 2026-01-05T03:33:58",    "+2026-01-05T03:33:58",      "2026-01-05T3:33:58",
        "1970-01-01T00:30:00+01:00", /* before the epoch in UTC */
        "9999-12-31T23:59:59-01:00", /* after year 9999 in UTC */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t e = 42;
        if (parse(bad[i], &e) != -1) fail_msg("accepted: %s", bad[i]);
        assert_int_equal(e, 42);
    }
}

static void test_parse_day_is_strict(void **st)
{
    (void)st;
    int64_t d;
    assert_int_equal(ts_parse_day("2026-01-01", 10, &d), 0);
    assert_int_equal(d, ts_days_from_civil(2026, 1, 1));
    assert_int_equal(ts_parse_day("2026-02-30", 10, &d), -1);
    assert_int_equal(ts_parse_day("2026-1-1", 8, &d), -1);
    assert_int_equal(ts_parse_day("2026-01-01T", 11, &d), -1);
    assert_int_equal(ts_parse_day("1969-12-31", 10, &d), -1);
}

static void test_day_numbers_round_trip_over_centuries(void **st)
{
    (void)st;
    for (int64_t day = 0; day < 3000000; day += 13) { /* 1970 … ~10000 */
        int64_t y;
        unsigned m, dd;
        ts_civil_from_days(day, &y, &m, &dd);
        assert_true(m >= 1 && m <= 12 && dd >= 1 && dd <= ts_days_in_month(y, m));
        assert_int_equal(ts_days_from_civil(y, m, dd), day);
    }
    assert_int_equal(ts_day_of(-1), -1);
    assert_int_equal(ts_day_of(86399), 0);
    assert_int_equal(ts_day_of(86400), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_every_documented_form),
        cmocka_unit_test(test_matches_the_c_library_for_plain_utc),
        cmocka_unit_test(test_offsets_move_the_day_across_midnight),
        cmocka_unit_test(test_leap_days_exist_only_in_leap_years),
        cmocka_unit_test(test_rejects_impossible_and_malformed_times),
        cmocka_unit_test(test_parse_day_is_strict),
        cmocka_unit_test(test_day_numbers_round_trip_over_centuries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
