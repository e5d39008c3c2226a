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
 * acquisition that froze it.  0, or -1 when it does not fit. */
int archive_batch_make_id(char *out, size_t n, int64_t seq, int64_t fence);
#ifdef TXAGG_TESTING
/* The fence of an id made by archive_batch_make_id, or -1. */
int64_t archive_batch_id_fence(const char *id);
#endif

/* Read archive:batch:{id}: PST_OK, PST_NONE (no record), PST_EREDIS or
 * PST_EDATA (malformed; logged).  Free with archive_batch_free. */
int archive_batch_load(persistor *p, const char *id, archive_batch *b);
void archive_batch_free(archive_batch *b);

/* The pending batch ids (system:archive:pending), ascending; *ids is
 * malloc'd (free it).  PST_OK or PST_EREDIS. */
int archive_batch_pending(persistor *p, char (**ids)[PST_ID_MAX], int *n);

/* The day number of the retention boundary: day(system:virtual_clock) −
 * RETENTION_DAYS.  PST_OK, PST_NONE (no clock yet), PST_EREDIS or PST_EDATA. */
int archive_batch_boundary(persistor *p, int64_t *boundary);
/* How far the hot tier reaches back (for /metrics): the virtual clock minus
 * the start (00:00 UTC) of the oldest tracked day, in seconds; 0 without a
 * usable clock or a valid tracked day.  With archival keeping up it stays
 * below RETENTION_DAYS × 86400 (the oldest hot day is the boundary's next).
 * PST_OK or PST_EREDIS. */
int archive_batch_hot_age(persistor *p, int64_t *age_s);
/* Tracked days ≤ the boundary and > after ("" = from the oldest), ascending,
 * at most max of them.  PST_OK (n ≥ 1), PST_NONE (none), PST_EREDIS or
 * PST_EDATA (no usable clock). */
int archive_batch_eligible_days(persistor *p, const char *after, pst_day *days, int max, int *n);

#endif
