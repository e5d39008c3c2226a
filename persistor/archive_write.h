/*
 * archive_write — step 2 of an archive batch: each frozen day into its
 * MongoDB document, exactly once.  See archive_write.c.
 */
#ifndef TXAGG_PERSISTOR_ARCHIVE_WRITE_H
#define TXAGG_PERSISTOR_ARCHIVE_WRITE_H

#include "archive_batch.h"
#include "persistor.h"

#ifdef TXAGG_TESTING
/* Apply day `day` of batch `id` (its frozen hashes) to the day's document,
 * unless the document already lists the batch.  Waits out MongoDB outages
 * (capped backoff, the lease renewed meanwhile).  PST_OK once MongoDB holds
 * the day; PST_ELEASE, PST_EREDIS, PST_ESTOP or PST_EDATA otherwise.  (The
 * service writes whole batches; tests "crash" between two days.) */
int archive_write_day(persistor *p, const char *id, const char *day);
#endif

/* Every day of the batch, one at a time, ascending.  fresh: the batch was
 * just frozen by this replica (not recovered), so days newer than
 * system:archived_through need no read before their update. */
int archive_write_batch(persistor *p, const archive_batch *b, int fresh);

#endif
