/*
 * reply_arena — hiredis replies built in an arena instead of one malloc per
 * element: the aggregator's stream reads (a 1,000-entry XREADGROUP reply is
 * ~13,000 objects; freeing them one by one was half its CPU) and the API's
 * /stats snapshot (~170 elements per request, ~17% of its CPU).
 *
 * hiredis's own hook is used: the context's reader gets a set of
 * redisReplyObjectFunctions for the duration of one redisGetReply.  Objects
 * keep the redisReply layout (so they are read like any reply) but live in
 * the arena: never call freeReplyObject on them; reply_arena_reset() drops
 * them all.  After a read error the context must be dropped (rconn_drop)
 * before anything else is done with it — its reader may hold a partial reply
 * of the arena, which the arena's no-op free then leaves alone.
 *
 * Memory: one chunk sized to the largest reply seen is kept between resets,
 * so the steady state allocates nothing.
 */
#ifndef TXAGG_REPLY_ARENA_H
#define TXAGG_REPLY_ARENA_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct reply_arena_chunk reply_arena_chunk;

typedef struct reply_arena {
    reply_arena_chunk *chunks; /* newest first */
    size_t total;              /* bytes handed out since the last reset */
} reply_arena;

void reply_arena_init(reply_arena *a);
void reply_arena_free(reply_arena *a);
/* Forget every object; keep (or merge into one) the memory. */
void reply_arena_reset(reply_arena *a);
/* n bytes, 16-byte aligned; NULL when out of memory. */
void *reply_arena_alloc(reply_arena *a, size_t n);

/* redisGetReply into the arena.  REDIS_OK with *out set (a reply in the
 * arena), or REDIS_ERR (drop the context, see above). */
int reply_arena_get_reply(redisContext *ctx, reply_arena *a, redisReply **out);

#endif
