/*
 * pyvalue — the values the Python service left behind, read as txagg's:
 * dollar amounts (HINCRBYFLOAT text in Redis, doubles in MongoDB) to integer
 * cents, its naive clock to txagg's clock.  Pure: no I/O.
 *
 * The Python service only ever added amounts with at most two decimals, so a
 * true total is a whole number of cents; what it stored differs from it only
 * by float rounding (about 1e-7 dollars at 1e9 dollars).  A value becomes the
 * nearest whole cent when it lies within PYVALUE_TOL_MICROCENTS millionths of
 * a cent (0.001 cent = 0.00001 dollars) of one; anything further off (e.g.
 * 12.3456, an amount with four decimals) is refused: it is not a sum of
 * 2-decimal amounts and no cent value would be exact.
 *
 * Invariants: the decision and the cents are computed on decimal digits with
 * integer arithmetic only — on the stored text for Redis, on the double's
 * exact value printed by printf for MongoDB — never by a multiplication of a
 * double.  Magnitudes are bounded so that the stored precision is finer than
 * the tolerance (PYVALUE_TEXT_MAX_DIGITS, PYVALUE_DOUBLE_MAX).
 */
#ifndef TXAGG_PYVALUE_H
#define TXAGG_PYVALUE_H

#include <stddef.h>
#include <stdint.h>

#include "timeparse.h"

/* Tolerance around a whole cent, in millionths of a cent (0.001 cent). */
#define PYVALUE_TOL_MICROCENTS 1000
/* Text (HINCRBYFLOAT's long double, 64-bit mantissa): at most 13 integer
 * digits; below 1e13 dollars its spacing is under 1e-6 dollars. */
#define PYVALUE_TEXT_MAX_DIGITS 13
/* Doubles: below 2^35 dollars (about 3.4e10) their spacing is at most 2^-18
 * dollars (0.0004 cent), finer than the tolerance. */
#define PYVALUE_DOUBLE_MAX 34359738368.0
/* Room for any amount pyvalue_double_text prints. */
#define PYVALUE_TEXT_MAX 40

enum {
    PYVALUE_OK = 0,
    PYVALUE_ESYNTAX = -1,   /* not digits[.digits] */
    PYVALUE_ENEGATIVE = -2, /* below zero: not a sum of amounts */
    PYVALUE_ERANGE = -3,    /* too large to know the cent (bounds above) */
    PYVALUE_EFRACTION = -4, /* not within the tolerance of a whole cent */
};

/* "digits[.digits]" dollars (HINCRBYFLOAT's form) to cents. */
int pyvalue_text_cents(const char *s, size_t len, int64_t *cents);
/* A BSON double of dollars to cents. */
int pyvalue_double_cents(double x, int64_t *cents);
/* A BSON integer of whole dollars to cents. */
int pyvalue_int_cents(int64_t dollars, int64_t *cents);
/* Why a value was refused, as a phrase ("is not within 0.001 cent of a whole cent"). */
const char *pyvalue_strerror(int rc);
/* A double as the Python service would print it (shortest text that reads
 * back as the same double, e.g. "12.3456"); buf holds PYVALUE_TEXT_MAX. */
const char *pyvalue_double_text(double x, char *buf, size_t n);

/* The Python service's clock (naive ISO time, UTC; any form of the
 * timestamp rule) as txagg's "YYYY-MM-DDTHH:MM:SSZ" (fraction truncated).
 * 0, or -1 when s is not a timestamp. */
int pyvalue_clock(const char *s, size_t len, char out[TS_ISO_LEN + 1]);

/* 1 when s is a payment method as txagg stores it (lower-case [a-z0-9_-]{1,32}). */
int pyvalue_method_ok(const char *s, size_t len);

#endif
