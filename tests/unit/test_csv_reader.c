/* The CSV reader: records, their first line and raw text, through every
 * chunk boundary (BOM, CRLF, quoting, blank lines, trimming, size cap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../importer/csv_reader.h"

#define MAXREC 64

/* Every record as "L<line>:f1|f2|..." (or "L<line>:TOO_LONG") and its raw text. */
typedef struct parsed {
    int n;
    char *rec[MAXREC];
    char *raw[MAXREC];
    uint64_t offset;
} parsed;

static char *show(const csv_record *r)
{
    size_t cap = 64;
    for (int i = 0; i < r->nfields; i++) cap += r->len[i] + 1;
    char *s = malloc(cap);
    int o = snprintf(s, cap, "L%lld:", (long long)r->line);
    if (r->too_long) {
        snprintf(s + o, cap - (size_t)o, "TOO_LONG");
        return s;
    }
    for (int i = 0; i < r->nfields; i++) {
        if (i) s[o++] = '|';
        memcpy(s + o, r->field[i], r->len[i]);
        assert_int_equal(r->field[i][r->len[i]], '\0');
        o += (int)r->len[i];
    }
    s[o] = '\0';
    return s;
}

static void drain(csv_reader *rd, parsed *p)
{
    csv_record r;
    int got;
    memset(p, 0, sizeof *p);
    while ((got = csv_reader_next(rd, &r)) == 1) {
        assert_true(p->n < MAXREC);
        p->rec[p->n] = show(&r);
        p->raw[p->n] = strndup(r.raw, r.raw_len);
        p->n++;
    }
    assert_int_equal(got, 0);
    assert_int_equal(csv_reader_next(rd, &r), 0); /* stays at the end */
    p->offset = csv_reader_offset(rd);
}

static void parse_mem(const char *text, size_t len, size_t chunk, parsed *p)
{
    csv_reader *rd = csv_reader_new(-1, text, len, chunk);
    assert_non_null(rd);
    drain(rd, p);
    csv_reader_free(rd);
}

static void free_parsed(parsed *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->rec[i]);
        free(p->raw[i]);
    }
}

static const size_t chunks[] = {1, 2, 3, 5, 7, 64, 0};

/* Parse text with every chunk size; all must give want[] (and raws when given). */
static void expect(const char *text, size_t len, const char *const *want, int nwant, const char *const *raws)
{
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        parsed p;
        parse_mem(text, len, chunks[c], &p);
        if (p.n != nwant) {
            for (int i = 0; i < p.n; i++) fprintf(stderr, "# got %s\n", p.rec[i]);
            fail_msg("chunk %zu: %d records, want %d", chunks[c], p.n, nwant);
        }
        for (int i = 0; i < nwant; i++) {
            assert_string_equal(p.rec[i], want[i]);
            if (raws) assert_string_equal(p.raw[i], raws[i]);
        }
        assert_int_equal(p.offset, len);
        free_parsed(&p);
    }
}

#define EXPECT(text, ...)                                                                      \
    do {                                                                                       \
        static const char *const w_[] = {__VA_ARGS__};                                          \
        expect(text, sizeof(text) - 1, w_, (int)(sizeof w_ / sizeof w_[0]), NULL);             \
    } while (0)

static void test_lf_records_carry_their_line_numbers(void **st)
{
    (void)st;
    EXPECT("timestamp,type\n2026-01-05,deposit\n2026-01-06,withdrawal\n", "L1:timestamp|type",
           "L2:2026-01-05|deposit", "L3:2026-01-06|withdrawal");
}

static void test_crlf_line_ends_are_not_part_of_fields_or_raw(void **st)
{
    (void)st;
    static const char text[] = "a,b\r\n1,2\r\n\"q\",x \r\n";
    static const char *const want[] = {"L1:a|b", "L2:1|2", "L3:q|x"};
    static const char *const raws[] = {"a,b", "1,2", "\"q\",x "};
    expect(text, sizeof text - 1, want, 3, raws);
}

static void test_utf8_bom_is_dropped_only_at_the_start(void **st)
{
    (void)st;
    EXPECT("\xEF\xBB\xBFtimestamp,type\n\xEF\xBB\xBFx,y\n", "L1:timestamp|type", "L2:\xEF\xBB\xBFx|y");
    EXPECT("\xEF\xBBz,b\n", "L1:\xEF\xBBz|b"); /* half a BOM is data */
    EXPECT("\xEF\xBB", "L1:\xEF\xBB");
    parsed p;
    parse_mem("\xEF\xBB\xBF", 3, 1, &p);
    assert_int_equal(p.n, 0);
}

static void test_quoted_fields_keep_commas_quotes_and_newlines(void **st)
{
    (void)st;
    static const char text[] = "\"x,y\",\"he said \"\"hi\"\"\",\"multi\nline\"\nnext,2,3\n";
    static const char *const want[] = {"L1:x,y|he said \"hi\"|multi\nline", "L3:next|2|3"};
    static const char *const raws[] = {"\"x,y\",\"he said \"\"hi\"\"\",\"multi\nline\"", "next,2,3"};
    expect(text, sizeof text - 1, want, 2, raws);
}

static void test_quoted_field_spanning_crlf_lines_keeps_its_line_break(void **st)
{
    (void)st;
    EXPECT("a,\"one\r\ntwo\"\r\nb,c\r\n", "L1:a|one\r\ntwo", "L3:b|c");
}

static void test_blank_and_whitespace_only_lines_are_skipped(void **st)
{
    (void)st;
    static const char text[] = "\n  \n\t\r\na,b\n\n1,2\n   \n\r\n";
    static const char *const want[] = {"L4:a|b", "L6:1|2"};
    static const char *const raws[] = {"a,b", "1,2"};
    expect(text, sizeof text - 1, want, 2, raws);
    EXPECT("\"\n\n\",x\n", "L1:\n\n|x"); /* blank lines inside quotes are data */
}

