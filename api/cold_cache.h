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
 * Limitation: versions must never be reused with other contents.  They only
 * grow (INCR), unless Redis loses system:archive_version; a version lower
 * than the cached one drops the cache, but a counter that climbs back past
 * the cached value before any lookup would not be noticed.
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
 * When [from, to] is covered at `version`, append its documents (in day
 * order) to out and return 1; otherwise leave out untouched and return 0.
 */
int cold_cache_lookup(cold_cache *c, uint64_t version, int32_t from, int32_t to, cold_view *out);

/* Remember that [from, to] was read at `version` and held exactly the docs
 * of view (sorted by day, all inside the range). */
void cold_cache_store(cold_cache *c, uint64_t version, int32_t from, int32_t to, const cold_view *view);

/* Figures for /metrics and tests. */
size_t cold_cache_bytes(cold_cache *c);
size_t cold_cache_docs(cold_cache *c);

#endif
