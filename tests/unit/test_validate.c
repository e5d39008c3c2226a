/* The input rules of docs/CONTRACTS.md: the header, and one rejection reason
 * per row in the documented order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../importer/csv_reader.h"
#include "../../importer/validate.h"

/* 2026-06-01T00:00:00Z: the "wall clock" of these tests. */
static int64_t now_epoch(void)
{
    struct tm tm = {.tm_year = 126, .tm_mon = 5, .tm_mday = 1};
    return (int64_t)timegm(&tm);
}

/* Parse "header\nrow\n" and validate the row; the header must be good. */
static int check(const char *header, const char *row, int max_future_days, valid_row *out, int64_t *sleep)
{
    char text[1024];
    int n = snprintf(text, sizeof text, "%s\n%s\n", header, row);
    csv_reader *rd = csv_reader_new(-1, text, (size_t)n, 0);
    csv_record rec;
    header_map h;
    char err[256];
    assert_int_equal(csv_reader_next(rd, &rec), 1);
    assert_int_equal(validate_header(&rec, &h, err, sizeof err), 0);
    assert_int_equal(csv_reader_next(rd, &rec), 1);
    valid_row tmp;
    int64_t s;
    int reason = validate_row(&h, &rec, now_epoch(), max_future_days, out ? out : &tmp, sleep ? sleep : &s);
    csv_reader_free(rd);
    return reason;
}

#define H "timestamp,type,payment_method,amount,sleep_ms"
static int reason_of(const char *row) { return check(H, row, 366, NULL, NULL); }

static int header_error(const char *header, char *err, size_t n)
{
    csv_reader *rd = csv_reader_new(-1, header, strlen(header), 0);
    csv_record rec;
    header_map h;
    assert_int_equal(csv_reader_next(rd, &rec), 1);
    int rc = validate_header(&rec, &h, err, n);
    csv_reader_free(rd);
    return rc;
}

static void test_header_is_case_insensitive_trimmed_in_any_order_with_extras(void **st)
{
    (void)st;
    valid_row r;
    int64_t sleep;
    const char *hdr = " Amount ,note, PAYMENT_METHOD ,\"Type\",TimeStamp\t,extra";
    assert_int_equal(check(hdr, "12.5,hello,Visa,DEPOSIT,2026-01-05 03:33:58,x", 366, &r, &sleep), REJECT_NONE);
    assert_int_equal(r.cents, 1250);
    assert_string_equal(r.method, "visa");
    assert_int_equal(r.type, TXN_DEPOSIT);
    assert_int_equal(sleep, 0); /* no sleep_ms column */
}

