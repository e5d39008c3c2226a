/*
 * stats — one /stats answer: every tier of every day in the range merged,
 * exact at every instant, also while the persistor moves days to MongoDB.
 *
 * The algorithm (docs/ARCHITECTURE.md "Consistent reads"; the promise is
 * docs/CONTRACTS.md "HTTP API"), per request:
 *   a. one atomic read (snapshot.c: a MULTI/EXEC guided by a layout hint,
 *      or snapshot.lua) of the archive version V, the archived-through day
 *      T, the hot hashes of the tracked days in range and, for each pending
 *      archive batch B, the frozen hashes of its days in range;
 *   b. only for the days of the range <= T (if any): the MongoDB documents,
 *      from the cold cache at version V, or from MongoDB — one read per
 *      (range, V) however many requests need it at once: the others wait
 *      for it (single flight, cold_cache.h);
 *   c. after a MongoDB read, GET the version again: if it moved, start over
 *      from (a) — at most max_attempts times, then give up (503);
 *   d. per day: hot + document + the frozen hashes of B only where the
 *      day's document does not list B (a day > T has no document worth
 *      reading: its frozen hashes count).
 * Before (a), with an answer cache (answer_cache.h): one MGET of the hot
 * version and V; a body computed at exactly that pair is the answer (one
 * small Redis read instead of a-d).  Every answer computed is kept with the
 * pair its snapshot read.
 * A freeze and a clean-up each bump V, so hot data that moved into MongoDB
 * during (b) can never be counted twice, and within one V the document's
 * batch list decides, per day, between the frozen copy and MongoDB.
 *
 * Partitions (common/tier.h, docs/CONTRACTS.md "Redis keys"): with tagged
 * keys (REDIS_PARTITIONS > 1, or a Redis Cluster) a day is the sum over the
 * N partitions (each: hot hashes + frozen hashes of its pending batch not
 * listed in the day's document) + the MongoDB document; stats_answer_tier:
 *   a. every partition's snapshot (snapshot_read_part), in order; one that
 *      cannot be read fails the request (503 naming the partition), never a
 *      partial sum; T = the greatest archived-through over the partitions;
 *   b. MongoDB for the days <= T, keyed in the cold cache by the vector of
 *      the N archive versions (interned: one id per distinct vector, never
 *      reused) and the Redis history;
 *   c. every partition's archive version again: if any moved, start over;
 *   d. as above (batch ids are unique across partitions).
 * Why exact: partition p's archive version stayed V_p from its snapshot to
 * the re-check, and the MongoDB read lies between the last snapshot and the
 * first re-check — inside every partition's interval — so for each
 * partition the document and its frozen hashes agree as on one Redis; hot
 * rows applied in a partition after its snapshot are simply not in the
 * answer (they were not applied when it was read).  The answer cache keys on
 * the interned vectors of hot and archive versions.  The Redis history in
 * tagged mode is rconn_history() + rcluster_map_changes(): a failover or a
 * resharding in a cluster moves a slot to another address (a new slot map),
 * which rconn_history alone would not see.  Map changes, not map loads:
 * each worker thread loads the map on its first request, and counting those
 * loads emptied every thread's cached answers each time a thread started
 * (all of them then computed their answer at once: a p99 of 200 ms).  Untagged (one partition on one
 * Redis) stats_answer_tier is stats_answer on the one connection: today's
 * keys, round trips and fast path.
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

#include "answer_cache.h"
#include "cold_cache.h"
#include "config.h"
#include "records.h"
#include "redis.h"
#include "snapshot.h"
#include "tier.h"

typedef struct stats_env {
    mongoc_client_pool_t *pool;
    const char *database;
    const char *collection;
    cold_cache *cache; /* NULL: every cold read goes to MongoDB */
    int max_attempts;  /* snapshot + read rounds before 503 */
    answer_cache *answers; /* NULL: every request reads the tiers */
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
    /* tagged tiers: one snapshot per partition, and the versions read
     * (hot[0..n), archive[n..2n), again[2n..3n)) */
    snapshot *snaps;
    uint64_t *vers;
    int nparts;
} stats_scratch;

enum stats_status {
    STATS_OK = 0,
    STATS_UNAVAILABLE = -1, /* Redis or MongoDB unreachable / failing: 503 */
    STATS_BUSY = -2,        /* the archive moved during every attempt: 503 */
    STATS_INTERNAL = -3,    /* corrupt stored data, overflow, out of memory: 500 */
};

/* The body stats_answer prints. */
enum stats_format {
    STATS_JSON = 0, /* {"data": {...}} as above */
    STATS_CSV = 1,  /* date,type,method,amount — one line per (day, type, method), same order, amounts with
                       exactly two decimals (343.40) printed from the cents */
};

/* Register the metrics (once per process). */
void stats_init(void);

/* 0, or -1 when out of memory. */
int stats_scratch_init(stats_scratch *s);
void stats_scratch_free(stats_scratch *s);
/* Give back memory a huge request left behind. */
void stats_scratch_trim(stats_scratch *s);

/*
 * Answer from_day..to_day (inclusive).  STATS_OK leaves the body in format
 * fmt in s->body[0..s->blen); any other status leaves the reason in err.
 */
int stats_answer(const stats_env *env, rconn *rc, stats_scratch *s, int32_t from_day, int32_t to_day,
                 enum stats_format fmt, char *err, size_t errlen);

/*
 * The same over the partitions of t (this thread's tier): untagged, exactly
 * stats_answer on its one connection; tagged, the algorithm above.  A
 * partition that cannot be read is STATS_UNAVAILABLE with err naming it.
 */
int stats_answer_tier(const stats_env *env, tier *t, stats_scratch *s, int32_t from_day, int32_t to_day,
                      enum stats_format fmt, char *err, size_t errlen);

/*
 * Can a /stats read reach its dependencies?  Redis PING on rc and MongoDB
 * ping on a client of env's pool, each bounded by its timeout.  redis_err and
 * mongo_err are left "" for a dependency that answered, else hold the
 * reason; failures are counted and MongoDB's state is logged once per change,
 * as a /stats read does.  cfg: the database the ping names.
 */
void stats_check_deps(const stats_env *env, const txagg_config *cfg, rconn *rc, char *redis_err, size_t rlen,
                      char *mongo_err, size_t mlen);

/* The same for a tier: untagged, stats_check_deps on its connection;
 * tagged, PING on every primary of the slot map (the map reloaded once when
 * one does not answer: after a failover its replica serves). */
void stats_check_deps_tier(const stats_env *env, const txagg_config *cfg, tier *t, char *redis_err, size_t rlen,
                           char *mongo_err, size_t mlen);

/* Report MongoDB reachable (1) or not: mongo_report_state, logged once per
 * change of state for the whole process, and txagg_mongo_up. */
void stats_mongo_state(int up, const char *detail);

#ifdef TXAGG_TESTING
/* Test seam: fn(arg) runs after each MongoDB read (failed ones too), before
 * the version is read again and before the waiters of that read are woken
 * (the tests move the archive or hold the reader there). NULL to remove. */
void stats_set_after_cold_read_hook(void (*fn)(void *), void *arg);
#endif

#endif
