/*
 * pace — absolute replay schedule; see pace.h.
 *
 * Invariant: due times never decrease, and the due time of row i depends only
 * on the start and the delays of earlier rows, never on when rows were
 * actually published.
 */
#include "pace.h"

void pace_init(pace *p)
{
    p->started = 0;
    p->start_us = 0;
    p->offset_us = 0;
}

int64_t pace_due_us(pace *p, int64_t now_us)
{
    if (!p->started) {
        p->started = 1;
        p->start_us = now_us;
    }
    return p->start_us + p->offset_us;
}

void pace_after_row(pace *p, int64_t delay_us)
{
    if (delay_us > 0) p->offset_us += delay_us;
}
