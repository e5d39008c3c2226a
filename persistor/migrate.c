/*
 * migrate — `persistor migrate`: the switch-over from the Python service;
 * see migrate.h.
 */
#include "migrate.h"
#include "cli.h"
#include "log.h"
#include "mcold.h"
#include "mhot.h"
#include "mongo.h"
#include "mreport.h"
#include "persistor.h"
#include "signals.h"

#include <string.h>

static const char usage[] =
    "Usage: persistor migrate [--check] [--help]\n"
    "\n"
    "Converts what the Python service left, in place, to txagg's form — run it after\n"
    "stopping the Python service and before starting txagg:\n"
    "  MongoDB  every day document: amounts (double dollars) to int64 cents, an empty\n"
    "           `batches`, `updated_at` (its `last_updated` dropped), the date kept\n"
    "  Redis    every agg:{day}:{type} hash (HINCRBYFLOAT text) to integer cents, its\n"
    "           day kept in system:tracked_days; system:virtual_clock to txagg's\n"
    "           UTC form; system:archived_through set to the newest document\n"
    "  stream   nothing rewritten: the aggregator counts the Python service's\n"
    "           undelivered and pending entries once (reported here)\n"
    "A value becomes the nearest whole cent only within 0.001 cent of it; any other\n"
    "(e.g. 12.3456) is refused, named with its key or document and field, and\n"
    "nothing of that hash or document is converted.  Safe to repeat, to interrupt\n"
    "and to run again.  Ends with a summary: what was converted, the cents per tier\n"
    "before and after, the stream entries carried over, what was refused.\n"
    "\n"
    "  --check   report what would be converted and refused; write nothing\n"
    "\n"
    "Exit status: 0 all in txagg's form; 1 something refused (fix it, run again);\n"
    "2 bad flag or configuration; 3 stopped by a signal; 4 Redis or MongoDB failed\n"
    "(run again).\n";

int migrate_main(int argc, char **argv)
{
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check")) {
            check = 1;
            continue;
        }
        if (cli_std_flag(argv[i], "persistor migrate", CFG_PERSISTOR, usage)) return MREPORT_EXIT_OK;
        fprintf(stderr, "persistor migrate: unknown argument '%s'\n\n", argv[i]);
        cli_usage(stderr, CFG_PERSISTOR, usage);
        return MREPORT_EXIT_USAGE;
    }
    txagg_config cfg;
    int rc = cli_setup("persistor", CFG_PERSISTOR, &cfg);
    if (rc) return rc;
    /* The Python service's data lives on one Redis, under today's names. */
    if (cli_refuse_partitions("persistor migrate", &cfg)) return MREPORT_EXIT_USAGE;
    return migrate_run(&cfg, check, stdout);
}

/* Both servers answer (one attempt each, within their timeouts). */
static int reachable(persistor *p, mreport *r)
{
    char err[512];
    if (rconn_ensure(p->rc) != 0) {
        mreport_fail(r, "Redis unreachable: %s", rconn_error(p->rc));
        return 0;
    }
    if (mongo_ping(p->mongo, &p->cfg, err, sizeof err) != 0) {
        mreport_fail(r, "MongoDB unreachable: %s", err);
        return 0;
    }
    return 1;
}

static int stopping(mreport *r)
{
    if (sig_stopping()) r->stopped = 1;
    return r->stopped;
}

/* The parts in order; returns at the first failure or stop. */
static void run_parts(persistor *p, mreport *r, mhot *h)
{
    if (!reachable(p, r) || mhot_plan(h) != PST_OK) return;
    for (size_t i = 0; i < h->plan.n; i++)
        if (stopping(r) || mhot_convert(h, h->plan.v[i]) != PST_OK) return;
    if (mhot_clock(h) != PST_OK) return;

    bson_t **docs;
    size_t ndocs;
    if (mcold_load(p, r, &docs, &ndocs) != PST_OK) return;
    int ok = 1;
    for (size_t i = 0; ok && i < ndocs; i++) ok = !stopping(r) && mcold_convert(p, r, docs[i]) == PST_OK;
    mcold_docs_free(docs, ndocs);
    if (!ok || mhot_through(h) != PST_OK || mhot_stream(h) != PST_OK) return;

    if (r->check) { /* nothing written: after = what the tiers would hold */
        r->hot_after = r->hot_before;
        r->cold_after = r->cold_before;
    } else if (mhot_total(h) != PST_OK || mcold_total(p, r) != PST_OK) {
        return;
    }
    if (r->hot_before.cents != r->hot_after.cents || r->hot_before.overflow || r->hot_after.overflow)
        mreport_refuse(r, "Redis cents before and after differ: something else wrote during the migration");
    if (r->cold_before.cents != r->cold_after.cents || r->cold_before.overflow || r->cold_after.overflow)
        mreport_refuse(r, "MongoDB cents before and after differ: something else wrote during the migration");
}

int migrate_run(const txagg_config *cfg, int check, FILE *out)
{
    char err[512];
    persistor *p = persistor_open(cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "persistor migrate: %s\n", err);
        return MREPORT_EXIT_USAGE;
    }
    mreport r;
    mreport_init(&r, check, out);
    mhot h;
    mhot_init(&h, p, &r);
    log_info(check ? "migration check started" : "migration started", "database=%s collection=%s",
             cfg->mongodb_database, cfg->mongodb_collection);
    run_parts(p, &r, &h);
    mreport_print(&r);
    mhot_free(&h);
    persistor_close(p);
    return mreport_status(&r);
}
