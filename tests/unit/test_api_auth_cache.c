/* The bearer-token check, and the version-keyed cold cache: it hits only on
 * covered ranges of its own version, returns exactly what was stored, and
 * stays within its memory bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../api/auth.h"
#include "../../api/cold_cache.h"
#include "../../api/records.h"

static void test_token_compare_is_exact(void **st)
{
    (void)st;
    assert_true(auth_equal_ct("s3cret", 6, "s3cret", 6));
    assert_false(auth_equal_ct("s3cret", 6, "s3creT", 6));
    assert_false(auth_equal_ct("s3cret", 6, "s3cre", 5));
    assert_false(auth_equal_ct("s3cret", 6, "s3cret!", 7));
    assert_false(auth_equal_ct("s3cret", 6, "", 0));
}

static void test_bearer_header_is_required_when_a_token_is_set(void **st)
{
    (void)st;
    const char *tok = "abc.DEF-123";
    size_t n = strlen(tok);
    assert_true(auth_bearer_ok("", 0, NULL)); /* open API */
    assert_true(auth_bearer_ok("", 0, "Bearer whatever"));
    assert_true(auth_bearer_ok(tok, n, "Bearer abc.DEF-123"));
    assert_true(auth_bearer_ok(tok, n, "bearer   abc.DEF-123  ")); /* scheme case-insensitive, spaces */
    assert_false(auth_bearer_ok(tok, n, NULL));
    assert_false(auth_bearer_ok(tok, n, ""));
    assert_false(auth_bearer_ok(tok, n, "abc.DEF-123"));
    assert_false(auth_bearer_ok(tok, n, "Basic abc.DEF-123"));
    assert_false(auth_bearer_ok(tok, n, "Bearerabc.DEF-123"));
    assert_false(auth_bearer_ok(tok, n, "Bearer abc.def-123"));
    assert_false(auth_bearer_ok(tok, n, "Bearer abc.DEF-1234"));
}

/* A view of docs for days d0, d0+step, ...: each with one record of cents = day * 10 + k and batch "b<day>". */
static void make_view(cold_view *v, int32_t d0, int n, int step)
{
    cold_view_reset(v);
    for (int i = 0; i < n; i++) {
        int32_t d = d0 + i * step;
        assert_int_equal(cold_view_push_doc(v, d), 0);
        for (int k = 0; k < 2; k++) {
            rec *r = rec_push(&v->items);
            assert_non_null(r);
            r->day = d;
            r->type = (uint8_t)k;
            snprintf(r->method, sizeof r->method, "m%d", k);
            r->mlen = (uint8_t)strlen(r->method);
            r->cents = (int64_t)d * 10 + k;
            v->docs[v->ndocs - 1].nitems++;
        }
        char b[32];
        snprintf(b, sizeof b, "b%d", d);
        assert_int_equal(cold_view_push_batch(v, b, strlen(b)), 0);
    }
}

