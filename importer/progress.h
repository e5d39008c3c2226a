/*
 * progress — what an import did, told three ways: the counters of /metrics,
 * a progress line on a terminal (refreshed about twice a second), and a
 * summary per file and in total (logfmt lines always; a readable block on a
 * terminal).
 */
#ifndef TXAGG_PROGRESS_H
#define TXAGG_PROGRESS_H

#include <stdint.h>

#include "validate.h"

/* Counts of one file, or of the whole run. */
typedef struct import_counts {
    int64_t read;      /* data records parsed in this run (header excluded) */
    int64_t skipped;   /* of those, already committed by an earlier run */
    int64_t published; /* accepted rows committed to the stream */
    int64_t rejected[REJECT_NREASONS]; /* committed dead letters, by reason */
    int64_t batches;   /* committed batches */
} import_counts;

typedef struct progress progress;

/* tty: draw the progress line and the readable summaries (stderr). */
progress *progress_new(int tty);
void progress_free(progress *p);

/* A file starts: its name and size in bytes (0 = unknown, e.g. stdin). */
void progress_file_begin(progress *p, const char *name, uint64_t size);
/* The counts of the current file (kept by the caller, read at each tick). */
import_counts *progress_counts(progress *p);
/* Cheap; redraws the line when due.  offset: bytes of the file consumed. */
void progress_tick(progress *p, uint64_t offset);
/* Wipe the progress line before other output (no-op off a terminal). */
void progress_clear(progress *p);
/* A file is over; status: "imported", "already imported", "stopped",
 * "failed".  Logs its summary and adds its counts to the total. */
void progress_file_end(progress *p, const char *status);
/* The summary of the whole run. */
void progress_total(progress *p);

#endif
