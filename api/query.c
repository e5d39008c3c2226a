/*
 * query — /stats parameters; see query.h for the rules.
 *
 * Invariants: every byte read is inside q[0..len) (the fuzz target passes
 * buffers that are not NUL-terminated); decoding goes through fixed stack
 * buffers at least as long as the raw input, since percent-decoding never
 * lengthens text; the first rule broken is the one reported, in this order:
 * size, NUL, names (unknown, repeated), values (NUL, size), presence, date
 * shape, calendar, order, span.
 */
#include "query.h"
#include "timeparse.h"

#include <civetweb.h>
#include <stdio.h>
#include <string.h>

enum { P_FROM = 0, P_TO = 1, P_N = 2 };
static const char *const param_names[P_N] = {"from_date", "to_date"};

/* "'text'" when text is short printable ASCII worth echoing, else "". */
static const char *echo(const char *s, size_t n, char *buf, size_t bufsz)
{
    if (n == 0 || n > 32 || bufsz < n + 3) return "";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '\'' || c == '"' || c == '\\') return "";
    }
    buf[0] = '\'';
    memcpy(buf + 1, s, n);
    buf[n + 1] = '\'';
    buf[n + 2] = '\0';
    return buf;
}

/* Decode src[0..n) into dst (room for n + 1 bytes); returns the decoded length. */
static size_t decode(const char *src, size_t n, char *dst, size_t dstsz)
{
    if (n == 0) {
        dst[0] = '\0';
        return 0;
    }
    int d = mg_url_decode(src, (int)n, dst, (int)dstsz, 1);
    return d < 0 ? 0 : (size_t)d; /* cannot happen: dst is never too small */
}

static int is_date_shape(const char *s, size_t n)
{
    if (n != TS_DAY_LEN) return 0;
    for (size_t i = 0; i < n; i++) {
        int want_dash = i == 4 || i == 7;
        if (want_dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9')) return 0;
    }
    return 1;
}

int query_parse_stats(const char *q, size_t len, int max_range_days, query_range *out, char *err, size_t errlen)
{
    char name[QUERY_MAX_LEN + 1], value[QUERY_MAX_LEN + 1], e1[40];
    char vals[P_N][QUERY_VALUE_MAX + 1];
    size_t vlen[P_N] = {0, 0};
    int have[P_N] = {0, 0};

    if (errlen) err[0] = '\0';
    if (!q) len = 0;
    if (len > QUERY_MAX_LEN) {
        snprintf(err, errlen, "query string too long (at most %d bytes)", QUERY_MAX_LEN);
        return -1;
    }
    if (len && memchr(q, '\0', len)) {
        snprintf(err, errlen, "query string contains a NUL byte");
        return -1;
    }

    for (size_t i = 0; i < len;) {
        const char *seg = q + i;
        const char *amp = memchr(seg, '&', len - i);
        size_t seglen = amp ? (size_t)(amp - seg) : len - i;
        i += seglen + 1;
        if (seglen == 0) continue;
        const char *eq = memchr(seg, '=', seglen);
        size_t rawname = eq ? (size_t)(eq - seg) : seglen;
        size_t nlen = decode(seg, rawname, name, sizeof name);
        if (memchr(name, '\0', nlen)) {
            snprintf(err, errlen, "a parameter name contains a NUL byte");
            return -1;
        }
        int p = -1;
        for (int k = 0; k < P_N; k++)
            if (nlen == strlen(param_names[k]) && !memcmp(name, param_names[k], nlen)) p = k;
        if (p < 0) {
            const char *shown = echo(name, nlen, e1, sizeof e1);
            snprintf(err, errlen, "unknown parameter %s%s(expected from_date and to_date)", shown,
                     *shown ? " " : "");
            return -1;
        }
        if (have[p]) {
            snprintf(err, errlen, "parameter %s is given more than once", param_names[p]);
            return -1;
        }
        size_t vl = eq ? decode(eq + 1, seglen - rawname - 1, value, sizeof value) : 0;
        if (vl && memchr(value, '\0', vl)) {
            snprintf(err, errlen, "%s contains a NUL byte", param_names[p]);
            return -1;
        }
        if (vl > QUERY_VALUE_MAX) {
            snprintf(err, errlen, "%s is too long (at most %d bytes)", param_names[p], QUERY_VALUE_MAX);
            return -1;
        }
        memcpy(vals[p], value, vl);
        vals[p][vl] = '\0';
        vlen[p] = vl;
        have[p] = 1;
    }

    int64_t day[P_N] = {0, 0};
    for (int k = 0; k < P_N; k++) {
        if (!have[k]) {
            snprintf(err, errlen, "missing parameter %s (a date YYYY-MM-DD)", param_names[k]);
            return -1;
        }
    }
    for (int k = 0; k < P_N; k++) {
        if (!is_date_shape(vals[k], vlen[k])) {
            const char *shown = echo(vals[k], vlen[k], e1, sizeof e1);
            snprintf(err, errlen, "%s must be a date YYYY-MM-DD%s%s", param_names[k], *shown ? ", got " : "",
                     shown);
            return -1;
        }
        if (ts_parse_day(vals[k], vlen[k], &day[k]) != 0) {
            snprintf(err, errlen, "%s %s is not a real calendar date (years 1970-9999)", param_names[k], vals[k]);
            return -1;
        }
    }
    if (day[P_FROM] > day[P_TO]) {
        snprintf(err, errlen, "from_date %s is after to_date %s", vals[P_FROM], vals[P_TO]);
        return -1;
    }
    int64_t span = day[P_TO] - day[P_FROM] + 1;
    if (span > max_range_days) {
        snprintf(err, errlen, "the range spans %lld days, more than the limit of %d (MAX_RANGE_DAYS)",
                 (long long)span, max_range_days);
        return -1;
    }
    out->from_day = day[P_FROM];
    out->to_day = day[P_TO];
    return 0;
}
