/*
 * freeze — step 1 of an archive batch (freeze.lua).  See freeze.c.
 */
#ifndef TXAGG_PERSISTOR_FREEZE_H
#define TXAGG_PERSISTOR_FREEZE_H

#include "persistor.h"

/* Freeze the oldest eligible days (at most PST_MAX_BATCH_DAYS) into a new
 * pending batch; its id goes to id.  PST_OK, PST_NONE (nothing eligible),
 * PST_ELEASE, PST_EREDIS or PST_EDATA (a batch is pending: recover first). */
int freeze_batch(persistor *p, char *id, size_t idlen);

/* The same over the eligible days after `after` only ("" = all), so one
 * cycle sweeps every eligible day once in ascending order even while late
 * rows keep re-creating older ones (they wait for the next cycle instead of
 * starving newer days).  last_day (TS_DAY_LEN + 1 bytes) receives the newest
 * candidate considered: the cursor for the next call. */
int freeze_batch_after(persistor *p, const char *after, char *id, size_t idlen, char *last_day);

/* How long a fresh freeze is left to reach Redis's disk before MongoDB is
 * told about it (two periods of appendfsync everysec). */
#define PST_FREEZE_SETTLE_MS 2000

/* Wait until a freeze just made is durable in Redis, as far as Redis 7.0
 * lets us know: when the server has AOF on, PST_FREEZE_SETTLE_MS; when it has
 * no AOF there is no durability to wait for.  PST_OK, PST_EREDIS or PST_ESTOP
 * (the batch then stays pending and recovery finishes it). */
int freeze_settle(persistor *p);

#endif
