/*
 * batch — one read of the stream, parsed and pre-aggregated in memory.
 *
 * A batch is the unit the apply script commits atomically (hand-off 2 of
 * docs/CONTRACTS.md "Exactly once"): the stream ids it acknowledges, the per (day, type, method) sums
 * of its valid entries, the set of their days, their greatest timestamp, and
 * the dead letters of its malformed entries.  It is pure (no I/O), so the
 * parsing rules are unit-tested without Redis.
 *
 * Entry contract (the importer writes it; common/txn.h, docs/CONTRACTS.md
 * "The stream entry"): one field tx = "<ts> <type> <method> <amount> <src>".
 * The previous format — fields ts, type, method, cents (a decimal integer),
 * src — is read too, so a rolling upgrade drains what older importers left.
 * The same rules as the importer's (timeparse, txn, money) decide validity:
 * ts UTC ISO seconds, type deposit|withdrawal, method [a-z0-9_-]{1,32},
 * amount 0.01 to 1,000,000,000.00; anything else — a missing, duplicated or
 * invalid field or word — makes the entry malformed: it is dead-lettered
 * and acknowledged, never counted.  An entry
 * returned without fields ([id, nil]: deleted or trimmed while pending) is
 * "gone": acknowledged only.
 *
 * The Python service's entries (timestamp, type, payment_method, amount in
 * dollars, sleep_ms), left in the stream at the switch-over, are read too —
 * an entry is taken for one when it has none of ts/method/cents and one of
 * timestamp/payment_method/amount — by the CSV input rules (the amount by
 * money_parse), so each counts once like the row it came from.
 *
 * Memory: a batch is reused for every read; nothing is allocated per entry
 * once its buffers have grown to the batch size.  Ids are NOT copied: they
 * point into the caller's reply, which must outlive the batch's use.
 */
#ifndef TXAGG_BATCH_H
#define TXAGG_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "dynbuf.h"
#include "timeparse.h"
#include "txn.h"

/* Dead-letter reasons of stream entries (transactions:rejected): a malformed
 * entry; a valid entry whose counter refused it (see batch_add_refused). */
#define BATCH_REASON_MALFORMED "malformed_entry"
#define BATCH_REASON_REFUSED "counter_refused"
/* Dead-letter raw text is cut at this many bytes (an entry is tiny; a bogus
 * one must not blow up the script's arguments). */
#define BATCH_RAW_MAX 4096
/* The most entries one batch holds (batch_add refuses more, as out of
 * memory): ten times the BATCH_SIZE bound, so no read reaches it; it caps
 * every array sized by a batch. */
#define BATCH_ENTRIES_MAX 1000000

/* One parsed, valid entry. */
typedef struct batch_txn {
    int64_t epoch; /* UTC seconds */
    int64_t day;   /* UTC day number */
    int type;      /* TXN_DEPOSIT / TXN_WITHDRAWAL */
    int mlen;
    char method[TXN_METHOD_MAX + 1];
    int64_t cents;
} batch_txn;

/* One (day, type, method) sum. */
typedef struct batch_cell {
    int64_t day;
    int64_t cents;
    int type;
    int mlen;
    char method[TXN_METHOD_MAX + 1];
} batch_cell;

/* The cells of one agg:{day}:{type} hash: cells[first .. first+n). */
typedef struct batch_group {
    int64_t day;
    int type;
    char daystr[TS_DAY_LEN + 1];
    size_t first, n;
} batch_group;

/* A dead letter: text lives in the batch's buffer (batch_dead_*). */
typedef struct batch_dead {
    const char *reason; /* BATCH_REASON_* */
    const char *id;
    size_t idlen;
    size_t raw_off, raw_len;
    size_t detail_off, detail_len;
} batch_dead;

typedef struct batch {
    /* every entry's id, ascending (batch_finish sorts if needed) */
    const char **ids;
    size_t *idlens;
    size_t n_ids, cap_ids;
    size_t n_valid, n_malformed, n_refused, n_gone; /* dead letters: n_malformed + n_refused */
    int64_t max_epoch; /* greatest ts of the valid entries; -1 when none */
    int unsorted;      /* ids arrived out of order (batch_finish sorts) */
    uint64_t last_ms, last_seq;

    /* (day, type, method) → cents, open addressing over cells */
    batch_cell *cells;
    size_t n_cells, cap_cells;
    uint32_t *slots; /* cell index + 1, 0 = empty */
    size_t cap_slots;

    /* after batch_finish: cells sorted by (day, type, method) */
    batch_group *groups;
    size_t n_groups, cap_groups;
    size_t n_days; /* distinct days among the groups */

    batch_dead *dead;
    size_t n_dead_cap;
    dynbuf text; /* raw and detail text of dead letters, each NUL-terminated */
} batch;

/* Zeroed batch; 0, or -1 when out of memory. */
int batch_init(batch *b);
void batch_free(batch *b);
/* Empty the batch, keeping its buffers. */
void batch_reset(batch *b);

/*
 * Parse one entry's field/value list (fv[0], fv[1] = name, value; ...;
 * nfv strings), in txagg's format or the Python service's.  0 when valid
 * (out filled), else -1 with a short reason in detail ("cents: not an
 * integer 1..100000000000").
 */
int batch_parse_entry(const char *const *fv, const size_t *fl, size_t nfv, batch_txn *out, char *detail,
                      size_t detail_len);

/*
 * Add one entry.  fv == NULL means the entry is gone ([id, nil]).  Returns 0,
 * or -1 when the id is not a stream id "ms-seq" (the caller treats the whole
 * read as unusable) or memory ran out.
 */
int batch_add(batch *b, const char *id, size_t idlen, const char *const *fv, const size_t *fl, size_t nfv);

/*
 * Add one entry as a dead letter with reason BATCH_REASON_REFUSED and the
 * given detail (the apply script's words), whatever its fields say: a valid
 * entry that the hot tier cannot take (its counter is at the int64 limit or
 * not a counter).  Same return as batch_add.
 */
int batch_add_refused(batch *b, const char *id, size_t idlen, const char *const *fv, const size_t *fl, size_t nfv,
                      const char *detail);

/* Dead letters in the batch (malformed and refused). */
static inline size_t batch_n_dead(const batch *b) { return b->n_malformed + b->n_refused; }

/* Sort ids and cells, build the groups.  Call once, after the last add; no
 * add may follow.  0, or -1 when out of memory (the batch must not be
 * applied). */
int batch_finish(batch *b);

/* "YYYY-MM-DDTHH:MM:SSZ" of max_epoch into buf (TS_ISO_LEN + 1), or "" when
 * the batch has no valid entry. */
void batch_max_ts(const batch *b, char *buf);

/* The text of a dead letter. */
static inline const char *batch_dead_raw(const batch *b, const batch_dead *d)
{
    return dynbuf_ptr(&b->text) + d->raw_off;
}
static inline const char *batch_dead_detail(const batch *b, const batch_dead *d)
{
    return dynbuf_ptr(&b->text) + d->detail_off;
}

/* Parse a stream id "ms-seq" (both decimal, no sign).  0 or -1. */
int batch_id_parse(const char *s, size_t len, uint64_t *ms, uint64_t *seq);

#endif
