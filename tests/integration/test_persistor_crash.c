/* A persistor "crashes" between each pair of archival steps (its connections
 * and state dropped, its lease left to lapse), a fresh persistor takes the
 * lease and runs a cycle: every amount the test seeded is counted exactly
 * once (hot + cold against the seeding ledger), nothing is left frozen or
 * pending, every eligible day is in MongoDB and each document lists exactly
 * one batch.  The steps are the library functions the service runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../persistor/archive_batch.h"
#include "../../persistor/archive_write.h"
#include "../../persistor/clean.h"
#include "../../persistor/cycle.h"
#include "../../persistor/freeze.h"
#include "../../persistor/lease.h"
#include "../../persistor/persistor.h"
#include "../../persistor/recover.h"
#include "archive_env.h"
#include "mongo.h"
#include "signals.h"
#include "testenv.h"

#define LEDGER "persistor_crash.ledger"
#define NDAYS 9 /* 9 days of data, RETENTION_DAYS 3: days 1-6 eligible */
#define ELIGIBLE (NDAYS - ARCHIVE_ENV_RETENTION)

static void seed(int s)
{
    archive_env_reset(LEDGER);
    assert_int_equal(archive_env_seed(LEDGER, s, "2026-01-01", NDAYS, 900), 0);
    archive_state st;
    archive_env_state(&st);
    assert_int_equal(st.eligible, ELIGIBLE); /* the seeding itself is what we think */
}

/* Freeze with a new holder; returns it with the batch loaded. */
static persistor *freeze_one(archive_batch *b)
{
    persistor *p = archive_env_holder();
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p, id, sizeof id), PST_OK);
    assert_int_equal(archive_batch_load(p, id, b), PST_OK);
    assert_int_equal(b->ndays, ELIGIBLE);
    assert_int_equal(archive_batch_id_fence(id), p->fence);
    return p;
}

/* The restart: a new holder (after the crashed one's lease lapsed) runs a
 * cycle; then everything must be exact and finished. */
static void restart_and_check(void)
{
    persistor *p = archive_env_holder();
    assert_int_equal(cycle_run(p), PST_OK);
    lease_release(p);
    persistor_close(p);

    assert_true(archive_env_exact(LEDGER));
    archive_state st;
    archive_env_state(&st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.frozen_keys, 0);
    assert_int_equal(st.batch_records, 0);
    assert_int_equal(st.eligible, 0);
    assert_int_equal(st.docs, ELIGIBLE);
    assert_int_equal(st.max_batches, 1); /* no day applied twice */
    assert_string_equal(st.archived_through, "2026-01-06");
    assert_int_equal(st.tracked, ARCHIVE_ENV_RETENTION);
}

static void test_crash_after_freeze_is_finished_by_the_next_holder(void **s)
{
    (void)s;
    seed(1);
    archive_batch b;
    persistor *p = freeze_one(&b);
    assert_true(archive_env_exact(LEDGER)); /* frozen amounts still count, once */
    persistor_close(p);                     /* crash: lease kept until it lapses */
    archive_batch_free(&b);
    restart_and_check();
}

static void test_crash_after_each_day_written_is_finished_without_double_counting(void **s)
{
    (void)s;
    for (int k = 1; k < ELIGIBLE; k++) {
        seed(10 + k);
        archive_batch b;
        persistor *p = freeze_one(&b);
        for (int i = 0; i < k; i++) assert_int_equal(archive_write_day(p, b.id, b.days[i]), PST_OK);
        assert_true(archive_env_exact(LEDGER)); /* mid-batch: MongoDB days count, their frozen hashes not */
        persistor_close(p);
        archive_batch_free(&b);
        restart_and_check();
    }
}

static void test_crash_after_all_days_written_before_marking_is_finished(void **s)
{
    (void)s;
    seed(20);
    archive_batch b;
    persistor *p = freeze_one(&b);
    assert_int_equal(archive_write_batch(p, &b, 0), PST_OK);
    persistor_close(p);
    archive_batch_free(&b);
    restart_and_check();
}

