/*
 * cold_cache — version-keyed cache of MongoDB day documents; see
 * cold_cache.h for why it is exact.
 *
 * Layout: one malloc per cached document (header, its records, its batch
 * ids), an array of pointers sorted by day, and the sorted, merged list of
 * day ranges read at the cached version.
 *
 * Invariants: every cached document lies inside a covered range; all of it
 * belongs to c->version; bytes <= max_bytes.  A store carrying any other
 * version than the cached one clears first (a newer version: the archive
 * moved; an older one: a slower request or a reset counter — clearing is
 * correct in both cases, lookups of other versions simply miss).
 */
#include "cold_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANGES 256

typedef struct centry {
    int32_t day;
    uint32_t nitems, blen;
    size_t size;
    rec items[]; /* followed by blen bytes of batch ids */
} centry;

typedef struct drange {
    int32_t from, to;
} drange;

struct cold_cache {
    pthread_rwlock_t lock;
    size_t max_bytes, bytes;
    uint64_t version;
    centry **e;
    size_t n, cap;
    drange ranges[MAX_RANGES];
    int nranges;
};

cold_cache *cold_cache_new(size_t max_bytes)
{
    cold_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_rwlock_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    return c;
}

static void clear_locked(cold_cache *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->e[i]);
    c->n = 0;
    c->bytes = 0;
    c->nranges = 0;
}

void cold_cache_free(cold_cache *c)
{
    if (!c) return;
    clear_locked(c);
    free(c->e);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

static int covered(const cold_cache *c, int32_t from, int32_t to)
{
    for (int i = 0; i < c->nranges; i++)
        if (c->ranges[i].from <= from && to <= c->ranges[i].to) return 1;
    return 0;
}

/* First index whose day >= day. */
static size_t lower_bound(const cold_cache *c, int32_t day)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->e[mid]->day < day) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int cold_cache_lookup(cold_cache *c, uint64_t version, int32_t from, int32_t to, cold_view *out)
{
    pthread_rwlock_rdlock(&c->lock);
    int hit = c->version == version && covered(c, from, to);
    if (hit) {
        /* Copy into out; on out-of-memory undo what was appended and miss. */
        size_t ndocs0 = out->ndocs, nitems0 = out->items.n, blen0 = out->blen;
        for (size_t i = lower_bound(c, from); hit && i < c->n && c->e[i]->day <= to; i++) {
            const centry *ce = c->e[i];
            if (cold_view_push_doc(out, ce->day)) {
                hit = 0;
                break;
            }
            for (uint32_t k = 0; k < ce->nitems; k++) {
                rec *r = rec_push(&out->items);
                if (!r) {
                    hit = 0;
                    break;
                }
                *r = ce->items[k];
                out->docs[out->ndocs - 1].nitems++;
            }
            const char *b = (const char *)(ce->items + ce->nitems), *end = b + ce->blen;
            for (; hit && b < end; b += strlen(b) + 1)
                if (cold_view_push_batch(out, b, strlen(b))) hit = 0;
        }
        if (!hit) {
            out->ndocs = ndocs0;
            out->items.n = nitems0;
            out->blen = blen0;
        }
    }
    pthread_rwlock_unlock(&c->lock);
    return hit;
}

static void add_range(cold_cache *c, int32_t from, int32_t to)
{
    /* Merge every range overlapping or adjacent to [from, to] into it. */
    int w = 0;
    for (int i = 0; i < c->nranges; i++) {
        drange r = c->ranges[i];
        if ((int64_t)r.to + 1 >= from && (int64_t)to + 1 >= r.from) {
            if (r.from < from) from = r.from;
            if (r.to > to) to = r.to;
        } else {
            c->ranges[w++] = r;
        }
    }
    c->nranges = w;
    c->ranges[c->nranges++] = (drange){from, to}; /* room: the store cleared a full list first */
}

void cold_cache_store(cold_cache *c, uint64_t version, int32_t from, int32_t to, const cold_view *view)
{
    size_t need = 0;
    for (size_t i = 0; i < view->ndocs; i++)
        need += sizeof(centry) + view->docs[i].nitems * sizeof(rec) + view->docs[i].batch_len;
    if (need > c->max_bytes) return;

    /* Build the entries outside the lock. */
    centry **fresh = view->ndocs ? calloc(view->ndocs, sizeof *fresh) : NULL;
    if (view->ndocs && !fresh) return;
    for (size_t i = 0; i < view->ndocs; i++) {
        const cold_doc *d = &view->docs[i];
        size_t size = sizeof(centry) + d->nitems * sizeof(rec) + d->batch_len;
        centry *ce = malloc(size);
        if (!ce) {
            for (size_t k = 0; k < i; k++) free(fresh[k]);
            free(fresh);
            return;
        }
        ce->day = d->day;
        ce->nitems = d->nitems;
        ce->blen = d->batch_len;
        ce->size = size;
        if (d->nitems) memcpy(ce->items, view->items.v + d->item_off, d->nitems * sizeof(rec));
        if (d->batch_len) memcpy((char *)(ce->items + d->nitems), view->batches + d->batch_off, d->batch_len);
        fresh[i] = ce;
    }

    pthread_rwlock_wrlock(&c->lock);
    if (c->version != version) {
        clear_locked(c);
        c->version = version;
    }
    if (c->bytes + need > c->max_bytes || c->nranges == MAX_RANGES) clear_locked(c);

    /* Merge: old entries outside [from, to] plus the fresh ones, by day. */
    size_t total = c->n + view->ndocs;
    centry **merged = total ? malloc(total * sizeof *merged) : NULL;
    if (total && !merged) {
        pthread_rwlock_unlock(&c->lock);
        for (size_t k = 0; k < view->ndocs; k++) free(fresh[k]);
        free(fresh);
        return;
    }
    size_t m = 0, j = 0;
    for (size_t i = 0; i < c->n; i++) {
        centry *old = c->e[i];
        if (old->day >= from && old->day <= to) { /* replaced by this read */
            c->bytes -= old->size;
            free(old);
            continue;
        }
        while (j < view->ndocs && fresh[j]->day < old->day) merged[m++] = fresh[j++];
        merged[m++] = old;
    }
    while (j < view->ndocs) merged[m++] = fresh[j++];
    free(c->e);
    c->e = merged;
    c->n = m;
    c->cap = total;
    c->bytes += need;
    add_range(c, from, to);
    pthread_rwlock_unlock(&c->lock);
    free(fresh);
}

size_t cold_cache_bytes(cold_cache *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t b = c->bytes;
    pthread_rwlock_unlock(&c->lock);
    return b;
}

size_t cold_cache_docs(cold_cache *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->n;
    pthread_rwlock_unlock(&c->lock);
    return n;
}
