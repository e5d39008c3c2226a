/* Key names come from one place; transaction field rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "keys.h"
#include "txn.h"

static void test_key_builders_follow_the_schema(void **st)
{
    (void)st;
    char b[128];
    assert_int_equal(keys_agg(b, sizeof b, "2026-01-01", "deposit"), strlen("agg:2026-01-01:deposit"));
    assert_string_equal(b, "agg:2026-01-01:deposit");
    keys_frozen(b, sizeof b, "B7", "2026-01-01", "withdrawal");
    assert_string_equal(b, "archive:frozen:B7:2026-01-01:withdrawal");
    keys_batch(b, sizeof b, "B7");
    assert_string_equal(b, "archive:batch:B7");
    keys_checkpoint(b, sizeof b, "abc");
    assert_string_equal(b, "import:checkpoint:abc");
    assert_string_equal(KEYS_STREAM, "transactions");
    assert_string_equal(KEYS_GROUP, "aggregators");
    assert_string_equal(KEYS_TRACKED_DAYS, "system:tracked_days");
    assert_string_equal(KEYS_VIRTUAL_CLOCK, "system:virtual_clock");
}

static void test_key_builders_report_truncation(void **st)
{
    (void)st;
    char b[8];
    assert_int_equal(keys_agg(b, sizeof b, "2026-01-01", "deposit"), 0);
}

static void test_type_is_case_insensitive_and_exact(void **st)
{
    (void)st;
    assert_int_equal(txn_type_parse("deposit", 7), TXN_DEPOSIT);
    assert_int_equal(txn_type_parse("DePoSiT", 7), TXN_DEPOSIT);
    assert_int_equal(txn_type_parse("WITHDRAWAL", 10), TXN_WITHDRAWAL);
    assert_int_equal(txn_type_parse("deposits", 8), -1);
    assert_int_equal(txn_type_parse("depo", 4), -1);
    assert_int_equal(txn_type_parse("", 0), -1);
    assert_string_equal(txn_type_name(TXN_WITHDRAWAL), "withdrawal");
    assert_string_equal(txn_type_plural(TXN_DEPOSIT), "deposits");
}

static void test_method_is_lowercased_and_restricted(void **st)
{
    (void)st;
    char m[TXN_METHOD_MAX + 1];
    assert_int_equal(txn_method_normalize("Apple_Pay", 9, m), 9);
    assert_string_equal(m, "apple_pay");
    assert_int_equal(txn_method_normalize("visa-2", 6, m), 6);
    char longest[33];
    memset(longest, 'a', 32);
    longest[32] = 0;
    assert_int_equal(txn_method_normalize(longest, 32, m), 32);
    assert_int_equal(txn_method_normalize("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 33, m), -1);
    static const char *bad[] = {"", "pay pal", "a:b", "a.b", "$x", "é", "a/b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(txn_method_normalize(bad[i], strlen(bad[i]), m), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_builders_follow_the_schema),
        cmocka_unit_test(test_key_builders_report_truncation),
        cmocka_unit_test(test_type_is_case_insensitive_and_exact),
        cmocka_unit_test(test_method_is_lowercased_and_restricted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
