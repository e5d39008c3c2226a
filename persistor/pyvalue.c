/*
 * pyvalue — the Python service's values as txagg's; see pyvalue.h.
 *
 * Rounding on digits: for "W.d1d2d3…" the candidate cents are W*100 + d1d2;
 * the part below the cent, r, is 0.d3d4… of a cent.  Its first six digits q
 * (millionths of a cent) and whether any digit after them is non-zero
 * decide, exactly: r <= tolerance rounds down, r >= 1 - tolerance rounds up,
 * anything between is refused.  Nothing is ever multiplied in floating point.
 *
 * Doubles: "%.20f" prints the double's exact binary value correctly rounded
 * at the 20th decimal (glibc's printf is exact), which is then rounded by the
 * same digit rule.  The 20th-decimal rounding (1e-18 cent) could only move a
 * value lying that close to the tolerance boundary — a line drawn by choice —
 * and never changes which cent a value within the tolerance rounds to.
 */
#include "pyvalue.h"
#include "txn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MICRO 1000000

int pyvalue_text_cents(const char *s, size_t len, int64_t *cents)
{
    size_t i = 0;
    int neg = 0;
    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    size_t int_start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    size_t int_end = i;
    size_t frac_start = i, frac_end = i;
    if (i < len && s[i] == '.') {
        frac_start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        frac_end = i;
        if (frac_end == frac_start) return PYVALUE_ESYNTAX;
    }
    if (int_end == int_start || i != len) return PYVALUE_ESYNTAX;

    /* the integer part without leading zeros */
    size_t a = int_start;
    while (a + 1 < int_end && s[a] == '0') a++;
    int zero = int_end - a == 1 && s[a] == '0';
    for (size_t k = frac_start; zero && k < frac_end; k++)
        if (s[k] != '0') zero = 0;
    if (neg && !zero) return PYVALUE_ENEGATIVE;
    if (int_end - a > PYVALUE_TEXT_MAX_DIGITS) return PYVALUE_ERANGE;

    int64_t whole = 0;
    for (size_t k = a; k < int_end; k++) whole = whole * 10 + (s[k] - '0');
    /* d1 d2 (cents), then q = the next six digits, then the rest */
    int64_t c = whole * 100, q = 0;
    int rest = 0;
    for (size_t n = 0; n < 8; n++) {
        size_t k = frac_start + n;
        int d = k < frac_end ? s[k] - '0' : 0;
        if (n < 2) c += d * (n == 0 ? 10 : 1);
        else q = q * 10 + d;
    }
    for (size_t k = frac_start + 8; k < frac_end; k++)
        if (s[k] != '0') rest = 1;

    if (q < PYVALUE_TOL_MICROCENTS || (q == PYVALUE_TOL_MICROCENTS && !rest)) *cents = c;
    else if (q >= MICRO - PYVALUE_TOL_MICROCENTS) *cents = c + 1;
    else return PYVALUE_EFRACTION;
    return PYVALUE_OK;
}

int pyvalue_double_cents(double x, int64_t *cents)
{
    if (isnan(x)) return PYVALUE_ESYNTAX;
    if (x < 0) return PYVALUE_ENEGATIVE;
    if (!(x < PYVALUE_DOUBLE_MAX)) return PYVALUE_ERANGE; /* also +inf */
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%.20f", x == 0 ? 0.0 : x); /* -0.0 is zero */
    if (n <= 0 || (size_t)n >= sizeof buf) return PYVALUE_ERANGE;
    return pyvalue_text_cents(buf, (size_t)n, cents);
}

int pyvalue_int_cents(int64_t dollars, int64_t *cents)
{
    if (dollars < 0) return PYVALUE_ENEGATIVE;
    if ((double)dollars >= PYVALUE_DOUBLE_MAX) return PYVALUE_ERANGE;
    *cents = dollars * 100;
    return PYVALUE_OK;
}

const char *pyvalue_strerror(int rc)
{
    switch (rc) {
    case PYVALUE_OK: return "is whole cents";
    case PYVALUE_ESYNTAX: return "is not a decimal number of dollars";
    case PYVALUE_ENEGATIVE: return "is negative (not a sum of amounts)";
    case PYVALUE_ERANGE: return "is too large to know its cents exactly";
    case PYVALUE_EFRACTION: return "is not within 0.001 cent of a whole cent";
    default: return "is not convertible";
    }
}

const char *pyvalue_double_text(double x, char *buf, size_t n)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return buf;
}

int pyvalue_clock(const char *s, size_t len, char out[TS_ISO_LEN + 1])
{
    int64_t epoch;
    if (ts_parse(s, len, &epoch) != 0) return -1;
    ts_format_iso(epoch, out);
    return 0;
}

int pyvalue_method_ok(const char *s, size_t len)
{
    char m[TXN_METHOD_MAX + 1];
    return txn_method_normalize(s, len, m) == (int)len && memcmp(m, s, len) == 0;
}
