/*
 * txn — the field rules a transaction obeys wherever it is read: from a CSV
 * row (importer) or from a stream entry (aggregator).
 *
 * type: "deposit" or "withdrawal", case-insensitive on input, lower-case in
 * the stream and in key names.  payment_method: lower-cased, then
 * [a-z0-9_-]{1,32}, which keeps ':' out of Redis keys and '.'/'$' out of
 * MongoDB field paths.
 */
#ifndef TXAGG_TXN_H
#define TXAGG_TXN_H

#include <stddef.h>

enum txn_type { TXN_DEPOSIT = 0, TXN_WITHDRAWAL = 1, TXN_TYPES = 2 };

#define TXN_METHOD_MAX 32

/* Returns TXN_DEPOSIT / TXN_WITHDRAWAL, or -1. */
int txn_type_parse(const char *s, size_t len);
/* "deposit" / "withdrawal" (the stream value and the key suffix). */
const char *txn_type_name(int type);
/* "deposits" / "withdrawals" (the API and MongoDB field). */
const char *txn_type_plural(int type);

/* Lower-case s[0..len) into out (TXN_METHOD_MAX + 1 bytes) and check the
 * rule; returns the length, or -1. */
int txn_method_normalize(const char *s, size_t len, char *out);

#endif
