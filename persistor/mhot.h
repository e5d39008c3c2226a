/*
 * mhot — the Redis side of `persistor migrate`: the Python service's
 * agg:{day}:{type} hashes (HINCRBYFLOAT dollars) to integer cents, its clock
 * to txagg's form, system:archived_through for the converted documents, and
 * a read-only account of the stream entries it left.
 *
 * The plan.  The first run that writes records, in one script
 * (migrate_plan.lua), which agg: hashes are the Python service's: every
 * daily hash present then.  Only hashes in the plan are converted, each by
 * one script (migrate_hash.lua) that checks the hash still holds what was
 * read, writes the cents, SADDs its day to system:tracked_days and takes it
 * out of the plan.  So a hash is converted at most once, whatever runs
 * before or at the same time, and a hash txagg wrote later is never taken
 * for dollars.  No plan is made when Redis already holds txagg's own state
 * (lease fence, archive keys, import checkpoints): its hashes hold cents.
 *
 * Invariants: nothing is written with --check; every write is one script,
 * so a kill -9 leaves each key either old or new, and a rerun finishes.
 */
#ifndef TXAGG_MHOT_H
#define TXAGG_MHOT_H

#include <stddef.h>

#include "mreport.h"
#include "persistor.h"

/* A sorted list of key names. */
typedef struct mhot_keys {
    char **v;
    size_t n, cap;
} mhot_keys;

void mhot_keys_free(mhot_keys *k);
int mhot_keys_has(const mhot_keys *k, const char *key);

/* What the Redis side keeps between its steps. */
typedef struct mhot {
    persistor *p;
    mreport *r;
    mhot_keys plan;    /* the hashes to convert */
    int plan_stored;   /* the plan is in Redis (not only computed by --check) */
    mhot_keys refused; /* hashes refused by this run (left out of the sums) */
} mhot;

void mhot_init(mhot *h, persistor *p, mreport *r);
void mhot_free(mhot *h);

/* Read the plan, or make it (with --check: compute it) from the daily
 * hashes present; also sums txagg's own hashes (those outside the plan) into
 * hot_before.  PST_OK, or PST_EREDIS (reported). */
int mhot_plan(mhot *h);
/* Convert one planned hash (with --check: only judge it).  PST_OK (converted,
 * refused or done by another run: see the report) or PST_EREDIS. */
int mhot_convert(mhot *h, const char *key);
/* The clock in txagg's form.  PST_OK or PST_EREDIS. */
int mhot_clock(mhot *h);
/* Raise system:archived_through to the newest document (r->newest_day),
 * bumping the archive version.  PST_OK or PST_EREDIS. */
int mhot_through(mhot *h);
/* Count the stream entries txagg's aggregators will carry over.  PST_OK or
 * PST_EREDIS. */
int mhot_stream(mhot *h);
/* The cents every daily hash holds now, refused ones left out (hot_after). */
int mhot_total(mhot *h);

#endif