static void test_header_missing_a_required_column_names_it(void **st)
{
    (void)st;
    char err[256];
    static const char *const cases[][2] = {
        {"type,payment_method,amount,sleep_ms", "timestamp"},
        {"timestamp,payment_method,amount", "type"},
        {"timestamp,type,amount", "payment_method"},
        {"timestamp,type,payment_method,amount_usd", "amount"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(header_error(cases[i][0], err, sizeof err), -1);
        char want[64];
        snprintf(want, sizeof want, "'%s'", cases[i][1]);
        assert_non_null(strstr(err, want));
    }
    assert_int_equal(header_error("timestamp,type,payment_method,amount,Type", err, sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
}

static void test_accepted_row_is_normalised(void **st)
{
    (void)st;
    valid_row r;
    int64_t sleep;
    assert_int_equal(check(H, "2026-01-05T03:33:58,Withdrawal,Apple_Pay,1687.86,14", 366, &r, &sleep),
                     REJECT_NONE);
    char iso[TS_ISO_LEN + 1];
    ts_format_iso(r.epoch, iso);
    assert_string_equal(iso, "2026-01-05T03:33:58Z");
    assert_int_equal(r.type, TXN_WITHDRAWAL);
    assert_string_equal(r.method, "apple_pay");
    assert_int_equal(r.cents, 168786);
    assert_int_equal(sleep, 14);
}

static void test_field_count_must_match_the_header(void **st)
{
    (void)st;
    assert_int_equal(reason_of("2026-01-05T03:33:58,deposit,visa,10"), REJECT_FIELD_COUNT);
    assert_int_equal(reason_of("2026-01-05T03:33:58,deposit,visa,10,1,extra"), REJECT_FIELD_COUNT);
    assert_int_equal(reason_of("2026-01-05T03:33:58,deposit,visa,10,"), REJECT_NONE); /* empty sleep_ms */
    /* field_count comes first even when everything else is wrong too */
    assert_int_equal(reason_of("bad,bad"), REJECT_FIELD_COUNT);
}

static void test_timestamp_rule_and_calendar(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "2026-02-29T00:00:00", "2026-13-01T00:00:00", "2026-01-05", "05/01/2026 03:33:58",
        "1969-12-31T23:59:59", "2026-01-05T24:00:00", "2026-01-05T03:33:60", "2026-01-05T03:33:58+24:00",
        "2026-01-05T03:33:58 Z", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char row[128];
        snprintf(row, sizeof row, "%s,deposit,visa,10,1", bad[i]);
        assert_int_equal(reason_of(row), REJECT_TIMESTAMP);
    }
    /* leap days of leap years are real dates */
    assert_int_equal(reason_of("2024-02-29T12:00:00,deposit,visa,10,1"), REJECT_NONE);
    assert_int_equal(reason_of("2000-02-29 12:00:00,deposit,visa,10,1"), REJECT_NONE);
    assert_int_equal(reason_of("2100-02-29T12:00:00,deposit,visa,10,1"), REJECT_TIMESTAMP);
}

static void test_offsets_move_the_row_to_its_utc_day(void **st)
{
    (void)st;
    valid_row r;
    char day[TS_DAY_LEN + 1];
    assert_int_equal(check(H, "2026-01-05T23:30:00-01:00,deposit,visa,1,0", 366, &r, NULL), REJECT_NONE);
    ts_format_day(ts_day_of(r.epoch), day);
    assert_string_equal(day, "2026-01-06");
    assert_int_equal(check(H, "2026-01-01 00:15:00.75+02:00,deposit,visa,1,0", 366, &r, NULL), REJECT_NONE);
    ts_format_day(ts_day_of(r.epoch), day);
    assert_string_equal(day, "2025-12-31");
    char iso[TS_ISO_LEN + 1];
    ts_format_iso(r.epoch, iso);
    assert_string_equal(iso, "2025-12-31T22:15:00Z");
}

static void test_future_limit_is_max_future_days_after_the_wall_clock(void **st)
{
    (void)st;
    /* now = 2026-06-01T00:00:00Z; 366 days later is 2027-06-02T00:00:00Z */
    assert_int_equal(reason_of("2027-06-02T00:00:00Z,deposit,visa,1,0"), REJECT_NONE);
    assert_int_equal(reason_of("2027-06-02T00:00:01Z,deposit,visa,1,0"), REJECT_TIMESTAMP);
    assert_int_equal(reason_of("2099-01-01T00:00:00Z,deposit,visa,1,0"), REJECT_TIMESTAMP);
    assert_int_equal(check(H, "2026-06-01T00:00:01Z,deposit,visa,1,0", 0, NULL, NULL), REJECT_TIMESTAMP);
    assert_int_equal(check(H, "2026-06-01T00:00:00Z,deposit,visa,1,0", 0, NULL, NULL), REJECT_NONE);
    /* an offset counts: 02:00+02:00 is midnight UTC */
    assert_int_equal(check(H, "2026-06-01T02:00:00+02:00,deposit,visa,1,0", 0, NULL, NULL), REJECT_NONE);
}

static void test_type_is_deposit_or_withdrawal_in_any_case(void **st)
{
    (void)st;
    assert_int_equal(reason_of("2026-01-05T03:33:58,DePoSiT,visa,10,1"), REJECT_NONE);
    static const char *const bad[] = {"deposits", "transfer", "", "withdraw", "deposit!"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char row[128];
        snprintf(row, sizeof row, "2026-01-05T03:33:58,%s,visa,10,1", bad[i]);
        assert_int_equal(reason_of(row), REJECT_TYPE);
    }
    /* order: type is checked after timestamp */
    assert_int_equal(reason_of("2026-02-30T00:00:00,transfer,visa,10,1"), REJECT_TIMESTAMP);
}

static void test_payment_method_after_lowercasing(void **st)
{
    (void)st;
    valid_row r;
    assert_int_equal(check(H, "2026-01-05T03:33:58,deposit,Bank-Transfer_2,10,1", 366, &r, NULL), REJECT_NONE);
    assert_string_equal(r.method, "bank-transfer_2");
    static const char *const bad[] = {"pay pal", "a:b", "a.b", "$x", "\"\"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char row[128];
        snprintf(row, sizeof row, "2026-01-05T03:33:58,deposit,%s,10,1", bad[i]);
        assert_int_equal(reason_of(row), REJECT_PAYMENT_METHOD);
    }
    assert_int_equal(reason_of("2026-01-05T03:33:58,deposit,pay pal,-1,1"), REJECT_PAYMENT_METHOD);
}

static void test_amount_is_exact_cents_within_bounds(void **st)
{
    (void)st;
    valid_row r;
    assert_int_equal(check(H, "2026-01-05T03:33:58,deposit,visa,0.01,1", 366, &r, NULL), REJECT_NONE);
    assert_int_equal(r.cents, 1);
    assert_int_equal(check(H, "2026-01-05T03:33:58,deposit,visa,\" 1000000000.00 \",1", 366, &r, NULL),
                     REJECT_NONE);
    assert_int_equal(r.cents, INT64_C(100000000000));
    static const char *const bad[] = {"0", "0.00", "1000000000.01", "1.234", "-5", "1e3", "12,5", "", "abc", ".5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char row[128];
        snprintf(row, sizeof row, "2026-01-05T03:33:58,deposit,visa,\"%s\",1", bad[i]);
        assert_int_equal(reason_of(row), REJECT_AMOUNT);
    }
    assert_int_equal(reason_of("2026-01-05T03:33:58,deposit,visa,0,x"), REJECT_AMOUNT);
}

static void test_sleep_ms_is_an_integer_up_to_60000_or_empty(void **st)
{
    (void)st;
    int64_t sleep;
    assert_int_equal(check(H, "2026-01-05T03:33:58,deposit,visa,1,60000", 366, NULL, &sleep), REJECT_NONE);
    assert_int_equal(sleep, 60000);
    assert_int_equal(check(H, "2026-01-05T03:33:58,deposit,visa,1, 7 ", 366, NULL, &sleep), REJECT_NONE);
    assert_int_equal(sleep, 7);
    assert_int_equal(check(H, "2026-01-05T03:33:58,deposit,visa,1,", 366, NULL, &sleep), REJECT_NONE);
    assert_int_equal(sleep, 0);
    static const char *const bad[] = {"60001", "-1", "1.5", "abc", "+5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char row[128];
        snprintf(row, sizeof row, "2026-01-05T03:33:58,deposit,visa,1,%s", bad[i]);
        assert_int_equal(check(H, row, 366, NULL, &sleep), REJECT_SLEEP_MS);
        assert_int_equal(sleep, 0);
    }
}

static void test_sleep_ms_paces_even_a_row_rejected_for_another_reason(void **st)
{
    (void)st;
    int64_t sleep = -1;
    assert_int_equal(check(H, "2026-01-05T03:33:58,deposit,visa,0,25", 366, NULL, &sleep), REJECT_AMOUNT);
    assert_int_equal(sleep, 25);
    assert_int_equal(check(H, "2026-01-05T03:33:58,deposit,visa", 366, NULL, &sleep), REJECT_FIELD_COUNT);
    assert_int_equal(sleep, 0);
}

static void test_too_long_record_is_a_field_count_rejection(void **st)
{
    (void)st;
    header_map h = {.nfields = 5, .ts = 0, .type = 1, .method = 2, .amount = 3, .sleep_ms = 4};
    csv_record rec = {.nfields = 0, .line = 2, .raw = "", .too_long = 1};
    valid_row r;
    int64_t sleep;
    assert_int_equal(validate_row(&h, &rec, now_epoch(), 366, &r, &sleep), REJECT_FIELD_COUNT);
}

static void test_reason_names_are_the_dead_letter_vocabulary(void **st)
{
    (void)st;
    static const char *const names[] = {"field_count", "timestamp", "type", "payment_method", "amount", "sleep_ms"};
    for (int r = REJECT_FIELD_COUNT; r < REJECT_NREASONS; r++)
        assert_string_equal(validate_reason_name(r), names[r - REJECT_FIELD_COUNT]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_is_case_insensitive_trimmed_in_any_order_with_extras),
        cmocka_unit_test(test_header_missing_a_required_column_names_it),
        cmocka_unit_test(test_accepted_row_is_normalised),
        cmocka_unit_test(test_field_count_must_match_the_header),
        cmocka_unit_test(test_timestamp_rule_and_calendar),
        cmocka_unit_test(test_offsets_move_the_row_to_its_utc_day),
        cmocka_unit_test(test_future_limit_is_max_future_days_after_the_wall_clock),
        cmocka_unit_test(test_type_is_deposit_or_withdrawal_in_any_case),
        cmocka_unit_test(test_payment_method_after_lowercasing),
        cmocka_unit_test(test_amount_is_exact_cents_within_bounds),
        cmocka_unit_test(test_sleep_ms_is_an_integer_up_to_60000_or_empty),
        cmocka_unit_test(test_sleep_ms_paces_even_a_row_rejected_for_another_reason),
        cmocka_unit_test(test_too_long_record_is_a_field_count_rejection),
        cmocka_unit_test(test_reason_names_are_the_dead_letter_vocabulary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
