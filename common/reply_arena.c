/*
 * reply_arena — arena-backed hiredis reply objects; see reply_arena.h.
 *
 * Invariants: an object is linked into its parent's element array as the
 * default hiredis functions do (the reader relies on it); the reader's
 * functions are the arena's only inside reply_arena_get_reply, and are put
 * back after a complete reply (after an error the caller drops the context).
 */
#include "reply_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (256 * 1024)

struct reply_arena_chunk {
    reply_arena_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

void reply_arena_init(reply_arena *a) { memset(a, 0, sizeof *a); }

void reply_arena_free(reply_arena *a)
{
    while (a->chunks) {
        reply_arena_chunk *n = a->chunks->next;
        free(a->chunks);
        a->chunks = n;
    }
    a->total = 0;
}

static reply_arena_chunk *chunk_new(size_t cap)
{
    reply_arena_chunk *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

void reply_arena_reset(reply_arena *a)
{
    if (a->chunks && a->chunks->next) { /* several chunks: replace them by one that fits them all */
        size_t want = a->total + a->total / 4;
        reply_arena_free(a);
        a->chunks = chunk_new(want < CHUNK_MIN ? CHUNK_MIN : want);
    } else if (a->chunks) {
        a->chunks->used = 0;
    }
    a->total = 0;
}

void *reply_arena_alloc(reply_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    reply_arena_chunk *c = a->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = c ? c->cap * 2 : CHUNK_MIN;
        if (cap < n) cap = n;
        reply_arena_chunk *nc = chunk_new(cap);
        if (!nc) return NULL;
        nc->next = c;
        a->chunks = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->total += n;
    return p;
}

/* ---- hiredis object functions -------------------------------------------- */

static redisReply *obj_new(const redisReadTask *t, size_t extra)
{
    redisReply *r = reply_arena_alloc(t->privdata, sizeof *r + extra);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->type = t->type;
    if (t->parent) {
        redisReply *parent = t->parent->obj;
        parent->element[t->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *t, char *s, size_t len)
{
    redisReply *r = obj_new(t, len + 1);
    if (!r) return NULL;
    r->str = (char *)(r + 1);
    memcpy(r->str, s, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *create_array(const redisReadTask *t, int n)
{
    redisReply *r = obj_new(t, 0);
    if (!r) return NULL;
    if (n > 0) {
        r->element = reply_arena_alloc(t->privdata, (size_t)n * sizeof *r->element);
        if (!r->element) return NULL;
        memset(r->element, 0, (size_t)n * sizeof *r->element);
    }
    r->elements = (size_t)n;
    return r;
}

static void *create_integer(const redisReadTask *t, long long v)
{
    redisReply *r = obj_new(t, 0);
    if (r) r->integer = v;
    return r;
}

static void *create_nil(const redisReadTask *t)
{
    redisReply *r = obj_new(t, 0);
    if (r) r->type = REDIS_REPLY_NIL; /* a null array ("*-1") arrives with the task type ARRAY */
    return r;
}

static void free_object(void *p) { (void)p; /* the arena owns it */ }

static redisReplyObjectFunctions arena_functions = {create_string, create_array, create_integer, create_nil,
                                                    free_object};

int reply_arena_get_reply(redisContext *ctx, reply_arena *a, redisReply **out)
{
    redisReplyObjectFunctions *saved_fn = ctx->reader->fn;
    void *saved_priv = ctx->reader->privdata;
    ctx->reader->fn = &arena_functions;
    ctx->reader->privdata = a;
    void *r = NULL;
    int rv = redisGetReply(ctx, &r);
    if (rv != REDIS_OK) return REDIS_ERR; /* the arena's functions stay: the caller drops the context */
    ctx->reader->fn = saved_fn;
    ctx->reader->privdata = saved_priv;
    *out = r;
    return REDIS_OK;
}
