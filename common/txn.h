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
#include <stdint.h>

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

/*
 * The stream entry of one transaction (docs/CONTRACTS.md "The stream
 * entry"): one field, TXN_ENTRY_FIELD, whose value is five words separated
 * by single spaces —
 *
 *     tx  "2026-01-05T03:33:58Z deposit apple_pay 1687.86 transactions_1_month.csv:2"
 *
 * the UTC time (seconds, `Z`), the type, the method, the amount as the API
 * prints it (money_format: exact, at least one decimal) and the source
 * (file:line, informational; the rest of the value, so it may hold spaces).
 * One field keeps the entry cheap for Redis — a stream entry costs per field
 * to append, to deliver and to reply with — and readable with XRANGE.
 */
#define TXN_ENTRY_FIELD "tx"
/* Room for the head: 20 + 1 + 10 + 1 + 32 + 1 + MONEY_FMT_MAX + 1. */
#define TXN_ENTRY_HEAD_MAX 96

/* Write the value's first four words and the space before the source into
 * buf (TXN_ENTRY_HEAD_MAX bytes): "<ts> <type> <method> <amount> ".  ts is
 * the ISO form (TS_ISO_LEN characters).  Returns the length. */
size_t txn_entry_head(char *buf, const char *ts, int type, const char *method, size_t mlen, int64_t cents);

/* The five words of a value, as pointers into it (not validated: the
 * reader applies the rules).  0, or -1 when there are fewer than four
 * spaces. */
typedef struct txn_entry_words {
    const char *w[5];
    size_t len[5];
} txn_entry_words;
int txn_entry_split(const char *v, size_t len, txn_entry_words *out);

#endif
