/*
 * query — the /stats query string, parsed and validated.
 *
 * Pure: no I/O, no allocation, no global state, so the unit tests and the
 * fuzz target (tests/fuzz/fuzz_query.c) drive it directly.  The rules are
 * the API contract (README "HTTP API", api/assets/openapi.json):
 *
 *   - at most QUERY_MAX_LEN bytes of raw query string, no raw NUL byte;
 *   - '&'-separated name=value pairs, percent- and '+'-decoded by civetweb's
 *     mg_url_decode; empty pairs ("a=1&&b=2", a trailing '&') are ignored;
 *   - exactly the parameters from_date and to_date, each once: an unknown
 *     parameter is refused (a typo such as from_data is named, not silently
 *     ignored) and so is a repeated one (two values would be ambiguous);
 *   - a decoded value holds at most QUERY_VALUE_MAX bytes and no NUL (%00);
 *   - each date is YYYY-MM-DD, a real calendar date, years 1970-9999;
 *   - from_date <= to_date, and the range, both ends included, spans at
 *     most max_range_days days (MAX_RANGE_DAYS).
 *
 * Every refusal produces one sentence for the {"detail": ...} body; user
 * text is echoed in it only when short and printable ASCII.
 */
#ifndef TXAGG_API_QUERY_H
#define TXAGG_API_QUERY_H

#include <stddef.h>
#include <stdint.h>

#define QUERY_MAX_LEN 1024
#define QUERY_VALUE_MAX 64

typedef struct query_range {
    int64_t from_day; /* days since 1970-01-01, inclusive */
    int64_t to_day;   /* inclusive, >= from_day */
} query_range;

/*
 * Parse the raw (still percent-encoded) query string q[0..len); q may be
 * NULL (no query string).  Returns 0 and fills *out, or -1 with the reason
 * in err (always NUL-terminated when errlen > 0).
 */
int query_parse_stats(const char *q, size_t len, int max_range_days, query_range *out, char *err, size_t errlen);

#endif
