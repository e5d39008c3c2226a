/* The Python service's values become txagg's exactly: HINCRBYFLOAT text and
 * BSON doubles of dollars round to the nearest whole cent only within 0.001
 * cent of it (decided on decimal digits, never by double arithmetic), and
 * anything else — 12.3456, negative, too large to know the cent, not a
 * number — is refused; its naive clock becomes txagg's UTC form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../persistor/pyvalue.h"

static int text(const char *s, int64_t *c) { return pyvalue_text_cents(s, strlen(s), c); }

static void test_hincrbyfloat_text_rounds_to_the_nearest_cent_exactly(void **st)
{
    (void)st;
    static const struct {
        const char *s;
        int64_t cents;
    } ok[] = {
        {"313278.05999999999994543", INT64_C(31327806)}, /* the value */
        {"1846.06999999999999995", 184607},
        {"1000315224.44000000000232831", INT64_C(100031522444)},
        {"12345678901.24000000022351742", INT64_C(1234567890124)},
        {"100", 10000},
        {"2.1", 210},
        {"0", 0},
        {"0.01", 1},
        {"000.50", 50},
        {"9999999999999.99", INT64_C(999999999999999)},    /* 13 integer digits */
        {"12.34001", 1234},                                 /* exactly 0.001 cent off: the tolerance */
        {"12.34999", 1235},                                 /* 0.001 cent below 12.35 */
        {"12.340009999999999999999", 1234},
        {"12.3499900000000000000001", 1235},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t c = -1;
        int rc = text(ok[i].s, &c);
        if (rc != PYVALUE_OK || c != ok[i].cents)
            fail_msg("%s: rc=%d cents=%lld, want %lld", ok[i].s, rc, (long long)c, (long long)ok[i].cents);
    }
}

static void test_text_further_than_the_tolerance_or_malformed_is_refused(void **st)
{
    (void)st;
    static const struct {
        const char *s;
        int rc;
    } bad[] = {
        {"12.3456", PYVALUE_EFRACTION},
        {"12.345", PYVALUE_EFRACTION},
        {"12.340010000000000000001", PYVALUE_EFRACTION}, /* just past the tolerance */
        {"12.34998999", PYVALUE_EFRACTION},
        {"12.3401", PYVALUE_EFRACTION},
        {"-1.00", PYVALUE_ENEGATIVE},
        {"10000000000000.00", PYVALUE_ERANGE}, /* 14 integer digits */
        {"", PYVALUE_ESYNTAX},
        {"1.", PYVALUE_ESYNTAX},
        {".5", PYVALUE_ESYNTAX},
        {"1e3", PYVALUE_ESYNTAX},
        {" 1", PYVALUE_ESYNTAX},
        {"+1", PYVALUE_ESYNTAX},
        {"inf", PYVALUE_ESYNTAX},
        {"nan", PYVALUE_ESYNTAX},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t c = -7;
        int rc = text(bad[i].s, &c);
        if (rc != bad[i].rc || c != -7) fail_msg("'%s': rc=%d cents=%lld, want rc %d", bad[i].s, rc, (long long)c, bad[i].rc);
    }
    /* negative zero is zero, not a negative amount */
    int64_t c;
    assert_int_equal(text("-0.00", &c), PYVALUE_OK);
    assert_int_equal(c, 0);
}

/* Sum 2-decimal amounts the way the Python service did (float) and check
 * that the total still rounds to the exact integer sum. */
static void test_double_sums_of_two_decimal_amounts_round_to_their_exact_cents(void **st)
{
    (void)st;
    uint32_t x = 7;
    for (int run = 0; run < 200; run++) {
        double sum = 0;
        int64_t want = 0;
        int n = 1 + run % 50;
        for (int i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            int64_t c = 1 + (int64_t)(x % 10000000u) * (run % 3 == 0 ? 997 : 1); /* up to ~1e8 dollars */
            char buf[32];
            snprintf(buf, sizeof buf, "%lld.%02lld", (long long)(c / 100), (long long)(c % 100));
            sum += strtod(buf, NULL); /* float(amount), as Python did */
            want += c;
        }
        int64_t got = -1;
        assert_int_equal(pyvalue_double_cents(sum, &got), PYVALUE_OK);
        assert_int_equal(got, want);
    }
    int64_t c;
    assert_int_equal(pyvalue_double_cents(1846.07, &c), PYVALUE_OK);
    assert_int_equal(c, 184607);
    assert_int_equal(pyvalue_double_cents(0.1 + 0.2, &c), PYVALUE_OK);
    assert_int_equal(c, 30);
    assert_int_equal(pyvalue_double_cents(-0.0, &c), PYVALUE_OK);
    assert_int_equal(c, 0);
    assert_int_equal(pyvalue_double_cents(1e9 + 0.01, &c), PYVALUE_OK);
    assert_int_equal(c, INT64_C(100000000001));
}

