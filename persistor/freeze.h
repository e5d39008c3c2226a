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

#endif