static void test_every_field_is_trimmed_of_spaces_and_tabs_quoted_ones_too(void **st)
{
    (void)st;
    static const char text[] = "  a , b\t,\t\" c \" ,\"\td\t\"\t\n";
    static const char *const want[] = {"L1:a|b|c|d"};
    static const char *const raws[] = {"  a , b\t,\t\" c \" ,\"\td\t\"\t"};
    expect(text, sizeof text - 1, want, 1, raws);
}

static void test_empty_fields_and_quotes_inside_unquoted_fields(void **st)
{
    (void)st;
    EXPECT("a,,\"\"\n,\n", "L1:a||", "L2:|");
    EXPECT("ab\"c,d\n", "L1:ab\"c|d"); /* non-strict: a stray quote is data */
}

static void test_last_line_without_newline_is_a_record(void **st)
{
    (void)st;
    EXPECT("a,b\n1,2", "L1:a|b", "L2:1|2");
    EXPECT("a,b\n1,2\r", "L1:a|b", "L2:1|2");
    EXPECT("a,b\n\"open,2\n3", "L1:a|b", "L2:open,2\n3"); /* quote never closed */
}

static void test_empty_input_has_no_records(void **st)
{
    (void)st;
    parsed p;
    parse_mem("", 0, 0, &p);
    assert_int_equal(p.n, 0);
    parse_mem("\n\n  \r\n", 5, 1, &p);
    assert_int_equal(p.n, 0);
}

static void test_record_over_the_cap_is_cut_and_parsing_resumes_next_line(void **st)
{
    (void)st;
    /* One over-long unquoted line, then a normal one. */
    size_t big = CSV_RECORD_MAX + 100;
    char *text = malloc(big + 64);
    memset(text, 'x', big);
    size_t n = big;
    n += (size_t)sprintf(text + n, ",y\nnext,1\n");
    parsed p;
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        if (chunks[c] && chunks[c] < 5) continue; /* slow with 64 KiB */
        parse_mem(text, n, chunks[c], &p);
        assert_int_equal(p.n, 2);
        assert_string_equal(p.rec[0], "L1:TOO_LONG");
        assert_int_equal(strlen(p.raw[0]), CSV_RECORD_MAX);
        assert_string_equal(p.rec[1], "L2:next|1");
        free_parsed(&p);
    }
    free(text);

    /* An unclosed quote swallows lines only up to the cap. */
    size_t lines = CSV_RECORD_MAX / 4 + 10;
    text = malloc(lines * 4 + 64);
    n = (size_t)sprintf(text, "h1,h2\n\"open");
    for (size_t i = 0; i < lines; i++) n += (size_t)sprintf(text + n, "a,b\n");
    parse_mem(text, n, 0, &p);
    assert_true(p.n > 2);
    assert_string_equal(p.rec[0], "L1:h1|h2");
    assert_string_equal(p.rec[1], "L2:TOO_LONG");
    /* The cut happens within the line that crossed the cap; the next line is a record. */
    int64_t cut_line = 2 + (int64_t)(CSV_RECORD_MAX - 5) / 4;
    char want[64];
    snprintf(want, sizeof want, "L%lld:a|b", (long long)(cut_line + 1));
    assert_string_equal(p.rec[2], want);
    free_parsed(&p);
    free(text);
}

static void test_reads_a_real_descriptor_in_small_chunks(void **st)
{
    (void)st;
    FILE *f = tmpfile();
    assert_non_null(f);
    static const char text[] = "\xEF\xBB\xBFh1,h2\r\n\r\n\"a\nb\",c\r\nd,e";
    assert_int_equal(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    fflush(f);
    rewind(f);
    csv_reader *rd = csv_reader_new(fileno(f), NULL, 0, 3);
    parsed p;
    drain(rd, &p);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.rec[0], "L1:h1|h2");
    assert_string_equal(p.rec[1], "L3:a\nb|c");
    assert_string_equal(p.raw[1], "\"a\nb\",c");
    assert_string_equal(p.rec[2], "L5:d|e");
    assert_int_equal(p.offset, sizeof text - 1);
    free_parsed(&p);
    csv_reader_free(rd);

    /* A prefix already read from the descriptor comes first. */
    rewind(f);
    char pre[5];
    assert_int_equal(read(fileno(f), pre, 5), 5);
    rd = csv_reader_new(fileno(f), pre, 5, 2);
    drain(rd, &p);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.rec[0], "L1:h1|h2");
    assert_string_equal(p.rec[2], "L5:d|e");
    free_parsed(&p);
    csv_reader_free(rd);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf_records_carry_their_line_numbers),
        cmocka_unit_test(test_crlf_line_ends_are_not_part_of_fields_or_raw),
        cmocka_unit_test(test_utf8_bom_is_dropped_only_at_the_start),
        cmocka_unit_test(test_quoted_fields_keep_commas_quotes_and_newlines),
        cmocka_unit_test(test_quoted_field_spanning_crlf_lines_keeps_its_line_break),
        cmocka_unit_test(test_blank_and_whitespace_only_lines_are_skipped),
        cmocka_unit_test(test_every_field_is_trimmed_of_spaces_and_tabs_quoted_ones_too),
        cmocka_unit_test(test_empty_fields_and_quotes_inside_unquoted_fields),
        cmocka_unit_test(test_last_line_without_newline_is_a_record),
        cmocka_unit_test(test_empty_input_has_no_records),
        cmocka_unit_test(test_record_over_the_cap_is_cut_and_parsing_resumes_next_line),
        cmocka_unit_test(test_reads_a_real_descriptor_in_small_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
