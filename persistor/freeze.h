/*
 * freeze — step 1 of an archive batch (freeze.lua).  See freeze.c.
 */
#ifndef TXAGG_PERSISTOR_FREEZE_H
#define TXAGG_PERSISTOR_FREEZE_H

#include "persistor.h"

/* Freeze the oldest eligible days after `after` ("" = all; at most
 * PST_MAX_BATCH_DAYS) into a new pending batch; its id goes to id.  PST_OK,
 * PST_NONE (nothing eligible), PST_ELEASE, PST_EREDIS or PST_EDATA (a batch
 * is pending: recover first).  `after` lets one cycle sweep every eligible
 * day once in ascending order even while late rows keep re-creating older
 * ones (they wait for the next cycle instead of starving newer days).
 * last_day (TS_DAY_LEN + 1 bytes) receives the newest candidate considered:
 * the cursor for the next call. */
int freeze_batch_after(persistor *p, const char *after, char *id, size_t idlen, char *last_day);

#ifdef TXAGG_TESTING
/* freeze_batch_after from the oldest eligible day. */
int freeze_batch(persistor *p, char *id, size_t idlen);
#endif

/* How long a fresh freeze is left to reach Redis's disk before MongoDB is
 * told about it (two periods of appendfsync everysec). */
#define PST_FREEZE_SETTLE_MS 2000
/* How long one replica wait may take before the batch is left pending for
 * the next attempt. */
#define PST_REPLICA_WAIT_MS 1000

/* Before the first MongoDB write of a frozen batch: make sure a failover
 * cannot roll the freeze (or the fence this holder writes under) back while
 * MongoDB holds the batch — which would count its amounts twice.
 *   - Disk, for a batch frozen just now (fresh): when the server has AOF on,
 *     PST_FREEZE_SETTLE_MS (Redis 7.0 has no WAITAOF), renewing the lease
 *     meanwhile; no AOF, no wait.
 *   - Replicas, then: the lease is renewed (a write on this connection, so
 *     its replication offset lies past the freeze, even on a connection made
 *     after it), then WAIT for every replica the primary has (ROLE); fewer
 *     acknowledgements within PST_REPLICA_WAIT_MS leave the batch pending
 *     (PST_EREDIS, logged once per change).  No replicas: nothing to wait for.
 * PST_OK, PST_ELEASE, PST_EREDIS or PST_ESTOP (the batch then stays pending
 * and recovery finishes it). */
int freeze_settle(persistor *p, int fresh);

#endif