static void test_doubles_off_a_cent_too_large_or_not_finite_are_refused(void **st)
{
    (void)st;
    int64_t c = -7;
    assert_int_equal(pyvalue_double_cents(12.3456, &c), PYVALUE_EFRACTION);
    assert_int_equal(pyvalue_double_cents(0.005, &c), PYVALUE_EFRACTION);
    assert_int_equal(pyvalue_double_cents(-12.0, &c), PYVALUE_ENEGATIVE);
    assert_int_equal(pyvalue_double_cents(PYVALUE_DOUBLE_MAX, &c), PYVALUE_ERANGE);
    assert_int_equal(pyvalue_double_cents(INFINITY, &c), PYVALUE_ERANGE);
    assert_int_equal(pyvalue_double_cents(NAN, &c), PYVALUE_ESYNTAX);
    assert_int_equal(c, -7);
    /* just below the bound, a whole number of cents still converts */
    assert_int_equal(pyvalue_double_cents(34359738367.5, &c), PYVALUE_OK);
    assert_int_equal(c, INT64_C(3435973836750));
    /* whole dollars stored as integers */
    assert_int_equal(pyvalue_int_cents(100, &c), PYVALUE_OK);
    assert_int_equal(c, 10000);
    assert_int_equal(pyvalue_int_cents(-1, &c), PYVALUE_ENEGATIVE);
    assert_int_equal(pyvalue_int_cents(INT64_C(1) << 40, &c), PYVALUE_ERANGE);
    char buf[PYVALUE_TEXT_MAX];
    assert_string_equal(pyvalue_double_text(12.3456, buf, sizeof buf), "12.3456");
    assert_string_equal(pyvalue_double_text(0.1 + 0.2, buf, sizeof buf), "0.30000000000000004");
    assert_string_equal(pyvalue_strerror(PYVALUE_EFRACTION), "is not within 0.001 cent of a whole cent");
}

static void test_naive_clock_becomes_txagg_utc_form(void **st)
{
    (void)st;
    char out[TS_ISO_LEN + 1];
    assert_int_equal(pyvalue_clock("2026-01-31T23:59:58", 19, out), 0);
    assert_string_equal(out, "2026-01-31T23:59:58Z");
    const char *micro = "2026-01-31T23:59:58.123456";
    assert_int_equal(pyvalue_clock(micro, strlen(micro), out), 0);
    assert_string_equal(out, "2026-01-31T23:59:58Z");
    const char *space = "2026-01-31 23:59:58";
    assert_int_equal(pyvalue_clock(space, strlen(space), out), 0);
    assert_string_equal(out, "2026-01-31T23:59:58Z");
    const char *offset = "2026-02-01T00:30:00+01:00";
    assert_int_equal(pyvalue_clock(offset, strlen(offset), out), 0);
    assert_string_equal(out, "2026-01-31T23:30:00Z");
    assert_int_equal(pyvalue_clock("2026-01-31T23:59:58Z", 20, out), 0); /* already txagg's: unchanged */
    assert_string_equal(out, "2026-01-31T23:59:58Z");
    assert_int_equal(pyvalue_clock("1769903998", 10, out), -1);
    assert_int_equal(pyvalue_clock("", 0, out), -1);
}

static void test_methods_must_already_be_txagg_methods(void **st)
{
    (void)st;
    assert_true(pyvalue_method_ok("apple_pay", 9));
    assert_true(pyvalue_method_ok("bank-transfer", 13));
    assert_false(pyvalue_method_ok("Visa", 4));
    assert_false(pyvalue_method_ok("pay.pal", 7));
    assert_false(pyvalue_method_ok("", 0));
    assert_false(pyvalue_method_ok("abcdefghijklmnopqrstuvwxyz0123456", 33));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hincrbyfloat_text_rounds_to_the_nearest_cent_exactly),
        cmocka_unit_test(test_text_further_than_the_tolerance_or_malformed_is_refused),
        cmocka_unit_test(test_double_sums_of_two_decimal_amounts_round_to_their_exact_cents),
        cmocka_unit_test(test_doubles_off_a_cent_too_large_or_not_finite_are_refused),
        cmocka_unit_test(test_naive_clock_becomes_txagg_utc_form),
        cmocka_unit_test(test_methods_must_already_be_txagg_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
