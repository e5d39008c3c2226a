/* The aggregator's summary line: logged when one of its figures changed
 * (at most every period), and only once a minute while nothing changes —
 * an idle aggregator does not repeat the same line every few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../aggregator/stats.h"
#include "log.h"

#define EVERY 5000
#define IDLE 60000

static void test_summary_is_logged_on_change_and_once_a_minute_when_idle(void **s)
{
    (void)s;
    log_set_level(LOG_LVL_ERROR); /* the lines themselves are not under test */
    agg_stats st;
    agg_stats_init(&st);
    assert_int_equal(agg_stats_maybe_log(&st, 0, EVERY, IDLE), 0); /* first call: figures recorded */

    int lines = 0;
    for (int64_t t = EVERY; t < IDLE; t += EVERY) lines += agg_stats_maybe_log(&st, t, EVERY, IDLE);
    assert_int_equal(lines, 0);                                     /* idle: nothing for a minute */
    assert_int_equal(agg_stats_maybe_log(&st, IDLE, EVERY, IDLE), 1); /* then one line */
    assert_int_equal(agg_stats_maybe_log(&st, IDLE + EVERY, EVERY, IDLE), 0);

    metrics_add(st.entries_applied, 1000); /* work: the next period logs */
    assert_int_equal(agg_stats_maybe_log(&st, IDLE + 2 * EVERY, EVERY, IDLE), 1);
    metrics_add(st.entries_applied, 10); /* ... but not before a period has passed */
    assert_int_equal(agg_stats_maybe_log(&st, IDLE + 2 * EVERY + 100, EVERY, IDLE), 0);
    assert_int_equal(agg_stats_maybe_log(&st, IDLE + 3 * EVERY, EVERY, IDLE), 1);

    metrics_set(st.lag, 7); /* a gauge moving is a change too */
    assert_int_equal(agg_stats_maybe_log(&st, IDLE + 4 * EVERY, EVERY, IDLE), 1);
    metrics_set(st.clock, 1767225600);
    assert_int_equal(agg_stats_maybe_log(&st, IDLE + 5 * EVERY, EVERY, IDLE), 1);
    lines = 0;
    for (int64_t t = IDLE + 6 * EVERY; t < 2 * IDLE + 5 * EVERY; t += EVERY) lines += agg_stats_maybe_log(&st, t, EVERY, IDLE);
    assert_int_equal(lines, 0);
    assert_int_equal(agg_stats_maybe_log(&st, 2 * IDLE + 5 * EVERY, EVERY, IDLE), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_is_logged_on_change_and_once_a_minute_when_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
