/*
 * records — the unit every tier is reduced to before the merge: one amount
 * of one payment method on one day and side, in integer cents; and the
 * growable arrays a worker thread reuses from request to request.
 *
 * A cold view is what MongoDB says about a range of days: one cold_doc per
 * day that has a document (sorted by day), its amounts as records, and the
 * ids of the archive batches it has applied (NUL-terminated strings packed
 * one after another).  Days of the range without a cold_doc have no
 * document.  The cold cache stores and returns views.
 */
#ifndef TXAGG_API_RECORDS_H
#define TXAGG_API_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "txn.h"

/* Every per-request array and buffer of the api (records, cold views, the
 * snapshot's pipeline, the JSON body) is capped at this many bytes: a
 * request needing more is refused as out of memory (500), so none grows
 * without bound. */
#define REC_BUF_MAX ((size_t)1 << 30)

typedef struct rec {
    int32_t day;  /* days since 1970-01-01 */
    uint8_t type; /* TXN_DEPOSIT / TXN_WITHDRAWAL */
    uint8_t mlen; /* strlen(method) */
    char method[TXN_METHOD_MAX + 1];
    int64_t cents;
} rec;

typedef struct rec_vec {
    rec *v;
    size_t n, cap;
} rec_vec;

typedef struct cold_doc {
    int32_t day;
    uint32_t item_off, nitems;   /* records items.v[item_off .. +nitems) */
    uint32_t batch_off, batch_len; /* batch ids batches[batch_off .. +batch_len) */
} cold_doc;

typedef struct cold_view {
    cold_doc *docs;
    size_t ndocs, cap_docs;
    rec_vec items;
    char *batches;
    size_t blen, bcap;
} cold_view;

/* A record of a frozen hash and the archive batch it belongs to (the id
 * points into the snapshot that produced it). */
typedef struct frozen_rec {
    rec r;
    const char *batch;
    size_t blen;
} frozen_rec;

typedef struct frozen_vec {
    frozen_rec *v;
    size_t n, cap;
} frozen_vec;

/* Append; NULL / -1 only when out of memory. */
rec *rec_push(rec_vec *rv);
rec *frozen_push(frozen_vec *fv, const char *batch, size_t blen);
int cold_view_push_doc(cold_view *cv, int32_t day);
int cold_view_push_batch(cold_view *cv, const char *id, size_t len);
/* Empty without freeing (the arrays are reused). */
void cold_view_reset(cold_view *cv);
/* Free what grew beyond keep_bytes, so one huge request does not pin memory
 * in every worker thread. */
void rec_vec_trim(rec_vec *rv, size_t keep_bytes);
void cold_view_trim(cold_view *cv, size_t keep_bytes);
void rec_vec_free(rec_vec *rv);
void frozen_vec_trim(frozen_vec *fv, size_t keep_bytes);
void frozen_vec_free(frozen_vec *fv);
void cold_view_free(cold_view *cv);

/* The doc of `day` in a view sorted by day, or NULL. */
const cold_doc *cold_view_find(const cold_view *cv, int32_t day);
/* 1 when the doc lists the batch id among its applied batches. */
int cold_doc_has_batch(const cold_view *cv, const cold_doc *d, const char *id, size_t len);

/* 1 when s[0..n) is a stored method name: the txn rule, already lower-case. */
int rec_method_ok(const char *s, size_t n);

#endif
