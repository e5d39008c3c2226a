/*
 * stats — the aggregator's counters and gauges (Prometheus, via the worker
 * listener's /metrics), the gauges' refresh from Redis, and the INFO summary
 * line: every few seconds while its figures change, once a minute at most
 * while they do not (an idle aggregator does not repeat the same line).
 * Counters are process-wide (metrics.h): every consumer object in a process
 * adds to the same ones.
 */
#ifndef TXAGG_STATS_H
#define TXAGG_STATS_H

#include <stdint.h>

#include "metrics.h"
#include "redis.h"
#include "tier.h"

#define SUMMARY_NFIGURES 8

typedef struct agg_stats {
    metric *entries_applied; /* entries acknowledged by an applied batch (valid + malformed + gone) */
    metric *rows_counted;    /* valid entries whose cents were added */
    metric *batches;         /* batches applied */
    metric *claims;          /* entries claimed from other (idle) consumers */
    metric *stale_batches;   /* batches refused by the ownership check */
    metric *trims;           /* XTRIM calls that removed entries */
    metric *entries_trimmed;
    metric *rejected; /* malformed entries dead-lettered */
    metric *refused;  /* valid entries dead-lettered because their counter refused them */
    metric *gone;     /* pending entries found deleted or trimmed, acknowledged */
    metric *reaped;   /* idle consumers deleted */
    metric *lag;      /* entries not yet delivered to the group (common/stream.h) */
    metric *pending;  /* entries delivered but not acknowledged (whole group) */
    metric *clock;    /* system:virtual_clock, epoch seconds (0 when unset) */
    metric *dead_letters; /* entries ever added to transactions:rejected (mirrored from Redis) */

    /* the summary line: when it was last logged and its figures then
     * (applied, stale, claimed, lag, pending, clock, rejected, trimmed) */
    int64_t last_log_ms;
    uint64_t last[SUMMARY_NFIGURES];
} agg_stats;

/* Register the metrics (idempotent). */
void agg_stats_init(agg_stats *st);

/* Refresh lag, pending, clock and the dead letters added (stream_group_backlog,
 * GET clock, stream_entries_added) over every partition of the tier: lag,
 * pending and dead letters summed, the clock the greatest (each partition's
 * clock is the greatest ts applied in it).  A partition that cannot be read
 * leaves the gauges as they were.  0, or -1 on an I/O error. */
int agg_stats_refresh(agg_stats *st, tier *t, const char *group);

/* Log the INFO summary line when at least every_ms passed since the last
 * and one of its figures changed, or idle_every_ms passed and none did.  The
 * first call only records the figures.  1 when it logged. */
int agg_stats_maybe_log(agg_stats *st, int64_t now_ms, int64_t every_ms, int64_t idle_every_ms);

#endif