static void test_crash_after_marking_written_goes_straight_to_clean(void **s)
{
    (void)s;
    seed(21);
    archive_batch b;
    persistor *p = freeze_one(&b);
    assert_int_equal(archive_write_batch(p, &b, 0), PST_OK);
    assert_int_equal(clean_mark_written(p, b.id), PST_OK);
    persistor_close(p);
    archive_batch_free(&b);
    restart_and_check();
}

static void test_crash_after_clean_leaves_nothing_to_recover(void **s)
{
    (void)s;
    seed(22);
    archive_batch b;
    persistor *p = freeze_one(&b);
    assert_int_equal(archive_write_batch(p, &b, 0), PST_OK);
    assert_int_equal(clean_mark_written(p, b.id), PST_OK);
    assert_int_equal(clean_batch(p, &b), PST_OK);
    assert_int_equal(clean_batch(p, &b), PST_NONE); /* repeating the step is harmless */
    persistor_close(p);
    archive_batch_free(&b);
    restart_and_check();
}

static void test_crash_during_recovery_is_finished_by_a_third_holder(void **s)
{
    (void)s;
    seed(23);
    archive_batch b;
    persistor *p1 = freeze_one(&b);
    assert_int_equal(archive_write_day(p1, b.id, b.days[0]), PST_OK);
    persistor_close(p1);
    persistor *p2 = archive_env_holder(); /* recovers two more days, then crashes too */
    assert_int_equal(archive_write_day(p2, b.id, b.days[0]), PST_OK);
    assert_int_equal(archive_write_day(p2, b.id, b.days[1]), PST_OK);
    assert_int_equal(archive_write_day(p2, b.id, b.days[2]), PST_OK);
    persistor_close(p2);
    archive_batch_free(&b);
    restart_and_check();
}

static void test_stale_holder_after_takeover_is_refused_by_every_step(void **s)
{
    (void)s;
    seed(24);
    archive_batch b;
    persistor *p1 = freeze_one(&b);
    assert_int_equal(archive_write_day(p1, b.id, b.days[0]), PST_OK);
    /* p1 stalls past its lease; p2 takes over and finishes the batch. */
    persistor *p2 = archive_env_holder();
    assert_true(p2->fence > p1->fence);
    assert_int_equal(cycle_run(p2), PST_OK);
    /* p1 resumes where it stopped: every step refuses, nothing changes. */
    p1->lease_sent_ms = sig_now_ms(); /* even if it believed its lease were fresh */
    assert_int_equal(archive_write_day(p1, b.id, b.days[1]), PST_ELEASE);
    assert_int_equal(p1->fence, 0);
    p1->fence = b.fence;
    p1->lease_sent_ms = sig_now_ms();
    assert_int_equal(clean_mark_written(p1, b.id), PST_ELEASE);
    p1->fence = b.fence;
    assert_int_equal(clean_batch(p1, &b), PST_ELEASE);
    p1->fence = b.fence;
    char id[PST_ID_MAX];
    assert_int_equal(freeze_batch(p1, id, sizeof id), PST_ELEASE);
    p1->fence = b.fence;
    assert_int_equal(lease_release(p1), PST_NONE); /* cannot delete p2's lease either */
    assert_int_equal(lease_renew(p2), PST_OK);
    persistor_close(p1);
    archive_batch_free(&b);
    lease_release(p2);
    persistor_close(p2);
    restart_and_check();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_after_freeze_is_finished_by_the_next_holder),
        cmocka_unit_test(test_crash_after_each_day_written_is_finished_without_double_counting),
        cmocka_unit_test(test_crash_after_all_days_written_before_marking_is_finished),
        cmocka_unit_test(test_crash_after_marking_written_goes_straight_to_clean),
        cmocka_unit_test(test_crash_after_clean_leaves_nothing_to_recover),
        cmocka_unit_test(test_crash_during_recovery_is_finished_by_a_third_holder),
        cmocka_unit_test(test_stale_holder_after_takeover_is_refused_by_every_step),
    };
    return testenv_run(tests, NULL, NULL);
}
