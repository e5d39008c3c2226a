/*
 * dynbuf — the one growable buffer of the tree, capped (the shape of curl's
 * dynbuf), and the same growth rule for arrays of elements.
 *
 * A dynbuf holds len bytes followed by a NUL (once anything was added), in
 * at most max bytes counting that NUL: an append that would need more is
 * refused, as is one whose size does not fit in a size_t.  Memory grows by
 * doubling, is kept by dynbuf_reset (so a reused buffer allocates nothing in
 * the steady state) and given back by dynbuf_free.  A refused append leaves
 * the buffer exactly as it was.
 *
 * dynbuf_reserve_array grows any typed array `T *arr` with capacity `cap`
 * (in elements) to hold n elements, under the same rules: n * elem is
 * checked for overflow and against max (in bytes) before anything is
 * allocated.  It is what every "double the capacity until it fits" loop of
 * the services calls, so none of them multiplies unchecked.
 */
#ifndef TXAGG_DYNBUF_H
#define TXAGG_DYNBUF_H

#include <stdarg.h>
#include <stddef.h>

enum {
    DYNBUF_OK = 0,
    DYNBUF_ENOMEM = -1, /* malloc/realloc failed */
    DYNBUF_ETOOBIG = -2, /* the size overflows or exceeds the cap */
};

typedef struct dynbuf {
    char *p;    /* NULL until the first byte is reserved */
    size_t len; /* bytes held, p[len] == '\0' */
    size_t cap; /* bytes allocated */
    size_t max; /* bytes ever allowed, NUL included */
} dynbuf;

/* An empty buffer that may grow to max bytes (NUL included); allocates
 * nothing. */
void dynbuf_init(dynbuf *b, size_t max);
/* Give the memory back; the buffer is empty and usable again (same max). */
void dynbuf_free(dynbuf *b);
/* Empty it, keeping the memory. */
void dynbuf_reset(dynbuf *b);
/* Room for n more bytes (and the NUL) without another allocation. */
int dynbuf_reserve(dynbuf *b, size_t n);
/* Append n bytes of mem. */
int dynbuf_add(dynbuf *b, const void *mem, size_t n);
/* Append printf-formatted text. */
int dynbuf_printf(dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int dynbuf_vprintf(dynbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The text ("" while nothing was added) and its length. */
static inline const char *dynbuf_ptr(const dynbuf *b) { return b->p ? b->p : ""; }
static inline size_t dynbuf_len(const dynbuf *b) { return b->len; }

/*
 * Make *arrp (a `T **`, passed as void * so no cast is needed) hold at least
 * n elements of elem bytes; *cap is its capacity in elements.  Grows to
 * max(n, 2 * cap) elements (at least 16 on the first allocation), but never
 * beyond max bytes.  DYNBUF_OK (nothing done when n <= *cap), DYNBUF_ETOOBIG
 * when n * elem overflows or exceeds max, DYNBUF_ENOMEM; on failure the
 * array and *cap are unchanged.
 */
int dynbuf_reserve_array(void *arrp, size_t *cap, size_t n, size_t elem, size_t max);

#endif
