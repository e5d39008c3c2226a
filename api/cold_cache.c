/*
 * cold_cache — version-keyed cache of MongoDB day documents; see
 * cold_cache.h for why it is exact.
 *
 * Layout: one malloc per cached document (header, its records, its batch
 * ids), an array of pointers sorted by day, and the sorted, merged list of
 * day ranges read at the cached version.
 *
 * Invariants: every cached document lies inside a covered range; all of it
 * belongs to (c->history, c->version); bytes <= max_bytes.  A store carrying
 * any other pair than the cached one clears first (a newer version: the archive
 * moved; an older one or another history number: a slower request, a
 * reset counter or a failover — clearing is correct in every case, lookups
 * of other versions simply miss).
 * Flights: every flight in c->flights is unfinished (done = 0) and has its
 * reader; a finished flight is unlinked at once and freed by the last of its
 * reader and waiters (refs).  A reader stores before it marks its flight
 * done, so a waiter woken with rv 0 finds the range covered unless a store
 * of another version (or the memory bound) cleared it in between — then it
 * simply leads a new flight.  Lock order: flight_mu, then the rwlock; no
 * thread holds the rwlock while it takes flight_mu.
 */
#include "cold_cache.h"

#include <pthread.h>
#include <stdio.h>
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

struct cold_flight {
    uint64_t history, version;
    int32_t from, to;
    int done, rv, refs;
    pthread_cond_t cv;
    cold_flight *next;
    char err[256];
};

struct cold_cache {
    pthread_rwlock_t lock;
    pthread_mutex_t flight_mu;
    cold_flight *flights; /* unfinished reads, under flight_mu */
    size_t max_bytes, bytes;
    uint64_t history, version; /* what every entry belongs to */
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
    pthread_mutex_init(&c->flight_mu, NULL);
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
    pthread_mutex_destroy(&c->flight_mu);
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

int cold_cache_lookup(cold_cache *c, uint64_t history, uint64_t version, int32_t from, int32_t to, cold_view *out)
{
    pthread_rwlock_rdlock(&c->lock);
    int hit = c->history == history && c->version == version && covered(c, from, to);
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

void cold_cache_store(cold_cache *c, uint64_t history, uint64_t version, int32_t from, int32_t to,
                      const cold_view *view)
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
    if (c->history != history || c->version != version) {
        clear_locked(c);
        c->history = history;
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

/* ---- single flight ----------------------------------------------------------- */

static void flight_unref(cold_flight *f)
{
    if (--f->refs) return;
    pthread_cond_destroy(&f->cv);
    free(f);
}

int cold_cache_get(cold_cache *c, uint64_t history, uint64_t version, int32_t from, int32_t to, cold_view *out,
                   cold_flight **flight, int *shared_rv, char *err, size_t errlen)
{
    *flight = NULL;
    if (cold_cache_lookup(c, history, version, from, to, out)) return COLD_HIT;
    pthread_mutex_lock(&c->flight_mu);
    for (;;) {
        /* Again under flight_mu: a reader that stored and finished since the
         * lookup above is no longer listed, but its range is covered. */
        if (cold_cache_lookup(c, history, version, from, to, out)) {
            pthread_mutex_unlock(&c->flight_mu);
            return COLD_HIT;
        }
        cold_flight *f = c->flights;
        while (f && !(f->history == history && f->version == version && f->from <= from && to <= f->to)) f = f->next;
        if (!f) {
            f = calloc(1, sizeof *f);
            if (f) {
                f->history = history;
                f->version = version;
                f->from = from;
                f->to = to;
                f->refs = 1;
                pthread_cond_init(&f->cv, NULL);
                f->next = c->flights;
                c->flights = f;
            }
            pthread_mutex_unlock(&c->flight_mu);
            *flight = f; /* NULL (out of memory): lead without a flight, nobody waits */
            return COLD_LEAD;
        }
        f->refs++;
        while (!f->done) pthread_cond_wait(&f->cv, &c->flight_mu);
        int rv = f->rv;
        if (rv && errlen) snprintf(err, errlen, "%s", f->err);
        flight_unref(f);
        if (rv) {
            pthread_mutex_unlock(&c->flight_mu);
            *shared_rv = rv;
            return COLD_SHARED;
        }
    }
}

void cold_cache_finish(cold_cache *c, cold_flight *f, uint64_t history, uint64_t version, int32_t from,
                       int32_t to, int rv, const cold_view *view, const char *err)
{
    if (rv == 0) cold_cache_store(c, history, version, from, to, view);
    if (!f) return;
    pthread_mutex_lock(&c->flight_mu);
    cold_flight **p = &c->flights;
    while (*p && *p != f) p = &(*p)->next;
    if (*p) *p = f->next;
    f->done = 1;
    f->rv = rv;
    if (rv) snprintf(f->err, sizeof f->err, "%s", err ? err : "");
    pthread_cond_broadcast(&f->cv);
    flight_unref(f);
    pthread_mutex_unlock(&c->flight_mu);
}

size_t cold_cache_bytes(cold_cache *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t b = c->bytes;
    pthread_rwlock_unlock(&c->lock);
    return b;
}

#ifdef TXAGG_TESTING
size_t cold_cache_docs(cold_cache *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->n;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

size_t cold_cache_waiting(cold_cache *c)
{
    pthread_mutex_lock(&c->flight_mu);
    size_t n = 0;
    for (const cold_flight *f = c->flights; f; f = f->next) n += (size_t)f->refs - 1;
    pthread_mutex_unlock(&c->flight_mu);
    return n;
}
#endif
