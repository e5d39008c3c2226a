/*
 * trim — keep the stream and the group bounded: trim.lua (XTRIM MINID behind
 * every group's oldest unacknowledged entry) and reap.lua (delete consumers
 * left behind by restarted replicas).  Both are single atomic scripts; any
 * replica may run them at any time, as often as it likes.  Partitioned
 * (REDIS_PARTITIONS > 1 or REDIS_CLUSTER), each partition's stream is
 * trimmed and reaped on its own, by the *_part calls.
 */
#ifndef TXAGG_TRIM_H
#define TXAGG_TRIM_H

#include <stdint.h>

#include "redis.h"
#include "tier.h"

/* Partition p of the hot tier (its stream, its dead letters, its group);
 * each call is routed to the node serving the partition's slot with the
 * cluster's redirections followed (common/cluster.h).
 *
 * Trim the stream.  Returns the number of entries removed (>= 0), or -1 on
 * an I/O error (connection dropped) or an error reply (logged). */
long long trim_stream_part(tier *t, int p);

/* XTRIM the dead-letter stream to about maxlen newest entries (whole stream
 * nodes: MAXLEN ~).  Entries removed, or -1 on a Redis error. */
long long trim_dead_letters_part(tier *t, int p, long long maxlen);

/* Delete the group's consumers that have no pending entry and have been idle
 * longer than min_idle_ms, never `self`.  Returns how many were deleted, or
 * -1 (as above).  Names deleted are logged at INFO. */
long long trim_reap_part(tier *t, int p, const char *group, const char *self, int64_t min_idle_ms);

#ifdef TXAGG_TESTING
/* The same on one untagged partition over one rconn (the tests' form). */
long long trim_stream(rconn *rc);
long long trim_dead_letters(rconn *rc, long long maxlen);
long long trim_reap_consumers(rconn *rc, const char *group, const char *self, int64_t min_idle_ms);
#endif

/* The idle time after which the service reaps: max(10 × CLAIM_IDLE_MS, 10 min). */
int64_t trim_reap_idle_ms(int64_t claim_idle_ms);

#endif
