/*
 * persistor — the archival service: moves days older than the retention
 * window from Redis (the hot tier) to MongoDB (the cold tier), exactly once
 * (hand-off 3 of docs/CONTRACTS.md "Exactly once").
 *
 * A `persistor` is one replica's state: its connections, its lease and what
 * the loop knows about its dependencies.  The protocol is split into steps,
 * each a library function in its own module, so a test can run them one at a
 * time and "crash" between any two (drop the persistor, open a fresh one).
 * The modules form a line, each using only those listed before it:
 *
 *   persistor.c      the replica's state: open/close, MongoDB state, /ready
 *   lease.c          lease_acquire / lease_renew / lease_release (fencing)
 *   archive_batch.c  batch ids, the batch record, eligible days
 *   freeze.c         step 1: freeze.lua
 *   archive_write.c  step 2: the guarded upsert of each day into MongoDB
 *   clean.c          mark_written.lua, then step 3: clean.lua
 *   recover.c        finish every pending batch (steps 2-3, each repeatable)
 *   cycle.c          one archival cycle: recover, then freeze/write/clean
 *   service.c        the service loop (service_run): stand by or hold the lease
 *
 * Partitions (REDIS_PARTITIONS, REDIS_CLUSTER; common/tier.h): one lease and
 * one fence for the whole hot tier (global keys, KEYS_GLOBAL_TAG when
 * tagged); every other step works on one partition at a time, `cur`, with
 * that partition's keys, on the node serving its slot (rcluster: MOVED, ASK,
 * TRYAGAIN, CLUSTERDOWN followed; a lost node means the step failed and the
 * cycle ends — the next one re-reads everything).  Untagged (one partition on
 * one Redis) every name, id and step is exactly the single-Redis one.  In
 * tagged mode the archive scripts cannot see the lease (another slot): they
 * check the partition's own fence instead (KEYS_ARCHIVE_FENCE: the highest
 * persistor fence that worked on the partition; lower fences are refused),
 * which this holder raises in every partition before it reads any
 * partition's pending batch (recover.c), so an ex-holder is shut out of a
 * partition before the new one looks at it.
 *
 * Threads: everything here runs on the loop's thread; the metrics listener's
 * threads read only the atomics (redis_up, mongo_up) and the metrics.
 */
#ifndef TXAGG_PERSISTOR_H
#define TXAGG_PERSISTOR_H

#include <mongoc/mongoc.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "tier.h"

/* Step results.  Negative: the step did not complete (and left nothing
 * half-done that a repeat would not finish). */
enum {
    PST_OK = 0,
    PST_NONE = 1,       /* nothing to do (no eligible day, no batch) */
    PST_ELEASE = -1,    /* the lease is not (or no longer) ours: stand by */
    PST_EREDIS = -2,    /* Redis unreachable or a command failed: retry later */
    PST_EMONGO = -3,    /* MongoDB unreachable (callers that do not wait for it) */
    PST_ESTOP = -4,     /* a stop was requested while waiting */
    PST_EDATA = -5,     /* a record or a value is malformed (logged) */
};

/* Keep the newest PST_BATCHES_KEEP ids in a document's `batches` array;
 * prune when it grows past twice that (see archive_write.c). */
#define PST_BATCHES_KEEP 32
/* At most this many days per batch (bounds the freeze script's arguments
 * and the frozen set a reader must look at). */
#define PST_MAX_BATCH_DAYS 64
#define PST_TOKEN_LEN 32
#define PST_ID_MAX 64

typedef struct persistor {
    txagg_config cfg;
    tier t;    /* the partitions, their keys, the connections (t.cl) */
    int cur;   /* the partition the per-partition steps work on */
    rconn *rc; /* untagged only (else NULL): the one Redis, as `persistor migrate` uses it */
    char lease_key[KEYS_NAME_MAX], fence_key[KEYS_NAME_MAX]; /* global keys */
    int lease_slot;
    mongoc_client_t *mongo;
    mongoc_collection_t *coll;
    mongoc_write_concern_t *wc;
    char mongo_what[300]; /* "mongodb://host:port" for logs (no credentials) */
    int indexes_ready;
    int64_t mongo_backoff_ms;

    /* Lease: token of the current acquisition, its fence (0 = not holding)
     * and the monotonic time before the last successful acquire/renew was
     * sent (the lease is surely ours until that + PERSIST_LEASE_MS). */
    char token[PST_TOKEN_LEN + 1];
    int64_t fence;
    int64_t lease_sent_ms;

    int *invalid_tracked; /* per partition: invalid members of its tracked days last seen */
    int replicas_behind;  /* the last replica wait fell short (logged once per change) */

    /* Readiness for /ready (set by the loop, read by listener threads). */
    atomic_int redis_up;
    atomic_int mongo_up;
} persistor;

/* Process-wide metrics of the persistor (registered by persistor_open). */
typedef struct persistor_metrics {
    metric *leader, *lease_acquisitions, *lease_losses, *batches_frozen, *batches_completed, *day_documents,
        *recoveries, *cycle_seconds, *hot_age, *retention;
} persistor_metrics;
extern persistor_metrics pst_metrics;

/* Connections are described, not made (no I/O); NULL + err on a bad URI or
 * write concern. */
persistor *persistor_open(const txagg_config *cfg, char *err, size_t errlen);
/* Drops the connections without releasing the lease (what a crash does);
 * call lease_release first for a clean stop. */
void persistor_close(persistor *p);

/* Work on partition i (0 … t.n-1) from now on; 0, or -1 when out of range. */
int persistor_use_partition(persistor *p, int i);
/* The partition the steps work on (its keys; tag "" untagged) and its slot. */
static inline const keys_part *persistor_part(const persistor *p) { return &p->t.parts[p->cur]; }
static inline int persistor_slot(const persistor *p) { return p->t.parts[p->cur].slot; }
/* A command for the current partition, redirections followed
 * (rcluster_cmd); NULL: Redis failed, outcome unknown. */
#define persistor_cmd(p, ...) rcluster_cmd((p)->t.cl, persistor_slot(p), __VA_ARGS__)
/* Whether Redis answers, for the loop: the node of the lease's slot is
 * connected (connecting now if its backoff allows; on a cluster the slot map
 * is refreshed once when it is not).  0 or -1. */
int persistor_redis_ensure(persistor *p);
/* Whether that node was connected after the last command. */
int persistor_redis_connected(persistor *p);

/* Report whether MongoDB answered: logged once per change of state
 * (mongo_report_state), kept in mongo_up for /ready.  detail: the error text
 * when down.  (Callers count errors with mongo_count_error.) */
void persistor_mongo_state(persistor *p, int up, const char *detail);
/* Create the unique index on `date` (once); PST_OK or PST_EMONGO. */
int persistor_ensure_indexes(persistor *p);
/* {ping: 1}; PST_OK or PST_EMONGO (state reported). */
int persistor_ping_mongo(persistor *p);

/* 1 when Redis and MongoDB were reachable at the loop's last look (an
 * http_ready_fn: the query is not looked at). */
int persistor_ready(void *p, const char *query);

#endif
