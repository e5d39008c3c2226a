/*
 * migrate — `persistor migrate [--check]`: the one-command switch-over from
 * the Python service, run after it is stopped and before txagg starts.  Its
 * data is carried over in place, exactly:
 *
 *   mhot.c   Redis: the plan, each agg: hash to cents, the clock, then
 *            system:archived_through; the stream entries are only counted
 *            (the aggregator reads the Python service's entry format)
 *   mcold.c  MongoDB: each day document to txagg's form
 *   mreport  counters, refusals, the closing summary and the exit status
 *   pyvalue  the value rules (dollars to cents within a tolerance, the clock)
 *
 * Order: Redis hashes, clock, MongoDB documents, archived_through, stream
 * account, then the totals read back.  Every write is atomic per key or
 * document and guarded by the old form, so the command can be repeated,
 * interrupted (kill -9) and run again, or run twice at once: the result is
 * the same.  --check reads everything and writes nothing.
 */
#ifndef TXAGG_MIGRATE_H
#define TXAGG_MIGRATE_H

#include <stdio.h>

#include "config.h"

/* The command line after "migrate": flags, configuration, the run.  Returns
 * the exit status (mreport.h MREPORT_EXIT_*). */
int migrate_main(int argc, char **argv);

/* The run itself; the report goes to out.  Returns the exit status. */
int migrate_run(const txagg_config *cfg, int check, FILE *out);

#endif
