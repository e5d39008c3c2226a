/*
 * publish — hand-off 1 (docs/CONTRACTS.md "Exactly once"): a batch of stream
 * entries (accepted rows to `transactions`, rejected ones to
 * `transactions:rejected`) and the file's checkpoint commit together, exactly
 * once, through dropped connections, kill -9 and concurrent importers.
 *
 * Checkpoint: hash import:checkpoint:{file id} — rows (data records consumed:
 * accepted + rejected), done (1 when the file was read to its end), file (the
 * name it was last imported under).
 *
 * Partitions (publish_new_part, issue 14 contract §1): one publisher per
 * partition p of the tier, writing p's stream, dead-letter stream and the
 * file's checkpoint in p (keys_checkpoint(&parts[p], id)), all in p's slot.
 * When tagged, the checkpoint's `rows` is the record offset just past the
 * last record of the file committed into p (publish_set_end), and `stripe`
 * (S, publish_set_stripe) is written with every checkpoint; a checkpoint
 * holding another stripe belongs to another importer (a conflict) except
 * for publish_reset.  The connection is asked of the tier before every
 * attempt; on a cluster MOVED / ASK / TRYAGAIN / CLUSTERDOWN met by the
 * WATCH, the HMGET, while queuing or at EXEC mean nothing ran: the map is
 * recovered (cluster.h) and the checkpoint read again where the slot lives
 * (after ASK: ASKING before WATCH, HMGET and MULTI on the named node).  One
 * untagged partition writes exactly today's commands and checkpoint.
 *
 * Connections shared by several publishers (one Redis: every partition is
 * on the one connection; a cluster: partitions on one primary) carry one
 * transaction in flight at a time: the caller syncs a publisher before using
 * another (importer.c does).
 */
#ifndef TXAGG_PUBLISH_H
#define TXAGG_PUBLISH_H

#include <stdatomic.h>
#include <stdint.h>

#include "progress.h"
#include "redis.h"
#include "tier.h"
#include "validate.h"

enum publish_status {
    PUBLISH_OK = 0,
    PUBLISH_STOPPED,  /* a stop was requested while Redis was unreachable */
    PUBLISH_CONFLICT, /* another importer moved this file's checkpoint */
    PUBLISH_FATAL,    /* Redis executed the transaction only in part (logged) */
    PUBLISH_ROLLED_BACK, /* the checkpoint went back (a Redis failover lost committed
                          * batches, logged): import the file again from it */
};

typedef struct publisher publisher;

/* batch_size: BATCH_SIZE.  up: set to 1/0 as Redis answers or not. */
publisher *publish_new(rconn *rc, int batch_size, atomic_int *up);
/* The publisher of partition part of t (t outlives it): keys and connection
 * from the tier; the stripe defaults to batch_size. */
publisher *publish_new_part(tier *t, int part, int batch_size, atomic_int *up);
/* Tagged: the stripe S recorded with every checkpoint (> 0). */
void publish_set_stripe(publisher *p, int64_t stripe);
/* Tagged: the stripe the checkpoint held at publish_open_file (0: none). */
int64_t publish_stripe_found(const publisher *p);
/* The checkpoint `rows` the batch in hand commits to (the offset just past
 * its last record); not called: rows + the records in the batch. */
void publish_set_end(publisher *p, int64_t end);
void publish_free(publisher *p);

/*
 * Begin a file: checkpoint key from its identity, `file` (the name logged and
 * stored in the checkpoint) and `src` (the basename in each entry's src).
 * Reads the checkpoint (waiting for Redis) into *rows / *done.
 */
int publish_open_file(publisher *p, const char *file_id, const char *file, const char *src, int64_t *rows,
                      int *done);
/*
 * durable: the input cannot be read again (a pipe, stdin), so a Redis
 * failover that loses committed batches (replication is asynchronous) could
 * not be repaired by importing again from the checkpoint.  Then a batch is
 * forgotten only once every replica its primary lists has acknowledged it
 * (ROLE, then WAIT after its EXEC): while replicas lag the batch is held and
 * the input waits (logged once per change); after a lost connection the
 * batch is found on the new primary or sent again.  Costs a ROLE (and a
 * WAIT with replicas) per batch; files read from disk do not need it.
 */
void publish_set_durable(publisher *p, int durable);

/* --force on a finished file: the checkpoint goes back to rows 0, not done. */
int publish_reset(publisher *p);

/* Add a row to the batch in hand (copied). */
void publish_add_row(publisher *p, const valid_row *row, int64_t line);
/* Add a dead letter (raw copied); -1 when out of memory. */
int publish_add_reject(publisher *p, int reason, int64_t line, const char *raw, size_t raw_len);
/* Records in the batch in hand, and of those the accepted ones. */
int publish_pending(const publisher *p);
int publish_accepted(const publisher *p);
/* The batch is full: BATCH_SIZE records, or 1 MiB of dead-letter text. */
int publish_full(const publisher *p);

/*
 * Commit the batch in hand with the checkpoint (rows += records in the batch,
 * done as given).  The transaction is written and left in flight (Redis runs
 * it while the caller reads on); its outcome is read by the next commit or by
 * publish_sync, which add the committed rows to *counts.  Reconnects as
 * needed; after a failure whose outcome is unknown it reads the checkpoint to
 * learn whether the batch committed, and sends it again only if not.
 * Nothing else may use the connection while a transaction is in flight:
 * call publish_sync first.
 */
int publish_commit(publisher *p, int done, import_counts *counts);

/* Wait for the transaction in flight, if any, to be known committed. */
int publish_sync(publisher *p, import_counts *counts);

#ifdef TXAGG_TESTING
/* Test hooks: make the next commit attempt drop its connection right before
 * sending (1) or lose the reply of a transaction that committed (2); 1 while
 * a transaction is in flight. */
void publish_test_fault(publisher *p, int fault);
int publish_in_flight(const publisher *p);
#endif

#endif
