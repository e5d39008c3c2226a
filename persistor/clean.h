/*
 * clean — confirm a batch written, then step 3: delete its frozen keys.
 * See clean.c.
 */
#ifndef TXAGG_PERSISTOR_CLEAN_H
#define TXAGG_PERSISTOR_CLEAN_H

#include "archive_batch.h"
#include "persistor.h"

/* state=written on the pending batch (after every day is in MongoDB).
 * PST_OK, PST_ELEASE, PST_EREDIS or PST_EDATA (not pending). */
int clean_mark_written(persistor *p, const char *id);

/* Delete the frozen keys and the record of a written batch, take it out of
 * the pending set, raise system:archived_through, bump the archive version.
 * PST_OK, PST_NONE (already cleaned), PST_ELEASE, PST_EREDIS or PST_EDATA
 * (not marked written: nothing was deleted). */
int clean_batch(persistor *p, const archive_batch *b);

#endif
