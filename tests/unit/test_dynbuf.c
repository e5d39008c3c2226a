/* The capped growable buffer: it grows, keeps its memory on reset, and
 * refuses — changing nothing — what would exceed its cap or overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dynbuf.h"

static void test_appends_grow_the_buffer_and_keep_it_terminated(void **st)
{
    (void)st;
    dynbuf b;
    dynbuf_init(&b, 1 << 20);
    assert_string_equal(dynbuf_ptr(&b), "");
    assert_int_equal(dynbuf_len(&b), 0);
    char expect[5001];
    for (int i = 0; i < 5000; i++) {
        char c = (char)('a' + i % 26);
        expect[i] = c;
        assert_int_equal(dynbuf_add(&b, &c, 1), DYNBUF_OK);
    }
    expect[5000] = '\0';
    assert_int_equal(dynbuf_len(&b), 5000);
    assert_string_equal(dynbuf_ptr(&b), expect);
    assert_true(b.cap >= 5001 && b.cap <= 2 * 5001);
    assert_int_equal(dynbuf_add(&b, "xyz", 3), DYNBUF_OK);
    assert_int_equal(dynbuf_printf(&b, "-%d-%s", 42, "end"), DYNBUF_OK);
    assert_int_equal(dynbuf_len(&b), 5000 + 3 + 7);
    assert_memory_equal(b.p + 5000, "xyz-42-end", 11);
    dynbuf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.max, 1 << 20);
}

static void test_printf_longer_than_the_room_left_is_appended_whole(void **st)
{
    (void)st;
    dynbuf b;
    dynbuf_init(&b, 1 << 20);
    assert_int_equal(dynbuf_add(&b, "head:", 5), DYNBUF_OK);
    char big[3000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(dynbuf_printf(&b, "%s|%s", big, big), DYNBUF_OK);
    assert_int_equal(dynbuf_len(&b), 5 + 2 * 2999 + 1);
    assert_memory_equal(b.p, "head:qq", 7);
    assert_int_equal(b.p[5 + 2999], '|');
    assert_int_equal(b.p[dynbuf_len(&b)], '\0');
    dynbuf_free(&b);
}

static void test_reset_empties_and_keeps_the_memory(void **st)
{
    (void)st;
    dynbuf b;
    dynbuf_init(&b, 1 << 16);
    assert_int_equal(dynbuf_printf(&b, "%0*d", 1000, 7), DYNBUF_OK);
    char *p = b.p;
    size_t cap = b.cap;
    dynbuf_reset(&b);
    assert_int_equal(dynbuf_len(&b), 0);
    assert_string_equal(dynbuf_ptr(&b), "");
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.cap, cap);
    assert_int_equal(dynbuf_add(&b, "again", 5), DYNBUF_OK);
    assert_ptr_equal(b.p, p);
    assert_string_equal(dynbuf_ptr(&b), "again");
    dynbuf_free(&b);
}

static void test_an_append_beyond_the_cap_is_refused_and_changes_nothing(void **st)
{
    (void)st;
    dynbuf b;
    dynbuf_init(&b, 100); /* 99 bytes and the NUL */
    char x[100];
    memset(x, 'x', sizeof x);
    assert_int_equal(dynbuf_add(&b, x, 90), DYNBUF_OK);
    assert_true(b.cap <= 100);
    assert_int_equal(dynbuf_add(&b, x, 10), DYNBUF_ETOOBIG);
    assert_int_equal(dynbuf_len(&b), 90);
    assert_int_equal(b.p[90], '\0');
    assert_int_equal(dynbuf_printf(&b, "%s", "0123456789"), DYNBUF_ETOOBIG);
    assert_int_equal(dynbuf_len(&b), 90);
    assert_int_equal(b.p[90], '\0');
    assert_int_equal(dynbuf_add(&b, x, 9), DYNBUF_OK); /* exactly up to the cap */
    assert_int_equal(dynbuf_len(&b), 99);
    assert_int_equal(b.cap, 100);
    assert_int_equal(dynbuf_add(&b, "", 0), DYNBUF_OK);
    assert_int_equal(dynbuf_add(&b, x, 1), DYNBUF_ETOOBIG);
    dynbuf_free(&b);
}

