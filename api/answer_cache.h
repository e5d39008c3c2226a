/*
 * answer_cache — whole /stats bodies, keyed by (from, to, format) and the
 * two versions of the snapshot they were computed from, so a repeated query
 * costs one small atomic Redis read (MGET of the versions) and a copy.
 *
 * Why it is exact at every instant: a body B computed from a snapshot that
 * read system:hot_version H and system:archive_version V in the same
 * transaction is the exact answer at that snapshot's instant.  Every change
 * of what a /stats answer is made of bumps one of them: the aggregator's
 * apply.lua INCRs H in the script that writes the daily hashes (and the
 * tracked days); the persistor's freeze and clean-up INCR V in the script
 * that moves hashes, pending batches and archived_through; the only other
 * write, the guarded MongoDB upsert of the pending batch, leaves every
 * answer unchanged within V (docs/ARCHITECTURE.md "Consistent reads").  So a
 * later request that reads (H, V) atomically — one MGET, after the request
 * arrived — is at an instant whose exact answer is B.  Equality of both, never
 * "not older": versions only grow (INCR), so an equal pair is the same state.
 *
 * A failover can make the counters go back: the promoted replica may lack
 * the last writes its primary acknowledged, and then climb back to the same
 * pair with other contents.  So the key also holds the process's Redis
 * history number (rconn_history, common/redis.h: it moves whenever a
 * connection finds another server, or another replication history, at the
 * address): a body is served only to a request whose versions were read at
 * the number it was computed at, and kept only when the number did not move
 * from its snapshot to its end.  A failover, and a Redis restart (which
 * may have lost the counters), move it, and every cached body is left
 * behind.
 *
 * Limitation (the cold cache's too): within one history number a counter
 * must never be reused with other contents.  Not seen: a server that
 * changes history under a connection the api keeps open, and two primaries
 * serving at once (split brain).  Writers outside the contract (a manual
 * HSET of an agg: hash) must INCR system:hot_version.
 *
 * Layout: ANSWER_SLOTS direct-mapped slots by hash of (from, to, format), one
 * body each; a put replaces the slot's entry unless that one is newer (both
 * versions >=).  Bounded by max_bytes (a body that does not fit is not
 * kept).  Thread-safe: gets share a read lock, puts take the write lock.
 */
#ifndef TXAGG_API_ANSWER_CACHE_H
#define TXAGG_API_ANSWER_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct answer_cache answer_cache;

answer_cache *answer_cache_new(size_t max_bytes);
void answer_cache_free(answer_cache *c);

/*
 * When the body of (from, to, fmt) at exactly (hot, archive, history) is held: copy
 * it NUL-terminated into *buf (grown as needed, *cap its size), set *len and
 * return 1.  Else 0 (also when out of memory), *buf untouched.
 */
int answer_cache_get(answer_cache *c, int32_t from, int32_t to, int fmt, uint64_t hot, uint64_t archive,
                     uint64_t history, char **buf, size_t *len, size_t *cap);

/* Remember body[0..len) as the answer of (from, to, fmt) at (hot, archive),
 * read while the Redis history number (rconn_history) was `history`. */
void answer_cache_put(answer_cache *c, int32_t from, int32_t to, int fmt, uint64_t hot, uint64_t archive,
                      uint64_t history, const char *body, size_t len);

#endif
