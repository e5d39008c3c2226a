/*
 * timeparse — see timeparse.h.
 *
 * The calendar conversions are Howard Hinnant's days_from_civil /
 * civil_from_days algorithms (public domain), exact for any int64 year range
 * we accept.  The parser reads fixed positions; every branch rejects rather
 * than guesses.
 */
#include "timeparse.h"

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int ts_is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned ts_days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12) return 0;
    return m == 2 && ts_is_leap(y) ? 29u : dim[m - 1];
}

int64_t ts_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void ts_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t ts_day_of(int64_t epoch)
{
    int64_t q = epoch / 86400;
    if (epoch % 86400 < 0) q--;
    return q;
}

static int parse_date(const char *s, int *y, int *mo, int *d)
{
    if (digits(s, 4, y) || s[4] != '-' || digits(s + 5, 2, mo) || s[7] != '-' || digits(s + 8, 2, d))
        return -1;
    if (*y < 1970 || *mo < 1 || *mo > 12 || *d < 1 || (unsigned)*d > ts_days_in_month(*y, (unsigned)*mo))
        return -1;
    return 0;
}

int ts_parse_day(const char *s, size_t len, int64_t *day)
{
    int y, mo, d;
    if (len != TS_DAY_LEN || parse_date(s, &y, &mo, &d)) return -1;
    *day = ts_days_from_civil(y, (unsigned)mo, (unsigned)d);
    return 0;
}

int ts_parse(const char *s, size_t len, int64_t *epoch)
{
    int y, mo, d, h, mi, se;
    if (len < 19) return -1;
    if (parse_date(s, &y, &mo, &d)) return -1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return -1;
    if (digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se))
        return -1;
    if (h > 23 || mi > 59 || se > 59) return -1;

    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        if (i == start || i - start > 9) return -1; /* at most nanoseconds */
    }
    int64_t offset = 0;
    if (i < len) {
        if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
            i++;
        } else if ((s[i] == '+' || s[i] == '-') && len - i == 6) {
            int oh, om;
            if (digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || digits(s + i + 4, 2, &om)) return -1;
            if (oh > 23 || om > 59) return -1;
            offset = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
            i = len;
        } else {
            return -1;
        }
    }
    if (i != len) return -1;

    int64_t local = ts_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
    int64_t utc = local - offset;
    if (utc < 0 || utc >= ts_days_from_civil(10000, 1, 1) * 86400) return -1;
    *epoch = utc;
    return 0;
}

/* The n last decimal digits of v at p, then sep; returns the position after
 * sep.  Manual formatting: fixed width, no snprintf truncation warnings. */
static char *put_digits(char *p, unsigned v, int n, char sep)
{
    for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
    p[n] = sep;
    return p + n + 1;
}

void ts_format_day(int64_t day, char *buf)
{
    int64_t y;
    unsigned m, d;
    ts_civil_from_days(day, &y, &m, &d);
    char *p = put_digits(buf, (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y), 4, '-');
    p = put_digits(p, m, 2, '-');
    put_digits(p, d, 2, '\0');
}

void ts_format_iso(int64_t epoch, char *buf)
{
    int64_t day = ts_day_of(epoch);
    int64_t sod = epoch - day * 86400;
    ts_format_day(day, buf);
    buf[10] = 'T';
    char *p = put_digits(buf + 11, (unsigned)(sod / 3600), 2, ':');
    p = put_digits(p, (unsigned)(sod / 60 % 60), 2, ':');
    p = put_digits(p, (unsigned)(sod % 60), 2, 'Z');
    *p = '\0';
}
