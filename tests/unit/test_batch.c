/* Stream entries are parsed by the same rules as the importer's rows, and a
 * batch is pre-aggregated exactly: per (day, type, method) sums, the set of
 * days, the greatest timestamp, every id once and in order, malformed
 * entries kept aside as dead letters.  Entries the Python service left in the
 * stream (dollars, its field names) are read by the same rules and summed
 * with txagg's.  The apply script's arguments describe the batch and their
 * counts add up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../aggregator/apply.h"
#include "../../aggregator/batch.h"
#include "keys.h"
#include "txn.h"

/* An entry as the importer writes it. */
typedef struct entry {
    const char *id;
    const char *ts, *type, *method, *cents;
} entry;

static int add(batch *b, const entry *e)
{
    const char *fv[10] = {"ts", e->ts, "type", e->type, "method", e->method, "cents", e->cents, "src", "t.csv:2"};
    size_t fl[10];
    for (int i = 0; i < 10; i++) fl[i] = strlen(fv[i]);
    return batch_add(b, e->id, strlen(e->id), fv, fl, 10);
}

static int parse4(const char *ts, const char *type, const char *method, const char *cents, batch_txn *t,
                  char *detail)
{
    const char *fv[8] = {"ts", ts, "type", type, "method", method, "cents", cents};
    size_t fl[8];
    for (int i = 0; i < 8; i++) fl[i] = strlen(fv[i]);
    return batch_parse_entry(fv, fl, 8, t, detail, 96);
}

static void test_valid_entry_is_parsed_to_utc_day_type_method_and_cents(void **st)
{
    (void)st;
    batch_txn t;
    char d[96];
    assert_int_equal(parse4("2026-01-05T03:33:58Z", "withdrawal", "Apple_Pay", "168786", &t, d), 0);
    assert_int_equal(t.epoch, INT64_C(1767584038)); /* date -u -d 2026-01-05T03:33:58Z +%s */
    assert_int_equal(t.day, 20458);                 /* 1767584038 / 86400 */
    assert_int_equal(t.type, TXN_WITHDRAWAL);
    assert_string_equal(t.method, "apple_pay");
    assert_int_equal(t.cents, 168786);
    /* an offset is converted: 23:30 at -01:00 is 00:30 UTC the next day */
    assert_int_equal(parse4("2026-01-05T23:30:00-01:00", "DEPOSIT", "visa", "1", &t, d), 0);
    assert_int_equal(t.day, 20459);
    assert_int_equal(t.type, TXN_DEPOSIT);
}

/* The current entry: one field tx, "<ts> <type> <method> <amount> <src>". */
static int parse_tx(const char *value, batch_txn *t, char *detail)
{
    const char *fv[2] = {TXN_ENTRY_FIELD, value};
    size_t fl[2] = {strlen(fv[0]), strlen(value)};
    return batch_parse_entry(fv, fl, 2, t, detail, 96);
}

static void test_one_field_entry_is_parsed_and_agrees_with_the_previous_format(void **st)
{
    (void)st;
    batch_txn t, old;
    char d[96];
    assert_int_equal(parse_tx("2026-01-05T03:33:58Z withdrawal Apple_Pay 1687.86 my file.csv:2", &t, d), 0);
    assert_int_equal(parse4("2026-01-05T03:33:58Z", "withdrawal", "Apple_Pay", "168786", &old, d), 0);
    assert_int_equal(t.epoch, old.epoch);
    assert_int_equal(t.day, old.day);
    assert_int_equal(t.type, old.type);
    assert_string_equal(t.method, old.method);
    assert_int_equal(t.cents, 168786);
    /* the amount as the importer prints it (money_format): one decimal, none missing */
    assert_int_equal(parse_tx("2026-01-05T03:33:58Z deposit visa 100.0 f:1", &t, d), 0);
    assert_int_equal(t.cents, 10000);
    assert_int_equal(parse_tx("2026-01-05T03:33:58Z deposit visa 1000000000.0 f:1", &t, d), 0);
    assert_int_equal(t.cents, INT64_C(100000000000));
    /* the same text from the importer's own formatter */
    char head[TXN_ENTRY_HEAD_MAX];
    size_t n = txn_entry_head(head, "2026-01-05T03:33:58Z", TXN_WITHDRAWAL, "paypal", 6, 34340);
    assert_int_equal(n, strlen("2026-01-05T03:33:58Z withdrawal paypal 343.4 "));
    assert_memory_equal(head, "2026-01-05T03:33:58Z withdrawal paypal 343.4 ", n);
}

