/*
 * archive_batch — archive batch ids, the batch record in Redis, and which
 * days are eligible for archival.  See archive_batch.c.
 */
#ifndef TXAGG_PERSISTOR_ARCHIVE_BATCH_H
#define TXAGG_PERSISTOR_ARCHIVE_BATCH_H

#include "persistor.h"
#include "timeparse.h"

typedef char pst_day[TS_DAY_LEN + 1];

/* archive:batch:{id} as read back. */
typedef struct archive_batch {
    char id[PST_ID_MAX];
    pst_day *days; /* ascending, malloc'd */
    int ndays;
    int64_t fence;
    int written; /* state: 0 = frozen, 1 = written */
} archive_batch;

/* "<seq, 12 digits>-f<fence>": unique (seq), sortable, and naming the lease
 * acquisition that froze it; partitioned (part >= 0) followed by
 * "p<part>", unique across partitions (each has its own seq).  Untagged:
 * part = -1.  0, or -1 when it does not fit. */
int archive_batch_make_id(char *out, size_t n, int64_t seq, int64_t fence, int part);
#ifdef TXAGG_TESTING
/* The fence of an id made by archive_batch_make_id, or -1. */
int64_t archive_batch_id_fence(const char *id);
#endif

/* The steps below work on the current partition (p->cur) unless they say
 * otherwise. */

/* Read archive:batch:{id}: PST_OK, PST_NONE (no record), PST_EREDIS or
 * PST_EDATA (malformed; logged).  Free with archive_batch_free. */
int archive_batch_load(persistor *p, const char *id, archive_batch *b);
void archive_batch_free(archive_batch *b);

/* The pending batch ids (system:archive:pending), ascending; *ids is
 * malloc'd (free it).  PST_OK or PST_EREDIS. */
int archive_batch_pending(persistor *p, char (**ids)[PST_ID_MAX], int *n);

/* The day number of the retention boundary: day(greatest
 * system:virtual_clock over all partitions) − RETENTION_DAYS.  PST_OK, PST_NONE (no clock yet), PST_EREDIS or PST_EDATA. */
int archive_batch_boundary(persistor *p, int64_t *boundary);
/* How far the hot tier reaches back (for /metrics): the greatest virtual
 * clock minus the start (00:00 UTC) of the oldest tracked day of any
 * partition, in seconds; 0 without a
 * usable clock or a valid tracked day.  With archival keeping up it stays
 * below RETENTION_DAYS × 86400 (the oldest hot day is the boundary's next).
 * PST_OK or PST_EREDIS. */
int archive_batch_hot_age(persistor *p, int64_t *age_s);
/* Tracked days ≤ the boundary and > after ("" = from the oldest), ascending,
 * at most max of them.  PST_OK (n ≥ 1), PST_NONE (none), PST_EREDIS or
 * PST_EDATA (no usable clock). */
int archive_batch_eligible_days(persistor *p, const char *after, pst_day *days, int max, int *n);

#endif
