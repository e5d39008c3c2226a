/*
 * stats — one /stats answer: every tier of every day in the range merged,
 * exact at every instant, also while the persistor moves days to MongoDB.
 *
 * The algorithm (DESIGN.md "HTTP API"; docs/ARCHITECTURE.md "Consistent
 * reads"), per request:
 *   a. one atomic read (snapshot.c: a MULTI/EXEC guided by a layout hint,
 *      or snapshot.lua) of the archive version V, the archived-through day
 *      T, the hot hashes of the tracked days in range and, for each pending
 *      archive batch B, the frozen hashes of its days in range;
 *   b. only for the days of the range <= T (if any): the MongoDB documents,
 *      from the cold cache at version V or from MongoDB;
 *   c. after a MongoDB read, GET the version again: if it moved, start over
 *      from (a) — at most max_attempts times, then give up (503);
 *   d. per day: hot + document + the frozen hashes of B only where the
 *      day's document does not list B (a day > T has no document worth
 *      reading: its frozen hashes count).
 * A freeze and a clean-up each bump V, so hot data that moved into MongoDB
 * during (b) can never be counted twice, and within one V the document's
 * batch list decides, per day, between the frozen copy and MongoDB.
 *
 * Amounts are int64 cents summed with overflow checks and printed with
 * money_format: no double anywhere.  The JSON body is printed directly into
 * the worker's buffer: {"data": {day: {"deposits": {method: amount},
 * "withdrawals": {...}}}}, days ascending, methods sorted bytewise, both
 * sides present on each day, days without data left out.
 */
#ifndef TXAGG_API_STATS_H
#define TXAGG_API_STATS_H

#include <mongoc/mongoc.h>
#include <stddef.h>
#include <stdint.h>

#include "cold_cache.h"
#include "records.h"
#include "redis.h"
#include "snapshot.h"

typedef struct stats_env {
    mongoc_client_pool_t *pool;
    const char *database;
    const char *collection;
    cold_cache *cache; /* NULL: every cold read goes to MongoDB */
    int max_attempts;  /* snapshot + read rounds before 503 */
} stats_env;

/* Per worker thread, reused from request to request. */
typedef struct stats_scratch {
    rscript lua;     /* snapshot.lua, loaded on this thread's connection */
    snap_hint *hint; /* layout hint of the fast snapshot path */
    rec_vec recs;
    cold_view cold;
    frozen_vec frozen;
    char *body; /* the JSON of the last STATS_OK answer */
    size_t blen, bcap;
} stats_scratch;

enum stats_status {
    STATS_OK = 0,
    STATS_UNAVAILABLE = -1, /* Redis or MongoDB unreachable / failing: 503 */
    STATS_BUSY = -2,        /* the archive moved during every attempt: 503 */
    STATS_INTERNAL = -3,    /* corrupt stored data, overflow, out of memory: 500 */
};

/* Register the metrics (once per process). */
void stats_init(void);

/* 0, or -1 when out of memory. */
int stats_scratch_init(stats_scratch *s);
void stats_scratch_free(stats_scratch *s);
/* Give back memory a huge request left behind. */
void stats_scratch_trim(stats_scratch *s);

/*
 * Answer from_day..to_day (inclusive).  STATS_OK leaves the JSON in
 * s->body[0..s->blen); any other status leaves the reason in err.
 */
int stats_answer(const stats_env *env, rconn *rc, stats_scratch *s, int32_t from_day, int32_t to_day, char *err,
                 size_t errlen);

/* Report MongoDB reachable (1) or not, logged once per change of state
 * (log_state_report under a lock: every worker thread reports). */
void stats_mongo_state(int up, const char *detail);

/* Test seam: fn(arg) runs after each MongoDB read, before the version is
 * read again (the tests move the archive there). NULL to remove. */
void stats_set_after_cold_read_hook(void (*fn)(void *), void *arg);

#endif
