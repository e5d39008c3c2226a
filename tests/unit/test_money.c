/* Money is exact integer cents from the CSV text to the JSON text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "money.h"

static int parse(const char *s, int64_t *c) { return money_parse(s, strlen(s), c); }

/* text is an amount of want cents. */
static void assert_parses(const char *text, int64_t want)
{
    int64_t c;
    assert_int_equal(parse(text, &c), MONEY_OK);
    assert_int_equal(c, want);
}

static void test_parse_accepts_whole_and_decimal_amounts(void **st)
{
    (void)st;
    assert_parses("1", 100);
    assert_parses("1.5", 150);
    assert_parses("1.50", 150);
    assert_parses("0.01", 1);
    assert_parses("1687.86", 168786);
    assert_parses("0001.00", 100);
}

static void test_parse_bounds_are_one_cent_to_one_billion(void **st)
{
    (void)st;
    int64_t c;
    assert_int_equal(parse("1000000000.00", &c), MONEY_OK);
    assert_int_equal(c, INT64_C(100000000000));
    assert_int_equal(parse("1000000000", &c), MONEY_OK);
    assert_int_equal(parse("1000000000.01", &c), MONEY_ERANGE);
    assert_int_equal(parse("9999999999.99", &c), MONEY_ERANGE);
    assert_int_equal(parse("0", &c), MONEY_ERANGE);
    assert_int_equal(parse("0.00", &c), MONEY_ERANGE);
    assert_int_equal(parse("0.0", &c), MONEY_ERANGE);
}

static void test_parse_rejects_every_other_syntax(void **st)
{
    (void)st;
    static const char *bad[] = {"",     ".5",   "1.",    "1.234", "-1",  "+1",   "1e3",  " 1",  "1 ",
                                "1,00", "1.0.", "12345678901", "0x10", "1.-1", "NaN", "inf", "1..2", "١"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t c = -7;
        assert_int_equal(parse(bad[i], &c), MONEY_ESYNTAX);
        assert_int_equal(c, -7); /* untouched on error */
    }
}

static void test_parse_respects_the_given_length(void **st)
{
    (void)st;
    int64_t c;
    assert_int_equal(money_parse("12.34xyz", 5, &c), MONEY_OK);
    assert_int_equal(c, 1234);
}

static void test_format_prints_shortest_decimals_like_the_python_service(void **st)
{
    (void)st;
    static const struct {
        int64_t cents;
        const char *text;
    } cases[] = {{34340, "343.4"},
                 {10000, "100.0"},
                 {5, "0.05"},
                 {50, "0.5"},
                 {0, "0.0"},
                 {168786, "1687.86"},
                 {-150, "-1.5"},
                 {INT64_C(100000000000), "1000000000.0"},
                 {INT64_MAX, "92233720368547758.07"},
                 {INT64_MIN, "-92233720368547758.08"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[MONEY_FMT_MAX];
        size_t n = money_format(cases[i].cents, buf, sizeof buf);
        assert_string_equal(buf, cases[i].text);
        assert_int_equal(n, strlen(cases[i].text));
    }
}

static void test_format_then_parse_round_trips_every_cent_value(void **st)
{
    (void)st;
    for (int64_t c = 1; c <= 100000; c += 7) {
        char buf[MONEY_FMT_MAX];
        size_t n = money_format(c, buf, sizeof buf);
        int64_t back = 0;
        assert_int_equal(money_parse(buf, n, &back), MONEY_OK);
        assert_int_equal(back, c);
    }
}

static void test_parse_cents_reads_signed_integers_and_refuses_overflow(void **st)
{
    (void)st;
    int64_t c;
    assert_int_equal(money_parse_cents("12345", 5, &c), MONEY_OK);
    assert_int_equal(c, 12345);
    assert_int_equal(money_parse_cents("-9", 2, &c), MONEY_OK);
    assert_int_equal(c, -9);
    assert_int_equal(money_parse_cents("9223372036854775807", 19, &c), MONEY_OK);
    assert_int_equal(c, INT64_MAX);
    assert_int_equal(money_parse_cents("-9223372036854775808", 20, &c), MONEY_OK);
    assert_true(c == INT64_MIN);
    assert_int_equal(money_parse_cents("9223372036854775808", 19, &c), MONEY_ERANGE);
    assert_int_equal(money_parse_cents("1.5", 3, &c), MONEY_ESYNTAX);
    assert_int_equal(money_parse_cents("", 0, &c), MONEY_ESYNTAX);
    assert_int_equal(money_parse_cents("-", 1, &c), MONEY_ESYNTAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_whole_and_decimal_amounts),
        cmocka_unit_test(test_parse_bounds_are_one_cent_to_one_billion),
        cmocka_unit_test(test_parse_rejects_every_other_syntax),
        cmocka_unit_test(test_parse_respects_the_given_length),
        cmocka_unit_test(test_format_prints_shortest_decimals_like_the_python_service),
        cmocka_unit_test(test_format_then_parse_round_trips_every_cent_value),
        cmocka_unit_test(test_parse_cents_reads_signed_integers_and_refuses_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
