/*
 * recover — finish what a crash left half-done.  See recover.c.
 */
#ifndef TXAGG_PERSISTOR_RECOVER_H
#define TXAGG_PERSISTOR_RECOVER_H

#include "persistor.h"

/* Steps 2-3 of one frozen batch, from wherever it stands: write the days not
 * yet confirmed (all, when state=frozen), mark it written, clean it.
 * PST_OK (also when it was already cleaned), or the failing step's result. */
int recover_finish_batch(persistor *p, const char *id, int recovered);

/* Finish every pending batch of the current partition (there is at most
 * one), after claiming the partition (lease_claim).  PST_OK or an error. */
int recover_pending(persistor *p);

#endif
