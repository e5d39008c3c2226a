/*
 * batch — archive batch ids, the batch record in Redis, and which days are
 * eligible for archival.  See batch.c.
 */
#ifndef TXAGG_PERSISTOR_BATCH_H
#define TXAGG_PERSISTOR_BATCH_H

#include "persistor.h"
#include "timeparse.h"

typedef char pst_day[TS_DAY_LEN + 1];

/* archive:batch:{id} as read back. */
typedef struct batch_rec {
    char id[PST_ID_MAX];
    pst_day *days; /* ascending, malloc'd */
    int ndays;
    int64_t fence;
    int written; /* state: 0 = frozen, 1 = written */
} batch_rec;

/* "<seq, 12 digits>-f<fence>": unique (seq), sortable, and naming the lease
 * acquisition that froze it.  0, or -1 when it does not fit. */
int batch_make_id(char *out, size_t n, int64_t seq, int64_t fence);
/* The fence of an id made by batch_make_id, or -1. */
int64_t batch_id_fence(const char *id);

/* Read archive:batch:{id}: PST_OK, PST_NONE (no record), PST_EREDIS or
 * PST_EDATA (malformed; logged).  Free with batch_rec_free. */
int batch_load(persistor *p, const char *id, batch_rec *b);
void batch_rec_free(batch_rec *b);

/* The pending batch ids (system:archive:pending), ascending; *ids is
 * malloc'd (free it).  PST_OK or PST_EREDIS. */
int batch_pending(persistor *p, char (**ids)[PST_ID_MAX], int *n);

/* The day number of the retention boundary: day(system:virtual_clock) −
 * RETENTION_DAYS.  PST_OK, PST_NONE (no clock yet), PST_EREDIS or PST_EDATA. */
int batch_boundary(persistor *p, int64_t *boundary);
/* Tracked days ≤ the boundary and > after ("" = from the oldest), ascending,
 * at most max of them.  PST_OK (n ≥ 1), PST_NONE (none), PST_EREDIS or
 * PST_EDATA (no usable clock). */
int batch_eligible_days(persistor *p, const char *after, pst_day *days, int max, int *n);

#endif
