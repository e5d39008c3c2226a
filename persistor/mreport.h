/*
 * mreport — what `persistor migrate` found, did and refused: the
 * counters of each part, the cents per tier before and after, and the
 * closing summary.
 *
 * Refusals are printed the moment they are found (stdout, one line each,
 * naming the key or document and the field) and logged at ERROR; the
 * summary ends the run.  Invariant: a run that refused anything, failed or
 * was stopped has a non-zero exit status (mreport_status).
 */
#ifndef TXAGG_MREPORT_H
#define TXAGG_MREPORT_H

#include <stdint.h>
#include <stdio.h>

#define MREPORT_MAX_CONSUMERS 8

/* Exit statuses of `persistor migrate`. */
enum {
    MREPORT_EXIT_OK = 0,      /* everything is in txagg's form */
    MREPORT_EXIT_REFUSED = 1, /* something was refused or changed meanwhile: fix it, run again */
    MREPORT_EXIT_USAGE = 2,   /* bad flag or configuration */
    MREPORT_EXIT_STOPPED = 3, /* SIGTERM/SIGINT: run again to finish */
    MREPORT_EXIT_FAILED = 4,  /* Redis or MongoDB failed: run again */
};

/* Sums of cents (int64, overflow noted rather than wrapped). */
typedef struct mreport_sum {
    int64_t cents;
    int overflow;
} mreport_sum;

typedef struct mreport {
    int check; /* --check: nothing is written */
    FILE *out;

    /* Redis agg: hashes */
    int planned_now;          /* this run made the plan */
    int64_t hashes_planned;   /* in the plan when the run started */
    int64_t hashes_converted; /* by this run (or, with --check, would be) */
    int64_t hashes_txagg;     /* outside the plan: txagg's own */
    int64_t hashes_elsewhere; /* converted by another run meanwhile */
    int64_t hashes_refused;
    int64_t fields_converted;
    int64_t keys_ignored; /* agg:* keys that are not daily hashes */
    mreport_sum hot_before, hot_after;
    /* the clock */
    char clock_old[64], clock_new[32];
    int clock_state; /* MREPORT_CLOCK_* */

    /* MongoDB documents */
    int64_t docs_seen, docs_converted, docs_txagg, docs_elsewhere, docs_refused;
    mreport_sum cold_before, cold_after;
    char newest_day[11];
    int through_raised;

    /* the stream */
    int stream_exists, group_exists;
    int64_t stream_len, pending, undelivered;
    int64_t undelivered_python, undelivered_txagg, undelivered_other;
    int n_consumers;
    struct {
        char name[64];
        int64_t pending;
    } consumers[MREPORT_MAX_CONSUMERS];

    int64_t refused; /* every refusal, all parts */
    int failed;      /* a dependency failed: the run is incomplete */
    int stopped;     /* a stop was requested */
    char failure[256];
} mreport;

enum { MREPORT_CLOCK_ABSENT, MREPORT_CLOCK_KEPT, MREPORT_CLOCK_REWRITTEN, MREPORT_CLOCK_REFUSED };

void mreport_init(mreport *r, int check, FILE *out);
/* Print "refused: <what>" and log it; counts one refusal. */
void mreport_refuse(mreport *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record that a dependency failed (the first message is kept). */
void mreport_fail(mreport *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sum += cents, noting an overflow. */
void mreport_add(mreport_sum *s, int64_t cents);
/* The closing summary (stdout) and one INFO log line. */
void mreport_print(const mreport *r);
/* The exit status the run ends with. */
int mreport_status(const mreport *r);

#endif
