/*
 * cold_cache — MongoDB day documents kept in memory, keyed by the archive
 * version, so repeated reads of cold days need no MongoDB round trip.
 *
 * Why a version key is enough: within one value of system:archive_version
 * the only change MongoDB sees is the guarded upsert of the batch that is
 * pending at that version, and its frozen hashes stay in Redis for the whole
 * version.  A document read at any instant of version V, merged with a
 * snapshot of the same version V (frozen hashes counted only where the doc
 * does not list their batch), is therefore exact at every instant of V.  A
 * freeze or a clean-up bumps the version, and the whole cache is dropped on
 * the first store or lookup that carries another version.
 *
 * What is stored: for version V, the day ranges that were read from MongoDB
 * (merged intervals) and the documents found in them; a day inside a covered
 * range without a document is known to have none.  A lookup hits only when
 * its whole range is covered.  Memory is bounded by max_bytes: a store that
 * would exceed it first drops everything (simple, and a version change does
 * the same anyway).  Thread-safe: lookups share a read lock, stores take the
 * write lock.
 *
 * Single flight (cold_cache_get / cold_cache_finish): a miss makes the
 * caller the one reader of (version, range) — a *flight* — and every other
 * request that misses a range inside it at the same version waits for that
 * read instead of reading MongoDB too.  So N concurrent first touches of the
 * cold days, or of any range after a version bump, cost one MongoDB read,
 * not N.  The reader stores its view (the waiters then hit) or reports why it
 * has none: the version moved during its read (the waiters start over from a
 * new snapshot, as the reader does) or the read failed (the waiters fail
 * with the same reason; nothing is remembered, the next request reads
 * again).  A reader always finishes: its MongoDB and Redis calls are bounded
 * by their timeouts, so a wait is bounded too and a stop (which joins the
 * worker threads) cannot deadlock.
 *
 * A failover can make the version go back (the promoted replica may lack
 * the last acknowledged freeze or clean-up) and climb back to the cached
 * value with other contents; so, as the answer cache, the key also holds the
 * process's Redis history number (rconn_history): after a failover a store
 * or lookup carries another number and sees nothing cached before it (a
 * store clears first).
 *
 * Limitation: within one history number versions must never be reused
 * with other contents.  They only grow (INCR), unless Redis loses
 * system:archive_version under a kept connection; a version lower than the
 * cached one drops the cache, but a counter that climbs back past the cached
 * value before any lookup would not be noticed.
 */
#ifndef TXAGG_API_COLD_CACHE_H
#define TXAGG_API_COLD_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "records.h"

typedef struct cold_cache cold_cache;

cold_cache *cold_cache_new(size_t max_bytes);
void cold_cache_free(cold_cache *c);

/*
 * When [from, to] is covered at (history, version), append its documents (in day
 * order) to out and return 1; otherwise leave out untouched and return 0.
 */
int cold_cache_lookup(cold_cache *c, uint64_t history, uint64_t version, int32_t from, int32_t to, cold_view *out);

/* Remember that [from, to] was read at (history, version) and held exactly the docs
 * of view (sorted by day, all inside the range). */
void cold_cache_store(cold_cache *c, uint64_t history, uint64_t version, int32_t from, int32_t to,
                      const cold_view *view);

/* What cold_cache_get did. */
enum cold_get {
    COLD_HIT = 0,    /* out holds the documents of the range */
    COLD_LEAD = 1,   /* the caller reads MongoDB, then calls cold_cache_finish(*flight) exactly once */
    COLD_SHARED = 2, /* waited for another reader, whose read gave no view: *shared_rv, err hold its outcome */
};

typedef struct cold_flight cold_flight;

/*
 * Look [from, to] up at version; on a miss, either lead its read or wait for
 * the reader of a range covering it at the same version and look again.
 * The caller's outcome codes pass through untouched (0 = stored).
 */
int cold_cache_get(cold_cache *c, uint64_t history, uint64_t version, int32_t from, int32_t to, cold_view *out,
                   cold_flight **flight, int *shared_rv, char *err, size_t errlen);

/*
 * The reader's outcome for the (version, from, to) it got COLD_LEAD for:
 * rv 0 = view holds the documents of the range, read while the version
 * stayed (stored, the waiters look again); anything else is handed to the
 * waiters with err.  flight may be NULL (no memory for one at get: nobody
 * waits on it).
 */
void cold_cache_finish(cold_cache *c, cold_flight *flight, uint64_t history, uint64_t version, int32_t from,
                       int32_t to, int rv, const cold_view *view, const char *err);

/* Bytes held, for /metrics. */
size_t cold_cache_bytes(cold_cache *c);
#ifdef TXAGG_TESTING
/* Documents held. */
size_t cold_cache_docs(cold_cache *c);
/* Threads waiting for another thread's MongoDB read. */
size_t cold_cache_waiting(cold_cache *c);
#endif

#endif
