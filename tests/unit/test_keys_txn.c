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
    assert_int_equal(keys_agg(b, sizeof b, NULL, "2026-01-01", "deposit"), strlen("agg:2026-01-01:deposit"));
    assert_string_equal(b, "agg:2026-01-01:deposit");
    keys_frozen(b, sizeof b, NULL, "B7", "2026-01-01", "withdrawal");
    assert_string_equal(b, "archive:frozen:B7:2026-01-01:withdrawal");
    keys_batch(b, sizeof b, NULL, "B7");
    assert_string_equal(b, "archive:batch:B7");
    keys_checkpoint(b, sizeof b, NULL, "abc");
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
    assert_int_equal(keys_agg(b, sizeof b, NULL, "2026-01-01", "deposit"), 0);
}

/* One partition on one Redis: exactly today's names, no tag. */
static void test_one_untagged_partition_keeps_the_classic_names(void **st)
{
    (void)st;
    keys_part p;
    assert_int_equal(keys_parts_init(&p, 1, 0), 0);
    assert_string_equal(p.tag, "");
    assert_string_equal(p.stream, "transactions");
    assert_string_equal(p.rejected, "transactions:rejected");
    assert_string_equal(p.tracked, "system:tracked_days");
    assert_string_equal(p.clock, "system:virtual_clock");
    assert_string_equal(p.archive_version, "system:archive_version");
    char k[KEYS_NAME_MAX];
    keys_agg(k, sizeof k, &p, "2026-01-05", "deposit");
    assert_string_equal(k, "agg:2026-01-05:deposit");
    keys_global(k, sizeof k, "system:persistor:lease", 0);
    assert_string_equal(k, "system:persistor:lease");
    assert_int_equal(keys_parts_init(&p, 2, 0), -1); /* several partitions need tags */
}

/* Every key of a partition hashes to the partition's one slot, and the N
 * slots lie one in each N-th of the slot space: an even spread over the
 * primaries of a cluster created with even slot ranges. */
static void test_tagged_partitions_put_each_partitions_keys_in_one_slot_spread_evenly(void **st)
{
    (void)st;
    static keys_part parts[1024];
    int sizes[] = {1, 3, 4, 16, 1024};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int n = sizes[t];
        assert_int_equal(keys_parts_init(parts, n, 1), 0);
        for (int i = 0; i < n; i++) {
            const keys_part *p = &parts[i];
            assert_true(p->slot >= (int)((long)i * KEYS_SLOTS / n) && p->slot < (int)((long)(i + 1) * KEYS_SLOTS / n));
            char k[KEYS_NAME_MAX];
            const char *names[] = {p->stream, p->rejected, p->tracked, p->clock, p->hot_version,
                                   p->archive_version, p->archived_through, p->archive_pending, p->archive_seq,
                                   p->archive_fence};
            for (size_t j = 0; j < sizeof names / sizeof names[0]; j++)
                assert_int_equal(keys_slot(names[j], strlen(names[j])), p->slot);
            keys_agg(k, sizeof k, p, "2026-01-05", "withdrawal");
            assert_int_equal(keys_slot(k, strlen(k)), p->slot);
            keys_frozen(k, sizeof k, p, "000000000041-f7", "2026-01-05", "deposit");
            assert_int_equal(keys_slot(k, strlen(k)), p->slot);
            keys_checkpoint(k, sizeof k, p, "0123456789abcdef");
            assert_int_equal(keys_slot(k, strlen(k)), p->slot);
        }
    }
    /* the two global keys a script touches together share a slot */
    char a[KEYS_NAME_MAX], b[KEYS_NAME_MAX];
    keys_global(a, sizeof a, KEYS_PERSISTOR_LEASE, 1);
    keys_global(b, sizeof b, KEYS_PERSISTOR_FENCE, 1);
    assert_int_equal(keys_slot(a, strlen(a)), keys_slot(b, strlen(b)));
    assert_int_equal(keys_parts_init(parts, 0, 1), -1);
    assert_int_equal(keys_parts_init(parts, 1025, 1), -1);
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
        cmocka_unit_test(test_one_untagged_partition_keeps_the_classic_names),
        cmocka_unit_test(test_tagged_partitions_put_each_partitions_keys_in_one_slot_spread_evenly),
        cmocka_unit_test(test_type_is_case_insensitive_and_exact),
        cmocka_unit_test(test_method_is_lowercased_and_restricted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
