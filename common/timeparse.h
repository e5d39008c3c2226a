/*
 * timeparse — the timestamp rule (docs/CONTRACTS.md "CSV input") and UTC
 * day arithmetic.
 *
 *   YYYY-MM-DD[T| ]HH:MM:SS[.fraction][Z|±HH:MM]
 *
 * No offset means UTC.  The instant is converted to UTC; the row's day is its
 * UTC date.  A real calendar date and time is required (no Feb 30, no hour 24,
 * no second 60), the written year must be >= 1970 and the UTC instant must not
 * fall before 1970-01-01; offsets beyond ±23:59 are refused.  The fraction is
 * truncated (the stream keeps whole seconds).  Days are counted from
 * 1970-01-01 (day 0) with the proleptic Gregorian calendar.
 */
#ifndef TXAGG_TIMEPARSE_H
#define TXAGG_TIMEPARSE_H

#include <stddef.h>
#include <stdint.h>

#define TS_DAY_LEN 10 /* "YYYY-MM-DD" */
#define TS_ISO_LEN 20 /* "YYYY-MM-DDTHH:MM:SSZ" */

/* Parse a timestamp (no surrounding spaces) into UTC seconds since the epoch.
 * Returns 0, or -1 when the text breaks the rule. */
int ts_parse(const char *s, size_t len, int64_t *epoch);

/* Parse exactly "YYYY-MM-DD" (a real date, year 1970..9999) into a day number. */
int ts_parse_day(const char *s, size_t len, int64_t *day);

int64_t ts_days_from_civil(int64_t y, unsigned m, unsigned d);
void ts_civil_from_days(int64_t day, int64_t *y, unsigned *m, unsigned *d);
int ts_is_leap(int64_t y);
unsigned ts_days_in_month(int64_t y, unsigned m);

/* Day number of an instant (floor division, so instants before 1970 work). */
int64_t ts_day_of(int64_t epoch);

/* "YYYY-MM-DD" of a day number; buf holds at least TS_DAY_LEN + 1. */
void ts_format_day(int64_t day, char *buf);
/* "YYYY-MM-DDTHH:MM:SSZ"; buf holds at least TS_ISO_LEN + 1. */
void ts_format_iso(int64_t epoch, char *buf);

#endif
