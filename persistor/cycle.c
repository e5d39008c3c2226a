/*
 * cycle — one archival cycle of the lease holder:
 *
 *   1. recover: finish every pending batch (recover.c);
 *   2. sweep the tracked days ≤ the boundary once, oldest first: freeze the
 *      next ≤ PST_MAX_BATCH_DAYS of them into a batch, write it, clean it,
 *      and go on after the newest day considered.  Days re-created by late
 *      rows behind the sweep wait for the next cycle, so a steady trickle of
 *      late rows for many old days cannot keep newer days hot for ever.
 *
 * Partitioned (REDIS_PARTITIONS > 1 or a cluster): step 1 for every
 * partition (each claimed for this holder's fence first), then step 2 for
 * each partition in turn with its own keys; the boundary is the same for all
 * (the greatest clock).  One batch is in hand at a time over the whole tier.
 *
 * It stops at the first failure — in any partition: the next cycle starts
 * over with recovery of every partition, so no batch is left half-done in one
 * partition while another moves on, and MongoDB pruning (archive_write.c)
 * never meets an id whose batch is still pending; what it leaves pending is
 * finished by the next cycle's recovery, here or in the replica that takes
 * the lease.  It also stops between batches when a stop is requested (the
 * batch in hand is finished first).  MongoDB is pinged first: no batch is frozen while MongoDB
 * is unreachable (the days stay hot, which readers find cheapest).
 */
#include "cycle.h"
#include "archive_batch.h"
#include "freeze.h"
#include "lease.h"
#include "recover.h"
#include "signals.h"

int cycle_run(persistor *p)
{
    int rv = lease_renew(p);
    if (rv != PST_OK) return rv;
    rv = persistor_ensure_indexes(p);
    if (rv != PST_OK) return rv;
    rv = persistor_ping_mongo(p);
    if (rv != PST_OK) return rv;
    for (int i = 0; i < p->t.n && rv == PST_OK; i++) { /* every partition claimed and recovered first */
        persistor_use_partition(p, i);
        rv = recover_pending(p);
    }
    for (int i = 0; i < p->t.n && rv == PST_OK && !sig_stopping(); i++) {
        persistor_use_partition(p, i);
        pst_day after = "";
        while (rv == PST_OK && !sig_stopping()) {
            char id[PST_ID_MAX];
            rv = freeze_batch_after(p, after, id, sizeof id, after);
            if (rv == PST_NONE) {
                rv = PST_OK;
                break;
            }
            if (rv != PST_OK) break;
            rv = recover_finish_batch(p, id, 0);
        }
    }
    return rv;
}