static void test_cache_hits_only_covered_ranges_of_its_version_and_connection_count(void **st)
{
    (void)st;
    cold_cache *c = cold_cache_new(1 << 20);
    cold_view in = {0}, out = {0};
    make_view(&in, 100, 5, 2); /* docs on days 100,102,...,108; days between have none */
    assert_false(cold_cache_lookup(c, 1, 7, 100, 110, &out));
    cold_cache_store(c, 1, 7, 100, 110, &in);
    assert_int_equal(cold_cache_docs(c), 5);

    assert_true(cold_cache_lookup(c, 1, 7, 101, 105, &out)); /* inside the covered range */
    assert_int_equal(out.ndocs, 2);                         /* 102 and 104 */
    assert_int_equal(out.docs[0].day, 102);
    assert_int_equal(out.docs[1].day, 104);
    assert_int_equal(out.items.n, 4);
    assert_int_equal(out.items.v[out.docs[1].item_off + 1].cents, 1041);
    assert_true(cold_doc_has_batch(&out, &out.docs[1], "b104", 4));
    assert_false(cold_doc_has_batch(&out, &out.docs[1], "b102", 4));
    assert_null(cold_view_find(&out, 103)); /* known to have no document */

    cold_view_reset(&out);
    assert_false(cold_cache_lookup(c, 1, 7, 99, 105, &out)); /* not covered */
    assert_false(cold_cache_lookup(c, 1, 8, 101, 105, &out)); /* another version */
    assert_false(cold_cache_lookup(c, 2, 7, 101, 105, &out)); /* the same version in another Redis history */
    assert_int_equal(out.ndocs, 0);

    /* A store at a new version drops the old one. */
    make_view(&in, 200, 1, 1);
    cold_cache_store(c, 1, 8, 200, 200, &in);
    assert_false(cold_cache_lookup(c, 1, 7, 101, 105, &out));
    assert_int_equal(cold_cache_docs(c), 1);
    cold_view_free(&in);
    cold_view_free(&out);
    cold_cache_free(c);
}

static void test_cache_merges_adjacent_ranges_and_replaces_reread_days(void **st)
{
    (void)st;
    cold_cache *c = cold_cache_new(1 << 20);
    cold_view in = {0}, out = {0};
    make_view(&in, 10, 3, 1); /* 10..12 */
    cold_cache_store(c, 1, 1, 10, 12, &in);
    make_view(&in, 13, 3, 1); /* 13..15 */
    cold_cache_store(c, 1, 1, 13, 15, &in);
    assert_true(cold_cache_lookup(c, 1, 1, 11, 14, &out));
    assert_int_equal(out.ndocs, 4);
    /* Re-reading 12..13 with other content replaces those days, keeps the rest. */
    cold_view_reset(&out);
    make_view(&in, 12, 1, 1);
    in.items.v[0].cents = 5;
    cold_cache_store(c, 1, 1, 12, 13, &in); /* day 13 has no doc any more */
    assert_true(cold_cache_lookup(c, 1, 1, 10, 15, &out));
    assert_int_equal(out.ndocs, 5);
    const cold_doc *d12 = cold_view_find(&out, 12);
    assert_non_null(d12);
    assert_int_equal(out.items.v[d12->item_off].cents, 5);
    assert_null(cold_view_find(&out, 13));
    assert_non_null(cold_view_find(&out, 14));
    cold_view_free(&in);
    cold_view_free(&out);
    cold_cache_free(c);
}

static void test_cache_stays_within_its_memory_bound(void **st)
{
    (void)st;
    size_t bound = 64 * 1024;
    cold_cache *c = cold_cache_new(bound);
    cold_view in = {0}, out = {0};
    for (int i = 0; i < 200; i++) {
        make_view(&in, i * 10, 10, 1);
        cold_cache_store(c, 1, 3, i * 10, i * 10 + 9, &in);
        assert_true(cold_cache_bytes(c) <= bound);
        /* what was just stored is always there */
        cold_view_reset(&out);
        assert_true(cold_cache_lookup(c, 1, 3, i * 10, i * 10 + 9, &out));
        assert_int_equal(out.ndocs, 10);
    }
    /* a view larger than the bound is not stored at all */
    make_view(&in, 5000, 2000, 1);
    cold_cache_store(c, 1, 3, 5000, 6999, &in);
    assert_false(cold_cache_lookup(c, 1, 3, 5000, 5001, &out));
    cold_view_free(&in);
    cold_view_free(&out);
    cold_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_compare_is_exact),
        cmocka_unit_test(test_bearer_header_is_required_when_a_token_is_set),
        cmocka_unit_test(test_cache_hits_only_covered_ranges_of_its_version_and_connection_count),
        cmocka_unit_test(test_cache_merges_adjacent_ranges_and_replaces_reread_days),
        cmocka_unit_test(test_cache_stays_within_its_memory_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