static void test_a_size_that_overflows_is_refused(void **st)
{
    (void)st;
    dynbuf b;
    dynbuf_init(&b, SIZE_MAX);
    assert_int_equal(dynbuf_add(&b, "abc", 3), DYNBUF_OK);
    assert_int_equal(dynbuf_reserve(&b, SIZE_MAX - 1), DYNBUF_ETOOBIG);
    assert_int_equal(dynbuf_reserve(&b, SIZE_MAX), DYNBUF_ETOOBIG);
    assert_string_equal(dynbuf_ptr(&b), "abc");
    dynbuf_free(&b);
}

typedef struct wide {
    char bytes[48];
} wide;

static void test_arrays_grow_by_doubling_within_the_cap(void **st)
{
    (void)st;
    wide *v = NULL;
    size_t cap = 0;
    assert_int_equal(dynbuf_reserve_array(&v, &cap, 1, sizeof *v, 100 * sizeof *v), DYNBUF_OK);
    assert_non_null(v);
    assert_int_equal(cap, 16);
    memset(&v[15], 7, sizeof v[15]);
    wide *before = v;
    assert_int_equal(dynbuf_reserve_array(&v, &cap, 16, sizeof *v, 100 * sizeof *v), DYNBUF_OK);
    assert_ptr_equal(v, before); /* enough room: nothing done */
    assert_int_equal(dynbuf_reserve_array(&v, &cap, 17, sizeof *v, 100 * sizeof *v), DYNBUF_OK);
    assert_int_equal(cap, 32);
    assert_int_equal(v[15].bytes[47], 7);
    assert_int_equal(dynbuf_reserve_array(&v, &cap, 65, sizeof *v, 100 * sizeof *v), DYNBUF_OK);
    assert_int_equal(cap, 100); /* doubling to 128 would pass the cap */
    assert_int_equal(v[15].bytes[0], 7);
    free(v);
}

static void test_arrays_refuse_an_overflowing_or_capped_count_and_stay_intact(void **st)
{
    (void)st;
    size_t *v = NULL;
    size_t cap = 0;
    assert_int_equal(dynbuf_reserve_array(&v, &cap, 10, sizeof *v, 1000), DYNBUF_OK);
    v[9] = 99;
    size_t *before = v;
    size_t cap_before = cap;
    /* n * elem wraps around to a small number: refused, not allocated small */
    size_t wrap = SIZE_MAX / sizeof *v + 2;
    assert_int_equal(dynbuf_reserve_array(&v, &cap, wrap, sizeof *v, SIZE_MAX), DYNBUF_ETOOBIG);
    assert_int_equal(dynbuf_reserve_array(&v, &cap, 126, sizeof *v, 1000), DYNBUF_ETOOBIG);
    assert_ptr_equal(v, before);
    assert_int_equal(cap, cap_before);
    assert_int_equal(v[9], 99);
    assert_int_equal(dynbuf_reserve_array(&v, &cap, 125, sizeof *v, 1000), DYNBUF_OK);
    assert_int_equal(cap, 125);
    assert_int_equal(v[9], 99);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_grow_the_buffer_and_keep_it_terminated),
        cmocka_unit_test(test_printf_longer_than_the_room_left_is_appended_whole),
        cmocka_unit_test(test_reset_empties_and_keeps_the_memory),
        cmocka_unit_test(test_an_append_beyond_the_cap_is_refused_and_changes_nothing),
        cmocka_unit_test(test_a_size_that_overflows_is_refused),
        cmocka_unit_test(test_arrays_grow_by_doubling_within_the_cap),
        cmocka_unit_test(test_arrays_refuse_an_overflowing_or_capped_count_and_stay_intact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
