/* File identity is content-based (FNV-1a 64 of size, head and tail), the
 * same for a file and for standard input carrying it; the pacing schedule is
 * absolute, so publishing time never makes it drift. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../importer/fileid.h"
#include "../../importer/pace.h"

static void test_fnv1a_matches_the_published_test_vectors(void **st)
{
    (void)st;
    assert_int_equal(fileid_fnv1a(FILEID_FNV_OFFSET, "", 0), UINT64_C(0xcbf29ce484222325));
    assert_int_equal(fileid_fnv1a(FILEID_FNV_OFFSET, "a", 1), UINT64_C(0xaf63dc4c8601ec8c));
    assert_int_equal(fileid_fnv1a(FILEID_FNV_OFFSET, "foobar", 6), UINT64_C(0x85944171f73967e8));
}

/* id of buf[0..n) written to a temporary file */
static void id_of_file(const unsigned char *buf, size_t n, char id[FILEID_HEX])
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fflush(f);
    char err[128];
    assert_int_equal(fileid_of_fd(fileno(f), n, id, err, sizeof err), 0);
    fclose(f);
}

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 7 + i / 251);
    return b;
}

static void test_small_content_has_the_same_id_from_a_file_or_a_stream(void **st)
{
    (void)st;
    size_t n = 5000;
    unsigned char *b = pattern(n);
    char a[FILEID_HEX], s[FILEID_HEX], partial[FILEID_HEX];
    id_of_file(b, n, a);
    fileid_of_prefix(b, n, 1, s);
    assert_string_equal(a, s);
    assert_int_equal(strlen(a), 16);
    fileid_of_prefix(b, n, 0, partial); /* a stream that did not end: another formula */
    assert_string_not_equal(a, partial);
    free(b);
}

static void test_head_tail_and_size_changes_change_the_id(void **st)
{
    (void)st;
    size_t n = 3 * FILEID_SPAN;
    unsigned char *b = pattern(n);
    char base[FILEID_HEX], other[FILEID_HEX];
    id_of_file(b, n, base);
    b[10] ^= 1;
    id_of_file(b, n, other);
    assert_string_not_equal(base, other);
    b[10] ^= 1;
    b[n - 10] ^= 1;
    id_of_file(b, n, other);
    assert_string_not_equal(base, other);
    b[n - 10] ^= 1;
    id_of_file(b, n - 1, other);
    assert_string_not_equal(base, other);
    /* The documented limit: a change in the unhashed middle keeps the id. */
    b[n / 2] ^= 1;
    id_of_file(b, n, other);
    assert_string_equal(base, other);
    free(b);
}

static void test_schedule_is_absolute_and_does_not_drift(void **st)
{
    (void)st;
    pace p;
    pace_init(&p);
    assert_int_equal(pace_due_us(&p, 1000), 1000); /* first row: due at start */
    pace_after_row(&p, 10000);
    /* however late the caller is, row 1 stays due at start + 10 ms */
    assert_int_equal(pace_due_us(&p, 50000), 11000);
    pace_after_row(&p, 0);
    assert_int_equal(pace_due_us(&p, 60000), 11000); /* due together with row 1 */
    pace_after_row(&p, 5000);
    assert_int_equal(pace_due_us(&p, 2000), 16000);
    pace_after_row(&p, -5); /* never backwards */
    assert_int_equal(pace_due_us(&p, 0), 16000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a_matches_the_published_test_vectors),
        cmocka_unit_test(test_small_content_has_the_same_id_from_a_file_or_a_stream),
        cmocka_unit_test(test_head_tail_and_size_changes_change_the_id),
        cmocka_unit_test(test_schedule_is_absolute_and_does_not_drift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
