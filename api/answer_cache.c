/*
 * answer_cache — /stats bodies by (range, format, hot version, archive
 * version, Redis history number); see answer_cache.h for why a hit is exact.
 *
 * Invariants: a slot's body is exactly the answer computed from a snapshot
 * of its (hot, archive) pair read within its history number; bytes is the
 * sum of the bodies held and never exceeds max_bytes; a slot is only
 * replaced by an entry of another key, of another history number, or of
 * versions that are both >= its own.
 */
#include "answer_cache.h"

#include "dynbuf.h"
#include "records.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_SLOTS 64

typedef struct slot {
    int used;
    int32_t from, to;
    int fmt;
    uint64_t hot, archive, history;
    char *body;
    size_t len;
} slot;

struct answer_cache {
    pthread_rwlock_t lock;
    size_t max_bytes, bytes;
    slot s[ANSWER_SLOTS];
};

answer_cache *answer_cache_new(size_t max_bytes)
{
    answer_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_rwlock_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    return c;
}

void answer_cache_free(answer_cache *c)
{
    if (!c) return;
    for (int i = 0; i < ANSWER_SLOTS; i++) free(c->s[i].body);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

static slot *slot_of(answer_cache *c, int32_t from, int32_t to, int fmt)
{
    uint32_t h = (uint32_t)from * 2654435761u ^ (uint32_t)to * 40503u ^ (uint32_t)fmt * 97u;
    return &c->s[(h ^ h >> 16) % ANSWER_SLOTS];
}

static int same_key(const slot *s, int32_t from, int32_t to, int fmt)
{
    return s->used && s->from == from && s->to == to && s->fmt == fmt;
}

int answer_cache_get(answer_cache *c, int32_t from, int32_t to, int fmt, uint64_t hot, uint64_t archive,
                     uint64_t history, char **buf, size_t *len, size_t *cap)
{
    pthread_rwlock_rdlock(&c->lock);
    const slot *s = slot_of(c, from, to, fmt);
    int hit = same_key(s, from, to, fmt) && s->hot == hot && s->archive == archive && s->history == history &&
              !dynbuf_reserve_array(buf, cap, s->len + 1, 1, REC_BUF_MAX);
    if (hit) {
        memcpy(*buf, s->body, s->len);
        (*buf)[s->len] = '\0';
        *len = s->len;
    }
    pthread_rwlock_unlock(&c->lock);
    return hit;
}

void answer_cache_put(answer_cache *c, int32_t from, int32_t to, int fmt, uint64_t hot, uint64_t archive,
                      uint64_t history, const char *body, size_t len)
{
    if (len > c->max_bytes) return;
    char *copy = malloc(len ? len : 1);
    if (!copy) return;
    memcpy(copy, body, len);
    pthread_rwlock_wrlock(&c->lock);
    slot *s = slot_of(c, from, to, fmt);
    size_t old = s->used ? s->len : 0;
    int newer_held = same_key(s, from, to, fmt) && s->history == history && s->hot >= hot && s->archive >= archive;
    if (!newer_held && c->bytes - old + len <= c->max_bytes) {
        free(s->body);
        c->bytes = c->bytes - old + len;
        *s = (slot){1, from, to, fmt, hot, archive, history, copy, len};
        copy = NULL;
    }
    pthread_rwlock_unlock(&c->lock);
    free(copy);
}
