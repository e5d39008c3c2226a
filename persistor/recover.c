/*
 * recover — finish every pending batch, before anything else: on start and
 * at the top of every cycle (a crash, a kill -9 or a lost lease can stop a
 * batch between any two steps; the next holder completes it).
 *
 * Each step is repeatable, so recovery simply runs the rest of the protocol
 * from the batch record: state=frozen → write every day (days already in
 * MongoDB list the batch id and are skipped), mark written; state=written →
 * clean.  A pending id without a record cannot be produced by the scripts
 * (freeze writes both at once); it is reported and left alone.
 *
 * The same function finishes a batch this replica just froze (recovered=0),
 * so the normal path and the recovery path are one code path.
 *
 * Partitioned: all of this is per partition (the current one), at most one
 * pending batch in each.  Before it reads a partition's pending set the
 * holder claims the partition (lease_claim: its fence there), so a former
 * holder can no longer freeze or clean in it behind our back; and after the
 * replica wait it reads the batch record again — a failover between the
 * freeze and the wait may have put a primary without the freeze in place,
 * and the record read before is then not what that primary holds.
 */
#include "recover.h"
#include "archive_batch.h"
#include "archive_write.h"
#include "clean.h"
#include "freeze.h"
#include "lease.h"
#include "log.h"
#include "signals.h"

#include <stdlib.h>
#include <string.h>

/* The record of b again, after the replica wait; b replaced by it.  PST_OK,
 * PST_EREDIS (gone: rolled back by a failover, or finished by another
 * holder — the next cycle re-reads the partition) or load's error. */
static int reload(persistor *p, archive_batch *b)
{
    archive_batch again;
    int rv = archive_batch_load(p, b->id, &again);
    if (rv == PST_NONE) {
        log_warn("archive batch gone after the replica wait (a failover rolled the freeze back?); the partition "
                 "is read again next cycle",
                 "id=%s partition=%d", b->id, p->cur);
        return PST_EREDIS;
    }
    if (rv != PST_OK) return rv;
    archive_batch_free(b);
    *b = again;
    return PST_OK;
}

int recover_finish_batch(persistor *p, const char *id, int recovered)
{
    int64_t t0 = sig_now_ms();
    archive_batch b;
    int rv = archive_batch_load(p, id, &b);
    if (rv == PST_NONE) {
        log_error("pending archive batch has no record; left alone", "id=%s", id);
        return PST_EDATA;
    }
    if (rv != PST_OK) return rv;
    if (recovered) {
        metrics_inc(pst_metrics.recoveries);
        log_info("recovering archive batch", "id=%s state=%s days=%d", id, b.written ? "written" : "frozen",
                 b.ndays);
    }
    if (!b.written) rv = freeze_settle(p, !recovered); /* the freeze must survive a crash or failover first */
    if (rv == PST_OK && !b.written && p->t.tagged) rv = reload(p, &b);
    if (rv == PST_OK && !b.written) {
        rv = archive_write_batch(p, &b, !recovered);
        if (rv == PST_OK) rv = clean_mark_written(p, id);
    }
    if (rv == PST_OK) rv = clean_batch(p, &b);
    if (rv == PST_OK || rv == PST_NONE) {
        if (rv == PST_OK) {
            metrics_inc(pst_metrics.batches_completed);
            metrics_add(pst_metrics.day_documents, (uint64_t)b.ndays);
            log_info("batch archived", "id=%s days=%d first=%s last=%s recovered=%d ms=%lld", id, b.ndays,
                     b.days[0], b.days[b.ndays - 1], recovered, (long long)(sig_now_ms() - t0));
        }
        rv = PST_OK;
    }
    archive_batch_free(&b);
    return rv;
}

int recover_pending(persistor *p)
{
    char(*ids)[PST_ID_MAX];
    int n;
    int rv = lease_claim(p); /* partitioned: no former holder acts here once we look */
    if (rv != PST_OK) return rv;
    rv = archive_batch_pending(p, &ids, &n);
    if (rv != PST_OK) return rv;
    for (int i = 0; i < n && rv == PST_OK; i++) rv = recover_finish_batch(p, ids[i], 1);
    free(ids);
    return rv;
}
