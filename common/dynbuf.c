/*
 * dynbuf — capped growable buffer and array growth; see dynbuf.h.
 *
 * Invariants: cap <= max / elem (a buffer never holds more than its cap
 * allows, even after doubling); every size is computed with an overflow
 * check before it reaches realloc; a failed call changes nothing the caller
 * can see (len, cap, the pointer and the text with its NUL).
 */
#include "dynbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation holds at least this many elements and bytes. */
#define FIRST_ELEMS 16
#define FIRST_BYTES 256

int dynbuf_reserve_array(void *arrp, size_t *cap, size_t n, size_t elem, size_t max)
{
    if (n <= *cap) return DYNBUF_OK;
    size_t bytes;
    if (elem == 0 || __builtin_mul_overflow(n, elem, &bytes) || bytes > max) return DYNBUF_ETOOBIG;
    size_t limit = max / elem; /* >= n */
    size_t nc = *cap;
    if (nc == 0) nc = FIRST_BYTES / elem > FIRST_ELEMS ? FIRST_BYTES / elem : FIRST_ELEMS;
    while (nc < n) nc = nc > limit / 2 ? limit : nc * 2;
    if (nc > limit) nc = limit;
    void *p;
    memcpy(&p, arrp, sizeof p); /* arrp is a T **: copy the pointer, never alias it */
    void *np = realloc(p, nc * elem);
    if (!np) return DYNBUF_ENOMEM;
    memcpy(arrp, &np, sizeof np);
    *cap = nc;
    return DYNBUF_OK;
}

void dynbuf_init(dynbuf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void dynbuf_free(dynbuf *b)
{
    free(b->p);
    dynbuf_init(b, b->max);
}

void dynbuf_reset(dynbuf *b)
{
    b->len = 0;
    if (b->p) b->p[0] = '\0';
}

int dynbuf_reserve(dynbuf *b, size_t n)
{
    size_t need;
    if (__builtin_add_overflow(b->len, n, &need) || __builtin_add_overflow(need, 1, &need)) return DYNBUF_ETOOBIG;
    int rv = dynbuf_reserve_array(&b->p, &b->cap, need, 1, b->max);
    if (rv == DYNBUF_OK) b->p[b->len] = '\0';
    return rv;
}

int dynbuf_add(dynbuf *b, const void *mem, size_t n)
{
    int rv = dynbuf_reserve(b, n);
    if (rv != DYNBUF_OK) return rv;
    if (n) memcpy(b->p + b->len, mem, n);
    b->len += n;
    b->p[b->len] = '\0';
    return DYNBUF_OK;
}

int dynbuf_vprintf(dynbuf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    size_t room = b->p ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    int rv = DYNBUF_OK;
    if (n < 0) {
        rv = DYNBUF_ETOOBIG; /* the text does not fit in an int */
    } else if ((size_t)n >= room) {
        rv = dynbuf_reserve(b, (size_t)n);
        if (rv == DYNBUF_OK) vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    if (rv == DYNBUF_OK) b->len += (size_t)n;
    else if (b->p) b->p[b->len] = '\0'; /* a first try may have written past len */
    return rv;
}

int dynbuf_printf(dynbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rv = dynbuf_vprintf(b, fmt, ap);
    va_end(ap);
    return rv;
}