static void test_each_bad_word_of_a_one_field_entry_makes_it_malformed_with_a_reason(void **st)
{
    (void)st;
    batch_txn t;
    char d[96];
    static const struct {
        const char *value, *why;
    } bad[] = {
        {"2026-02-30T00:00:00Z deposit visa 1.00 f:1", "ts:"},
        {"2026-01-05T03:33:58Z refund visa 1.00 f:1", "type:"},
        {"2026-01-05T03:33:58Z deposit pay:pal 1.00 f:1", "method:"},
        {"2026-01-05T03:33:58Z deposit visa 0.00 f:1", "amount:"},
        {"2026-01-05T03:33:58Z deposit visa 1.005 f:1", "amount:"},
        {"2026-01-05T03:33:58Z deposit visa 1000000000.01 f:1", "amount:"},
        {"2026-01-05T03:33:58Z deposit visa 168786", "tx:"}, /* no source: four words */
        {"2026-01-05T03:33:58Z deposit visa", "tx:"},
        {"", "tx:"},
        {"2026-01-05T03:33:58Z  deposit visa 1.00 f:1", "type:"}, /* words are separated by one space */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d[0] = '\0';
        if (parse_tx(bad[i].value, &t, d) == 0) fail_msg("accepted: '%s'", bad[i].value);
        if (strncmp(d, bad[i].why, strlen(bad[i].why)) != 0)
            fail_msg("'%s': reason '%s', want '%s…'", bad[i].value, d, bad[i].why);
    }
}

