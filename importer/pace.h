/*
 * pace — the replay schedule of sleep_ms, on an absolute time line.
 *
 * Row i is due at start + the sum of the delays of rows 0..i-1 (delay =
 * config_pace_us(cfg, sleep_ms)), so waiting and publishing time never add up
 * to drift: a row that falls behind is due at once, and rows due at the same
 * moment go out together.  Pure (the clock is an argument).
 */
#ifndef TXAGG_PACE_H
#define TXAGG_PACE_H

#include <stdint.h>

typedef struct pace {
    int started;
    int64_t start_us;  /* monotonic time of the first row */
    int64_t offset_us; /* sum of the delays so far */
} pace;

void pace_init(pace *p);
/* The due time of the next row; the first call starts the schedule at now_us. */
int64_t pace_due_us(pace *p, int64_t now_us);
/* The row just taken asks for delay_us before the next one. */
void pace_after_row(pace *p, int64_t delay_us);

#endif
