/*
 * records — growable record arrays and cold views; see records.h.
 *
 * Invariants: arrays grow by doubling (dynbuf_reserve_array), each within
 * REC_BUF_MAX, and are only shrunk by the *_trim calls between requests; a cold
 * view's docs stay sorted by day because every producer (MongoDB read, cache
 * copy) appends in day order.
 */
#include "records.h"
#include "dynbuf.h"

#include <stdlib.h>
#include <string.h>

static int grow(void *arrp, size_t *cap, size_t need, size_t elem)
{
    return dynbuf_reserve_array(arrp, cap, need, elem, REC_BUF_MAX) ? -1 : 0;
}

rec *rec_push(rec_vec *rv)
{
    if (grow(&rv->v, &rv->cap, rv->n + 1, sizeof *rv->v)) return NULL;
    return &rv->v[rv->n++];
}

rec *frozen_push(frozen_vec *fv, const char *batch, size_t blen)
{
    if (grow(&fv->v, &fv->cap, fv->n + 1, sizeof *fv->v)) return NULL;
    frozen_rec *f = &fv->v[fv->n++];
    f->batch = batch;
    f->blen = blen;
    return &f->r;
}

void frozen_vec_trim(frozen_vec *fv, size_t keep_bytes)
{
    if (fv->cap * sizeof *fv->v > keep_bytes) frozen_vec_free(fv);
}

void frozen_vec_free(frozen_vec *fv)
{
    free(fv->v);
    fv->v = NULL;
    fv->n = fv->cap = 0;
}

int cold_view_push_doc(cold_view *cv, int32_t day)
{
    if (grow(&cv->docs, &cv->cap_docs, cv->ndocs + 1, sizeof *cv->docs)) return -1;
    cold_doc *d = &cv->docs[cv->ndocs++];
    d->day = day;
    d->item_off = (uint32_t)cv->items.n;
    d->nitems = 0;
    d->batch_off = (uint32_t)cv->blen;
    d->batch_len = 0;
    return 0;
}

int cold_view_push_batch(cold_view *cv, const char *id, size_t len)
{
    if (!cv->ndocs) return -1;
    if (grow(&cv->batches, &cv->bcap, cv->blen + len + 1, 1)) return -1;
    memcpy(cv->batches + cv->blen, id, len);
    cv->batches[cv->blen + len] = '\0';
    cv->blen += len + 1;
    cv->docs[cv->ndocs - 1].batch_len += (uint32_t)(len + 1);
    return 0;
}

void cold_view_reset(cold_view *cv)
{
    cv->ndocs = 0;
    cv->items.n = 0;
    cv->blen = 0;
}

void rec_vec_trim(rec_vec *rv, size_t keep_bytes)
{
    if (rv->cap * sizeof *rv->v > keep_bytes) rec_vec_free(rv);
}

void cold_view_trim(cold_view *cv, size_t keep_bytes)
{
    rec_vec_trim(&cv->items, keep_bytes);
    if (cv->cap_docs * sizeof *cv->docs > keep_bytes) {
        free(cv->docs);
        cv->docs = NULL;
        cv->cap_docs = 0;
    }
    if (cv->bcap > keep_bytes) {
        free(cv->batches);
        cv->batches = NULL;
        cv->bcap = 0;
    }
    cold_view_reset(cv);
}

void rec_vec_free(rec_vec *rv)
{
    free(rv->v);
    rv->v = NULL;
    rv->n = rv->cap = 0;
}

void cold_view_free(cold_view *cv)
{
    rec_vec_free(&cv->items);
    free(cv->docs);
    free(cv->batches);
    memset(cv, 0, sizeof *cv);
}

const cold_doc *cold_view_find(const cold_view *cv, int32_t day)
{
    size_t lo = 0, hi = cv->ndocs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cv->docs[mid].day < day) lo = mid + 1;
        else hi = mid;
    }
    return lo < cv->ndocs && cv->docs[lo].day == day ? &cv->docs[lo] : NULL;
}

int cold_doc_has_batch(const cold_view *cv, const cold_doc *d, const char *id, size_t len)
{
    const char *p = cv->batches + d->batch_off, *end = p + d->batch_len;
    while (p < end) {
        size_t l = strlen(p);
        if (l == len && !memcmp(p, id, len)) return 1;
        p += l + 1;
    }
    return 0;
}

int rec_method_ok(const char *s, size_t n)
{
    char norm[TXN_METHOD_MAX + 1];
    return txn_method_normalize(s, n, norm) == (int)n && !memcmp(norm, s, n);
}