static void test_each_invalid_field_makes_the_entry_malformed_with_a_reason(void **st)
{
    (void)st;
    batch_txn t;
    char d[96];
    static const struct {
        const char *ts, *type, *method, *cents, *why;
    } bad[] = {
        {"2026-02-30T00:00:00Z", "deposit", "visa", "100", "ts:"},
        {"yesterday", "deposit", "visa", "100", "ts:"},
        {"", "deposit", "visa", "100", "ts:"},
        {"1969-12-31T23:59:59Z", "deposit", "visa", "100", "ts:"},
        {"2026-01-05T03:33:58Z", "refund", "visa", "100", "type:"},
        {"2026-01-05T03:33:58Z", "", "visa", "100", "type:"},
        {"2026-01-05T03:33:58Z", "deposit", "pay pal", "100", "method:"},
        {"2026-01-05T03:33:58Z", "deposit", "pay:pal", "100", "method:"},
        {"2026-01-05T03:33:58Z", "deposit", "", "100", "method:"},
        {"2026-01-05T03:33:58Z", "deposit", "abcdefghijklmnopqrstuvwxyz0123456", "100", "method:"}, /* 33 */
        {"2026-01-05T03:33:58Z", "deposit", "visa", "0", "cents:"},
        {"2026-01-05T03:33:58Z", "deposit", "visa", "-5", "cents:"},
        {"2026-01-05T03:33:58Z", "deposit", "visa", "+5", "cents:"},
        {"2026-01-05T03:33:58Z", "deposit", "visa", "1.50", "cents:"},
        {"2026-01-05T03:33:58Z", "deposit", "visa", "", "cents:"},
        {"2026-01-05T03:33:58Z", "deposit", "visa", "100000000001", "cents:"},
        {"2026-01-05T03:33:58Z", "deposit", "visa", "99999999999999999999999", "cents:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d[0] = '\0';
        int rc = parse4(bad[i].ts, bad[i].type, bad[i].method, bad[i].cents, &t, d);
        if (rc != -1 || strncmp(d, bad[i].why, strlen(bad[i].why)) != 0)
            fail_msg("case %zu (%s %s %s %s): rc=%d detail=%s", i, bad[i].ts, bad[i].type, bad[i].method,
                     bad[i].cents, rc, d);
    }
    /* the bounds themselves are valid */
    assert_int_equal(parse4("2026-01-05T03:33:58Z", "deposit", "abcdefghijklmnopqrstuvwxyz012345", "100000000000",
                            &t, d),
                     0);
    assert_int_equal(t.cents, INT64_C(100000000000));
}

static void test_missing_or_repeated_fields_make_the_entry_malformed(void **st)
{
    (void)st;
    batch_txn t;
    char d[96];
    const char *fv1[6] = {"ts", "2026-01-05T03:33:58Z", "type", "deposit", "method", "visa"};
    size_t fl1[6];
    for (int i = 0; i < 6; i++) fl1[i] = strlen(fv1[i]);
    assert_int_equal(batch_parse_entry(fv1, fl1, 6, &t, d, sizeof d), -1);
    assert_string_equal(d, "cents: missing");
    const char *fv2[10] = {"ts", "2026-01-05T03:33:58Z", "type", "deposit", "method", "visa", "cents", "5",
                           "cents", "7"};
    size_t fl2[10];
    for (int i = 0; i < 10; i++) fl2[i] = strlen(fv2[i]);
    assert_int_equal(batch_parse_entry(fv2, fl2, 10, &t, d, sizeof d), -1);
    assert_string_equal(d, "cents: field given twice");
    assert_int_equal(batch_parse_entry(fv2, fl2, 9, &t, d, sizeof d), -1); /* odd */
}

/* An entry as the Python service published it (field order as it wrote them). */
static int parse_py(const char *ts, const char *type, const char *method, const char *amount, batch_txn *t,
                    char *detail)
{
    const char *fv[10] = {"timestamp", ts, "type", type, "payment_method", method, "amount", amount, "sleep_ms", "250"};
    size_t fl[10];
    for (int i = 0; i < 10; i++) fl[i] = strlen(fv[i]);
    return batch_parse_entry(fv, fl, 10, t, detail, 96);
}

static void test_python_service_entry_is_read_by_the_csv_rules_in_dollars(void **st)
{
    (void)st;
    batch_txn t;
    char d[96];
    assert_int_equal(parse_py("2026-01-05 03:33:58", "Withdrawal", "Apple_Pay", "1687.86", &t, d), 0);
    assert_int_equal(t.epoch, INT64_C(1767584038)); /* naive = UTC, a space for T */
    assert_int_equal(t.type, TXN_WITHDRAWAL);
    assert_string_equal(t.method, "apple_pay");
    assert_int_equal(t.cents, 168786);
    /* one decimal, none, the bounds — exactly, never through a float */
    assert_int_equal(parse_py("2026-01-05T23:30:00-01:00", "deposit", "paypal", "343.4", &t, d), 0);
    assert_int_equal(t.cents, 34340);
    assert_int_equal(t.day, 20459);
    assert_int_equal(parse_py("2026-01-05T00:00:00Z", "deposit", "visa", "0.01", &t, d), 0);
    assert_int_equal(t.cents, 1);
    assert_int_equal(parse_py("2026-01-05T00:00:00.999", "deposit", "visa", "1000000000.00", &t, d), 0);
    assert_int_equal(t.cents, INT64_C(100000000000));
    assert_int_equal(parse_py("2026-01-05T00:00:00", "deposit", "visa", "100", &t, d), 0);
    assert_int_equal(t.cents, 10000);
}

static void test_python_service_entry_breaking_a_rule_is_malformed_with_its_field_named(void **st)
{
    (void)st;
    batch_txn t;
    char d[96];
    static const struct {
        const char *ts, *type, *method, *amount, *why;
    } bad[] = {
        {"2026-02-30 00:00:00", "deposit", "visa", "1.00", "timestamp:"},
        {"1969-12-31T23:59:59", "deposit", "visa", "1.00", "timestamp:"},
        {"2026-01-05T03:33:58", "refund", "visa", "1.00", "type:"},
        {"2026-01-05T03:33:58", "deposit", "pay:pal", "1.00", "payment_method:"},
        {"2026-01-05T03:33:58", "deposit", "visa", "12.3456", "amount:"},
        {"2026-01-05T03:33:58", "deposit", "visa", "0.00", "amount:"},
        {"2026-01-05T03:33:58", "deposit", "visa", "1000000000.01", "amount:"},
        {"2026-01-05T03:33:58", "deposit", "visa", "-5.00", "amount:"},
        {"2026-01-05T03:33:58", "deposit", "visa", "1e3", "amount:"},
        {"2026-01-05T03:33:58", "deposit", "visa", "", "amount:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d[0] = '\0';
        int rc = parse_py(bad[i].ts, bad[i].type, bad[i].method, bad[i].amount, &t, d);
        if (rc != -1 || strncmp(d, bad[i].why, strlen(bad[i].why)) != 0)
            fail_msg("case %zu (%s %s %s %s): rc=%d detail=%s", i, bad[i].ts, bad[i].type, bad[i].method,
                     bad[i].amount, rc, d);
    }
    /* a Python entry missing a field, or repeating one */
    const char *fv1[6] = {"timestamp", "2026-01-05T03:33:58", "type", "deposit", "amount", "5.00"};
    size_t fl1[6];
    for (int i = 0; i < 6; i++) fl1[i] = strlen(fv1[i]);
    assert_int_equal(batch_parse_entry(fv1, fl1, 6, &t, d, sizeof d), -1);
    assert_string_equal(d, "payment_method: missing");
    const char *fv2[10] = {"timestamp", "2026-01-05T03:33:58", "type", "deposit", "payment_method", "visa",
                           "amount", "5.00", "amount", "6.00"};
    size_t fl2[10];
    for (int i = 0; i < 10; i++) fl2[i] = strlen(fv2[i]);
    assert_int_equal(batch_parse_entry(fv2, fl2, 10, &t, d, sizeof d), -1);
    assert_string_equal(d, "amount: field given twice");
    /* txagg's fields decide when both kinds are present: cents, never dollars */
    const char *fv3[12] = {"ts", "2026-01-05T03:33:58Z", "type", "deposit", "method", "visa", "cents", "500",
                           "amount", "5.00", "payment_method", "paypal"};
    size_t fl3[12];
    for (int i = 0; i < 12; i++) fl3[i] = strlen(fv3[i]);
    assert_int_equal(batch_parse_entry(fv3, fl3, 12, &t, d, sizeof d), 0);
    assert_int_equal(t.cents, 500);
    assert_string_equal(t.method, "visa");
}

static void test_batch_mixing_python_and_txagg_entries_sums_both_exactly(void **st)
{
    (void)st;
    batch b;
    assert_int_equal(batch_init(&b), 0);
    const char *py1[10] = {"timestamp", "2026-01-05T10:00:00", "type", "deposit", "payment_method", "visa",
                           "amount", "313278.06", "sleep_ms", "0"};
    const char *py2[10] = {"timestamp", "2026-01-05T11:00:00", "type", "deposit", "payment_method", "VISA",
                           "amount", "0.07", "sleep_ms", "10"};
    const char *pybad[10] = {"timestamp", "2026-01-05T11:00:00", "type", "deposit", "payment_method", "visa",
                             "amount", "12.3456", "sleep_ms", "10"};
    size_t l1[10], l2[10], l3[10];
    for (int i = 0; i < 10; i++) {
        l1[i] = strlen(py1[i]);
        l2[i] = strlen(py2[i]);
        l3[i] = strlen(pybad[i]);
    }
    assert_int_equal(batch_add(&b, "1-1", 3, py1, l1, 10), 0);
    assert_int_equal(batch_add(&b, "1-2", 3, pybad, l3, 10), 0);
    assert_int_equal(add(&b, &(entry){"1-3", "2026-01-05T12:00:00Z", "deposit", "visa", "3"}), 0);
    assert_int_equal(batch_add(&b, "1-4", 3, py2, l2, 10), 0);
    assert_int_equal(batch_finish(&b), 0);
    assert_int_equal(b.n_ids, 4);
    assert_int_equal(b.n_valid, 3);
    assert_int_equal(b.n_malformed, 1);
    assert_string_equal(batch_dead_detail(&b, &b.dead[0]), "amount: not digits[.d or .dd] in 0.01..1000000000.00");
    assert_int_equal(b.n_cells, 1);
    assert_int_equal(b.cells[0].cents, INT64_C(31327806) + 3 + 7);
    char ts[TS_ISO_LEN + 1];
    batch_max_ts(&b, ts);
    assert_string_equal(ts, "2026-01-05T12:00:00Z");
    batch_free(&b);
}

static void test_batch_sums_per_day_type_and_method_match_an_independent_sum(void **st)
{
    (void)st;
    /* 600 entries over 3 days x 2 types x 4 methods, out of order in time;
     * the expected sums are accumulated here directly from the generator. */
    static const char *methods[4] = {"visa", "paypal", "apple_pay", "Bank-Transfer"};
    static const char *lower[4] = {"visa", "paypal", "apple_pay", "bank-transfer"};
    int64_t want[3][2][4] = {{{0}}};
    char ids[600][32], ts[600][24], cents[600][16];
    batch b;
    assert_int_equal(batch_init(&b), 0);
    uint32_t x = 12345;
    int64_t max_epoch = 0;
    for (int i = 0; i < 600; i++) {
        x = x * 1103515245u + 12345u;
        int day = (int)((x >> 8) % 3), type = (int)((x >> 12) % 2), m = (int)((x >> 16) % 4);
        int h = (int)((x >> 4) % 24);
        int64_t c = 1 + (int64_t)((x >> 3) % 99999999);
        snprintf(ids[i], sizeof ids[i], "1700000000000-%d", i);
        snprintf(ts[i], sizeof ts[i], "2026-01-%02dT%02d:07:09Z", 10 + day, h);
        snprintf(cents[i], sizeof cents[i], "%lld", (long long)c);
        int64_t epoch = INT64_C(1768003200) + day * 86400 + h * 3600 + 7 * 60 + 9; /* 2026-01-10T00:00:00Z + … */
        if (epoch > max_epoch) max_epoch = epoch;
        want[day][type][m] += c;
        entry e = {ids[i], ts[i], type ? "withdrawal" : "deposit", methods[m], cents[i]};
        assert_int_equal(add(&b, &e), 0);
    }
    assert_int_equal(batch_finish(&b), 0);
    assert_int_equal(b.n_ids, 600);
    assert_int_equal(b.n_valid, 600);
    assert_int_equal(b.n_malformed, 0);
    assert_int_equal(b.n_days, 3);
    char buf[TS_ISO_LEN + 1];
    batch_max_ts(&b, buf);
    char want_ts[TS_ISO_LEN + 1];
    ts_format_iso(max_epoch, want_ts);
    assert_string_equal(buf, want_ts);

    size_t cells_seen = 0;
    for (size_t g = 0; g < b.n_groups; g++) {
        const batch_group *gr = &b.groups[g];
        int day = -1;
        sscanf(gr->daystr, "2026-01-%d", &day);
        day -= 10;
        assert_true(day >= 0 && day < 3);
        if (g) assert_true(gr->day > b.groups[g - 1].day ||
                           (gr->day == b.groups[g - 1].day && gr->type > b.groups[g - 1].type));
        for (size_t c = gr->first; c < gr->first + gr->n; c++) {
            int m = -1;
            for (int k = 0; k < 4; k++)
                if (!strcmp(b.cells[c].method, lower[k])) m = k;
            assert_true(m >= 0);
            assert_int_equal(b.cells[c].type, gr->type);
            assert_int_equal(b.cells[c].cents, want[day][gr->type][m]);
            cells_seen++;
        }
    }
    size_t nonzero = 0;
    for (int d = 0; d < 3; d++)
        for (int t = 0; t < 2; t++)
            for (int m = 0; m < 4; m++) nonzero += want[d][t][m] != 0;
    assert_int_equal(cells_seen, nonzero);
    batch_free(&b);
}

static void test_malformed_and_gone_entries_are_acknowledged_but_not_counted(void **st)
{
    (void)st;
    batch b;
    assert_int_equal(batch_init(&b), 0);
    entry ok = {"5-0", "2026-01-05T03:33:58Z", "deposit", "visa", "250"};
    entry bad = {"5-1", "2026-01-05T03:33:58Z", "deposit", "visa", "2.50"};
    assert_int_equal(add(&b, &ok), 0);
    assert_int_equal(add(&b, &bad), 0);
    assert_int_equal(batch_add(&b, "5-2", 3, NULL, NULL, 0), 0); /* [id, nil] */
    assert_int_equal(batch_finish(&b), 0);
    assert_int_equal(b.n_ids, 3);
    assert_int_equal(b.n_valid, 1);
    assert_int_equal(b.n_malformed, 1);
    assert_int_equal(b.n_gone, 1);
    assert_int_equal(b.n_cells, 1);
    assert_int_equal(b.cells[0].cents, 250);
    assert_memory_equal(b.dead[0].id, "5-1", 3);
    assert_string_equal(batch_dead_raw(&b, &b.dead[0]),
                        "ts=2026-01-05T03:33:58Z type=deposit method=visa cents=2.50 src=t.csv:2");
    assert_string_equal(batch_dead_detail(&b, &b.dead[0]), "cents: not an integer 1..100000000000");
    batch_free(&b);
}

static void test_batch_of_only_malformed_entries_has_no_day_and_no_timestamp(void **st)
{
    (void)st;
    batch b;
    assert_int_equal(batch_init(&b), 0);
    entry bad = {"9-0", "nope", "deposit", "visa", "1"};
    assert_int_equal(add(&b, &bad), 0);
    assert_int_equal(batch_finish(&b), 0);
    char ts[TS_ISO_LEN + 1];
    batch_max_ts(&b, ts);
    assert_string_equal(ts, "");
    assert_int_equal(b.n_groups, 0);
    assert_int_equal(b.n_days, 0);
    batch_free(&b);
}

static void test_dead_letter_raw_text_is_cut_at_its_limit(void **st)
{
    (void)st;
    batch b;
    assert_int_equal(batch_init(&b), 0);
    char *big = malloc(BATCH_RAW_MAX * 2);
    memset(big, 'x', BATCH_RAW_MAX * 2 - 1);
    big[BATCH_RAW_MAX * 2 - 1] = '\0';
    const char *fv[2] = {"junk", big};
    size_t fl[2] = {4, strlen(big)};
    assert_int_equal(batch_add(&b, "1-1", 3, fv, fl, 2), 0);
    assert_int_equal(b.n_malformed, 1);
    assert_true(b.dead[0].raw_len <= BATCH_RAW_MAX + 1);
    assert_int_equal(strlen(batch_dead_raw(&b, &b.dead[0])), b.dead[0].raw_len);
    free(big);
    batch_free(&b);
}

static void test_ids_are_sorted_numerically_and_bad_ids_refused(void **st)
{
    (void)st;
    batch b;
    assert_int_equal(batch_init(&b), 0);
    const char *order[] = {"10-0", "9-5", "9-10", "100-0"};
    for (int i = 0; i < 4; i++) assert_int_equal(batch_add(&b, order[i], strlen(order[i]), NULL, NULL, 0), 0);
    assert_int_equal(batch_finish(&b), 0);
    const char *want[] = {"9-5", "9-10", "10-0", "100-0"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(b.idlens[i], strlen(want[i]));
        assert_memory_equal(b.ids[i], want[i], strlen(want[i]));
    }
    batch_reset(&b);
    assert_int_equal(b.n_ids, 0);
    assert_int_equal(batch_add(&b, "abc", 3, NULL, NULL, 0), -1);
    assert_int_equal(batch_add(&b, "5", 1, NULL, NULL, 0), -1);
    assert_int_equal(batch_add(&b, "-5", 2, NULL, NULL, 0), -1);
    assert_int_equal(batch_add(&b, "5-", 2, NULL, NULL, 0), -1);
    assert_int_equal(batch_add(&b, "99999999999999999999-0", 22, NULL, NULL, 0), -1); /* > 2^64 */
    uint64_t ms, seq;
    assert_int_equal(batch_id_parse("18446744073709551615-7", 22, &ms, &seq), 0);
    assert_true(ms == UINT64_MAX && seq == 7);
    batch_free(&b);
}

static void test_reset_batch_is_reusable_with_no_leftovers(void **st)
{
    (void)st;
    batch b;
    assert_int_equal(batch_init(&b), 0);
    char id[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2000; i++) {
            snprintf(id, sizeof id, "1-%d", i);
            /* ids must outlive the batch's use: keep them in a static pool */
            static char pool[2000][32];
            memcpy(pool[i], id, sizeof id);
            entry e = {pool[i], "2026-03-01T00:00:00Z", "deposit", i % 2 ? "a" : "b", "3"};
            assert_int_equal(add(&b, &e), 0);
        }
        assert_int_equal(batch_finish(&b), 0);
        assert_int_equal(b.n_cells, 2);
        assert_int_equal(b.cells[0].cents + b.cells[1].cents, 6000);
        batch_reset(&b);
    }
    batch_free(&b);
}

/* The layout documented in apply.lua: KEYS, then 6 fixed ARGV, ids, per key
 * (m, m pairs), days, 4 strings per dead letter. */
static void test_apply_arguments_follow_the_script_layout(void **st)
{
    (void)st;
    batch b;
    assert_int_equal(batch_init(&b), 0);
    entry es[] = {
        {"7-0", "2026-01-02T10:00:00Z", "deposit", "visa", "100"},
        {"7-1", "2026-01-01T10:00:00Z", "withdrawal", "visa", "5"},
        {"7-2", "2026-01-02T11:00:00Z", "deposit", "visa", "20"},
        {"7-3", "2026-01-02T11:00:00Z", "deposit", "amex", "3"},
        {"7-4", "bad", "deposit", "amex", "3"},
    };
    for (size_t i = 0; i < 5; i++) assert_int_equal(add(&b, &es[i]), 0);
    assert_int_equal(batch_finish(&b), 0);
    apply_args a;
    apply_args_init(&a);
    assert_int_equal(apply_build(&a, &b, KEYS_GROUP, "me", APPLY_OWN_IDS), 0);
    const char *want[] = {
        KEYS_STREAM, KEYS_TRACKED_DAYS, KEYS_VIRTUAL_CLOCK, KEYS_REJECTED, KEYS_HOT_VERSION, "agg:2026-01-01:withdrawal",
        "agg:2026-01-02:deposit",
        /* ARGV */
        KEYS_GROUP, "me", "2026-01-02T11:00:00Z", "5", "2", "1", "ids", "7-0", "7-1", "7-2", "7-3", "7-4",
        "1", "visa", "5",                  /* agg:2026-01-01:withdrawal */
        "2", "amex", "3", "visa", "120",   /* agg:2026-01-02:deposit, methods sorted */
        "2026-01-01", "2026-01-02",        /* days */
        BATCH_REASON_MALFORMED, "7-4", "ts=bad type=deposit method=amex cents=3 src=t.csv:2",
        "ts: not a UTC ISO timestamp",
    };
    size_t n = sizeof want / sizeof want[0];
    assert_int_equal(a.nkeys, 7);
    assert_int_equal(a.argc, n);
    for (size_t i = 0; i < n; i++) {
        if (a.l[i] != strlen(want[i]) || memcmp(a.v[i], want[i], a.l[i]) != 0)
            fail_msg("argument %zu: got '%.*s', want '%s'", i, (int)a.l[i], a.v[i], want[i]);
    }
    /* the "all" form carries no id: the script counts and acknowledges them all */
    assert_int_equal(apply_build(&a, &b, KEYS_GROUP, "me", APPLY_OWN_ALL), 0);
    assert_int_equal(a.argc, n - 5);
    assert_int_equal(a.l[13], 3);
    assert_memory_equal(a.v[13], "all", 3);
    assert_int_equal(a.l[14], 1);
    assert_memory_equal(a.v[14], "1", 1); /* the first hash's field count follows at once */
    batch_reset(&b);
    assert_int_equal(apply_build(&a, &b, KEYS_GROUP, "me", APPLY_OWN_IDS), -1); /* an empty batch is never sent */
    apply_args_free(&a);
    batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_entry_is_parsed_to_utc_day_type_method_and_cents),
        cmocka_unit_test(test_one_field_entry_is_parsed_and_agrees_with_the_previous_format),
        cmocka_unit_test(test_each_bad_word_of_a_one_field_entry_makes_it_malformed_with_a_reason),
        cmocka_unit_test(test_each_invalid_field_makes_the_entry_malformed_with_a_reason),
        cmocka_unit_test(test_missing_or_repeated_fields_make_the_entry_malformed),
        cmocka_unit_test(test_python_service_entry_is_read_by_the_csv_rules_in_dollars),
        cmocka_unit_test(test_python_service_entry_breaking_a_rule_is_malformed_with_its_field_named),
        cmocka_unit_test(test_batch_mixing_python_and_txagg_entries_sums_both_exactly),
        cmocka_unit_test(test_batch_sums_per_day_type_and_method_match_an_independent_sum),
        cmocka_unit_test(test_malformed_and_gone_entries_are_acknowledged_but_not_counted),
        cmocka_unit_test(test_batch_of_only_malformed_entries_has_no_day_and_no_timestamp),
        cmocka_unit_test(test_dead_letter_raw_text_is_cut_at_its_limit),
        cmocka_unit_test(test_ids_are_sorted_numerically_and_bad_ids_refused),
        cmocka_unit_test(test_reset_batch_is_reusable_with_no_leftovers),
        cmocka_unit_test(test_apply_arguments_follow_the_script_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
