/*
 * stream — how much work a consumer group of a stream has left, measured so
 * that a wrong or missing `lag` cannot mislead the caller; and how many
 * entries a stream ever received.
 *
 * XINFO GROUPS reports `lag` = entries added − entries read by the group.
 * It can be nil (after deletions Redis cannot tell) and, as seen with Redis
 * 7.0.15 after an AOF reload, stale: 106,461 with every entry delivered and
 * acknowledged.  An importer throttling on it would wait for ever.  So:
 *   - lag is 0 when the group's last-delivered-id is the stream's
 *     last-generated-id (nothing undelivered, whatever `lag` says);
 *   - a nil lag becomes length − pending (every undelivered entry is in the
 *     stream: trimming never passes the group);
 *   - lag + pending never exceeds the stream's length (both kinds of entry
 *     are in the stream), which bounds a stale value.
 */
#ifndef TXAGG_STREAM_H
#define TXAGG_STREAM_H

#include <stdint.h>

#include "redis.h"

typedef struct stream_backlog {
    int found;       /* the stream and the group exist */
    int64_t length;  /* XLEN */
    int64_t pending; /* delivered, not acknowledged */
    int64_t lag;     /* not yet delivered (after the corrections above) */
} stream_backlog;

/* Fill out for group of stream (all zero when the stream does not exist).
 * 0, or -1 on a Redis I/O error. */
int stream_group_backlog(rconn *rc, const char *stream, const char *group, stream_backlog *out);

/* How many entries were ever added to stream (XINFO STREAM `entries-added`,
 * Redis 7.0+; trimming does not lower it): 0 with *out set; 1 with *out = 0
 * when the stream does not exist or the server does not report it; -1 on a
 * Redis I/O error. */
int stream_entries_added(rconn *rc, const char *stream, int64_t *out);

#endif
