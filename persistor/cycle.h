/*
 * cycle — one archival cycle.  See cycle.c.
 */
#ifndef TXAGG_PERSISTOR_CYCLE_H
#define TXAGG_PERSISTOR_CYCLE_H

#include "persistor.h"

/* Recover, then freeze/write/clean batches until no day is eligible.
 * PST_OK, or the error that stopped it (PST_ELEASE: stand by). */
int cycle_run(persistor *p);

#endif
