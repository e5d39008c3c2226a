/*
 * reply_arena — see reply_arena.h.
 *
 * Invariants: objects are laid out exactly as hiredis's own redisReply (so
 * the rest of the code reads them unchanged) and linked into their parent
 * array the way hiredis's default functions do; the arena in use is found
 * through a thread-local pointer, set only between begin and end on the
 * thread that owns both the context and the arena.
 */
#include "reply_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (16u * 1024u) /* a 7-day snapshot reply takes ~14 KiB */

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    _Alignas(16) char mem[];
} chunk;

struct reply_arena {
    chunk *head; /* the chunk being filled; the first chunk is last in the list */
};

static _Thread_local reply_arena *current;

static void *arena_alloc(size_t n)
{
    reply_arena *a = current;
    n = (n + 15) & ~(size_t)15;
    chunk *c = a->head;
    if (!c || c->used + n > c->size) {
        size_t size = n > CHUNK ? n : CHUNK;
        chunk *nc = malloc(sizeof *nc + size);
        if (!nc) return NULL;
        nc->next = c;
        nc->used = 0;
        nc->size = size;
        a->head = c = nc;
    }
    void *p = c->mem + c->used;
    c->used += n;
    return p;
}

static redisReply *new_reply(const redisReadTask *task, int type)
{
    redisReply *r = arena_alloc(sizeof *r);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    char *s = arena_alloc(len + 1);
    if (!s) return NULL;
    memcpy(s, str, len);
    s[len] = '\0';
    redisReply *r = new_reply(task, task->type);
    if (!r) return NULL;
    r->str = s;
    r->len = len;
    return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
    redisReply **el = NULL;
    if (elements > 0) {
        el = arena_alloc((size_t)elements * sizeof *el);
        if (!el) return NULL;
        memset(el, 0, (size_t)elements * sizeof *el);
    }
    redisReply *r = new_reply(task, REDIS_REPLY_ARRAY);
    if (!r) return NULL;
    r->elements = elements > 0 ? (size_t)elements : 0;
    r->element = el;
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = new_reply(task, REDIS_REPLY_INTEGER);
    if (r) r->integer = value;
    return r;
}

static void *create_nil(const redisReadTask *task) { return new_reply(task, REDIS_REPLY_NIL); }

static void free_object(void *obj) { (void)obj; /* the arena is reset as a whole */ }

static redisReplyObjectFunctions arena_fns = {create_string, create_array, create_integer, create_nil,
                                              free_object};

reply_arena *reply_arena_new(void) { return calloc(1, sizeof(reply_arena)); }

void reply_arena_reset(reply_arena *a)
{
    while (a->head && a->head->next) {
        chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
    if (a->head) a->head->used = 0;
}

void reply_arena_free(reply_arena *a)
{
    if (!a) return;
    reply_arena_reset(a);
    free(a->head);
    free(a);
}

redisReplyObjectFunctions *reply_arena_begin(redisContext *c, reply_arena *a)
{
    redisReplyObjectFunctions *old = c->reader->fn;
    current = a;
    c->reader->fn = &arena_fns;
    return old;
}

void reply_arena_end(redisContext *c, redisReplyObjectFunctions *old)
{
    c->reader->fn = old;
    current = NULL;
}
