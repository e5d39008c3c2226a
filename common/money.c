/*
 * money — exact cents; see money.h.
 *
 * Invariants: parsing is digit by digit into an int64 that cannot overflow
 * (at most 12 significant digits are accepted); formatting splits with integer
 * division only, so every printed amount is the exact sum of the cents.
 */
#include "money.h"

#include <string.h>

int money_parse(const char *s, size_t len, int64_t *cents)
{
    size_t i = 0, intdigits = 0, fracdigits = 0;
    int64_t whole = 0, frac = 0;

    while (i < len && s[i] >= '0' && s[i] <= '9') {
        whole = whole * 10 + (s[i] - '0');
        i++;
        if (++intdigits > 10) return MONEY_ESYNTAX;
    }
    if (intdigits == 0) return MONEY_ESYNTAX;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac = frac * 10 + (s[i] - '0');
            i++;
            if (++fracdigits > 2) return MONEY_ESYNTAX;
        }
        if (fracdigits == 0) return MONEY_ESYNTAX;
    }
    if (i != len) return MONEY_ESYNTAX;
    if (fracdigits == 1) frac *= 10;

    int64_t v = whole * 100 + frac;
    if (v < MONEY_MIN_CENTS || v > MONEY_MAX_CENTS) return MONEY_ERANGE;
    *cents = v;
    return MONEY_OK;
}

size_t money_format(int64_t cents, char *buf, size_t n)
{
    /* Digits are written backwards into tmp: no snprintf on the API's hot
     * path.  The magnitude is unsigned so INT64_MIN is printable too. */
    char tmp[MONEY_FMT_MAX];
    char *p = tmp + sizeof tmp;
    int neg = cents < 0;
    uint64_t mag = neg ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    uint64_t whole = mag / 100;
    unsigned frac = (unsigned)(mag % 100);
    if (frac % 10 != 0) {
        *--p = (char)('0' + frac % 10);
        *--p = (char)('0' + frac / 10);
    } else {
        *--p = (char)('0' + frac / 10); /* "x.0" or "x.5" */
    }
    *--p = '.';
    do {
        *--p = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    if (neg) *--p = '-';
    size_t len = (size_t)(tmp + sizeof tmp - p);
    if (n == 0) return 0;
    if (len >= n) len = n - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return len;
}

int money_parse_cents(const char *s, size_t len, int64_t *cents)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;
    if (len && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len) return MONEY_ESYNTAX;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return MONEY_ESYNTAX;
        if (v > (UINT64_C(9223372036854775808) - (uint64_t)(s[i] - '0')) / 10) return MONEY_ERANGE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (!neg && v > (uint64_t)INT64_MAX) return MONEY_ERANGE;
    *cents = neg ? (int64_t)(0 - v) : (int64_t)v;
    return MONEY_OK;
}
