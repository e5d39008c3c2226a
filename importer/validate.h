/*
 * validate — the header and the input rules of one CSV row (docs/CONTRACTS.md
 * "CSV input"); pure: no I/O, the wall clock is an argument.
 */
#ifndef TXAGG_VALIDATE_H
#define TXAGG_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "csv_reader.h"
#include "timeparse.h"
#include "txn.h"

/* Rejection reasons, in the order they are checked (one per row). */
enum reject_reason {
    REJECT_NONE = 0,
    REJECT_FIELD_COUNT,
    REJECT_TIMESTAMP,
    REJECT_TYPE,
    REJECT_PAYMENT_METHOD,
    REJECT_AMOUNT,
    REJECT_SLEEP_MS,
    REJECT_NREASONS
};

/* "field_count", "timestamp", ... (the dead-letter `reason` field). */
const char *validate_reason_name(int reason);

#define SLEEP_MS_MAX 60000

/* Column positions found in the header. */
typedef struct header_map {
    int nfields; /* fields in the header: every row must have as many */
    int ts, type, method, amount;
    int sleep_ms; /* -1 when there is no sleep_ms column */
} header_map;

/*
 * Map the header record: names trimmed and case-insensitive, any order,
 * extra columns ignored.  Returns 0, or -1 with err naming the missing (or
 * duplicated) column.
 */
int validate_header(const csv_record *rec, header_map *h, char *err, size_t errlen);

/* An accepted row, ready for the stream entry. */
typedef struct valid_row {
    int64_t epoch;                     /* UTC seconds */
    int type;                          /* TXN_DEPOSIT / TXN_WITHDRAWAL */
    char method[TXN_METHOD_MAX + 1];   /* lower-cased */
    int64_t cents;
} valid_row;

/*
 * Check a data record.  now: wall-clock UTC seconds at import; max_future_days:
 * MAX_FUTURE_DAYS.  Returns REJECT_NONE with out filled, or the first failing
 * reason.  *sleep_ms is the row's sleep_ms whenever that column is valid (0
 * when absent or empty), also for a row rejected for another reason, so the
 * pacing of a replay does not depend on the other fields; 0 otherwise.
 */
int validate_row(const header_map *h, const csv_record *rec, int64_t now, int max_future_days, valid_row *out,
                 int64_t *sleep_ms);

/* sleep_ms text: empty → 0; digits only, 0..SLEEP_MS_MAX.  0 or -1. */
int validate_sleep_ms(const char *s, size_t len, int64_t *ms);

#endif
