/*
 * backpressure — keep the consumer group's backlog (lag + pending of group
 * `aggregators`) at most MAX_BACKLOG + one batch, so Redis memory stays
 * bounded when aggregators are slow or down.
 *
 * Partitioned (backpressure_new_tier): the backlog is the sum of every
 * partition stream's group backlog, and the group is created on every
 * partition's stream; one untagged partition is exactly the above.
 */
#ifndef TXAGG_BACKPRESSURE_H
#define TXAGG_BACKPRESSURE_H

#include <stdatomic.h>
#include <stdint.h>

#include "redis.h"
#include "tier.h"

typedef struct backpressure backpressure;

/* up: set to 1/0 as Redis answers or not (the /ready state). */
backpressure *backpressure_new(rconn *rc, int64_t max_backlog, atomic_int *up);
/* Over every partition of t (t outlives it). */
backpressure *backpressure_new_tier(tier *t, int64_t max_backlog, atomic_int *up);
void backpressure_free(backpressure *bp);

/* XGROUP CREATE transactions aggregators 0 MKSTREAM (an existing group is
 * fine), so the backlog is measurable before any aggregator starts.  Waits
 * for Redis; 0, or -1 when a stop was requested or Redis refused (logged). */
int backpressure_ensure_group(backpressure *bp);

/*
 * Before publishing a batch of n accepted rows: returns 0 when the backlog
 * allows it (waiting, with interruptible sleeps, while it exceeds
 * MAX_BACKLOG), -1 when a stop was requested meanwhile.  Redis is asked only
 * when the rows published since the last answer may have used up the room it
 * left, so a fast import costs one XINFO per MAX_BACKLOG rows, not per batch.
 */
int backpressure_reserve(backpressure *bp, int64_t n);

/* The backlog now: lag + pending of the group, or XLEN when lag is unknown
 * (nil), 0 when the stream does not exist.  0, or -1 on an I/O error. */
int backpressure_backlog(rconn *rc, int64_t *backlog);
/* The same for another stream on rc's server. */
int backpressure_backlog_of(rconn *rc, const char *stream, int64_t *backlog);

#endif
