/*
 * freshness — how current the numbers /stats serves are, for GET /freshness
 * and the dashboard: three cheap Redis reads, no MongoDB.
 *
 *   newest_event      system:virtual_clock, the greatest event time the
 *                     aggregators applied (never decreases)
 *   newest_day        its day: the newest day that can have data
 *   archived_through  system:archived_through, the newest day moved to MongoDB
 *   backlog           entries the aggregators have not applied yet (group lag +
 *                     pending, common/stream: a stale lag cannot inflate it)
 * Each is null when Redis holds nothing yet.  With partitions: the greatest
 * clock and archived-through day over the partitions, the sum of the
 * backlogs of their streams.  max_range_days echoes
 * MAX_RANGE_DAYS so the dashboard can ask for "all".
 */
#ifndef TXAGG_API_FRESHNESS_H
#define TXAGG_API_FRESHNESS_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"
#include "tier.h"
#include "timeparse.h"

typedef struct freshness {
    char newest_event[TS_ISO_LEN + 1];  /* "" when unset */
    char archived_through[TS_DAY_LEN + 1]; /* "" when unset */
    int has_backlog;                     /* the stream and its group exist */
    int64_t backlog;
} freshness;

enum { FRESH_OK = 0, FRESH_UNAVAILABLE = -1, FRESH_CORRUPT = -2 };

/* FRESH_OK, or a status with the reason in err. */
int freshness_read(rconn *rc, freshness *out, char *err, size_t errlen);

/* The same over the partitions of t: untagged, freshness_read on its one
 * connection; tagged, the greatest clock and archived-through day over the
 * partitions and the sum of their backlogs (a partition that cannot be read
 * is FRESH_UNAVAILABLE naming it). */
int freshness_read_tier(tier *t, freshness *out, char *err, size_t errlen);

/* The JSON body into buf; its length, or 0 when it does not fit. */
size_t freshness_json(const freshness *f, int max_range_days, char *buf, size_t n);

#endif
