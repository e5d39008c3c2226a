/*
 * snapshot — step (a) of a /stats read (stats.h): one atomic read of the
 * archive version, the archived-through day, the hot version, the hot hashes of the tracked
 * days in range and the frozen hashes, in range, of every pending archive
 * batch.
 *
 * Two ways, both atomic, with the same result:
 *   - fast path: one MULTI/EXEC of plain commands (GET, SMEMBERS, HGET,
 *     HGETALL) built from a per-thread *hint* of the key layout — the
 *     tracked days, the pending batches and their days, as last seen.  The
 *     transaction also reads the tracked set, the pending set and each
 *     batch's days; the result is used only when they match the hint over
 *     the requested range, i.e. when it read exactly the hashes the Lua
 *     script would have read.
 *   - snapshot.lua: always complete; used when there is no hint yet or the
 *     hint was stale (the layout changes only when a day appears, or at a
 *     freeze or clean-up), and it refreshes the hint.
 * Why: the script spends most of its time converting ~170 reply elements
 * between Lua and RESP (measured ~50-90 µs of Redis time per call for 7
 * days against ~14 µs for the transaction), and Redis's one thread is what
 * bounds /stats throughput.
 *
 * Partitions (common/tier.h): with tagged keys, snapshot_read_part reads one
 * partition — its fixed keys, and the tag appended to every derived key the
 * script builds — with snapshot.lua through the cluster layer (on one Redis
 * the one server; on a Redis Cluster the primary serving the partition's
 * slot, MOVED/ASK/TRYAGAIN/CLUSTERDOWN followed).  It keeps no hint: the
 * fast path stays the untagged mode's (one partition on one Redis).
 */
#ifndef TXAGG_API_SNAPSHOT_H
#define TXAGG_API_SNAPSHOT_H

#include <stdint.h>

#include "cluster.h"
#include "keys.h"
#include "records.h"
#include "redis.h"
#include "tier.h"

typedef struct snap_hint snap_hint;

typedef struct snapshot {
    uint64_t version;     /* system:archive_version, 0 when unset */
    uint64_t hot_version; /* system:hot_version, 0 when unset (read in the same transaction) */
    int has_through;  /* system:archived_through is set */
    int32_t through;
    redisReply *reply; /* kept until snapshot_release: frozen ids may point into it */
} snapshot;

enum snapshot_status {
    SNAP_OK = 0,
    SNAP_UNAVAILABLE = -1, /* Redis unreachable, loading, busy… (503) */
    SNAP_INTERNAL = -2,    /* stored data txagg cannot have written, or out of memory (500) */
};

snap_hint *snap_hint_new(void);
void snap_hint_free(snap_hint *h);

/* Register the metrics (once per process). */
void snapshot_init(void);

/*
 * Read [from, to]: hot records appended to hot, frozen ones to frozen (ids
 * valid until snapshot_release).  lua is the thread's rscript of
 * snapshot.lua.  SNAP_OK, or a status with the reason in err.
 */
int snapshot_read(rconn *rc, rscript *lua, snap_hint *hint, int32_t from, int32_t to, snapshot *out,
                  rec_vec *hot, frozen_vec *frozen, char *err, size_t errlen);
void snapshot_release(snapshot *s);

/* The same read for one partition of a tagged tier (see above), on the
 * connection cl gives for part->slot.  SNAP_OK, or a status with the reason
 * in err. */
int snapshot_read_part(rcluster *cl, const keys_part *part, rscript *lua, int32_t from, int32_t to, snapshot *out,
                       rec_vec *hot, frozen_vec *frozen, char *err, size_t errlen);

/* Map a failed Redis call (reply NULL = I/O error) to a status and reason. */
int snapshot_redis_failure(rconn *rc, const redisReply *r, char *err, size_t errlen);

/*
 * Every partition of t at once: one EVALSHA per partition appended to the
 * connection serving it (one round trip per node: on one Redis, one for all
 * N), the replies read back in order; a partition whose reply is an error
 * (a redirection, NOSCRIPT…) or whose connection broke is read again alone
 * with snapshot_read_part.  outs[0..n) must be released by the caller (all
 * of them, also on failure).  SNAP_OK, or a status with *failed = the
 * partition and the reason in err.
 */
int snapshot_read_parts(tier *t, rscript *lua, int32_t from, int32_t to, snapshot *outs, rec_vec *hot,
                        frozen_vec *frozen, int *failed, char *err, size_t errlen);

/* The same for a call through the cluster layer (reply NULL: no answer
 * within the retry budget; rcluster_error says why). */
int snapshot_cluster_failure(rcluster *cl, const redisReply *r, char *err, size_t errlen);

/* The value of system:archive_version: nil or "" = 0 (never bumped), else a
 * decimal counter.  0, or -1 when the value is not a counter. */
int snapshot_parse_version(const redisReply *r, uint64_t *version);

#endif
