/*
 * money — amounts as exact integer cents, from the CSV text to the JSON text.
 *
 * No float or double ever holds an amount.  money_parse accepts exactly the
 * amount rule of docs/CONTRACTS.md "CSV input": 1-10 integer digits, optionally '.' and one or two
 * decimals, value 0.01 ... 1,000,000,000.00.  money_format prints cents the way
 * the Python service's JSON did (shortest decimals, at least one): 34340 →
 * "343.4", 10000 → "100.0", 5 → "0.05".
 */
#ifndef TXAGG_MONEY_H
#define TXAGG_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define MONEY_MIN_CENTS INT64_C(1)
#define MONEY_MAX_CENTS INT64_C(100000000000) /* 1,000,000,000.00 */
#define MONEY_FMT_MAX 24                       /* "-92233720368547758.07" + NUL */

enum { MONEY_OK = 0, MONEY_ESYNTAX = -1, MONEY_ERANGE = -2 };

/* Parse s[0..len) (no surrounding spaces) into cents. */
int money_parse(const char *s, size_t len, int64_t *cents);

/* Print cents into buf (at least MONEY_FMT_MAX bytes); returns the length. */
size_t money_format(int64_t cents, char *buf, size_t n);

/* Parse a signed decimal integer of cents (a Redis or stream value). */
int money_parse_cents(const char *s, size_t len, int64_t *cents);

#endif
