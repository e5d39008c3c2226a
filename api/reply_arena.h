/*
 * reply_arena — hiredis replies built in a per-thread bump arena instead of
 * one malloc per element.
 *
 * A /stats snapshot reply has ~170 elements; hiredis's default reader makes
 * two allocations per element and freeReplyObject frees them one by one,
 * which showed as ~17% of the API's CPU.  hiredis lets a reader use other
 * object functions (redisReplyObjectFunctions); these build the same
 * redisReply structs in an arena that is reset, not freed, per request.
 *
 * Rules: replies read while reply_arena_begin() is in effect must never be
 * passed to freeReplyObject; call reply_arena_end() before the context
 * reads anything else, except after an I/O error — then drop the context
 * with the arena functions still installed (the reader's free of a partial
 * reply is then a no-op, as it must be).
 */
#ifndef TXAGG_API_REPLY_ARENA_H
#define TXAGG_API_REPLY_ARENA_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct reply_arena reply_arena;

reply_arena *reply_arena_new(void);
void reply_arena_free(reply_arena *a);
/* Forget every reply built in the arena (keeps the first chunk). */
void reply_arena_reset(reply_arena *a);

/* Make c's reader build replies in a (this thread only); returns the
 * functions to give back to reply_arena_end. */
redisReplyObjectFunctions *reply_arena_begin(redisContext *c, reply_arena *a);
void reply_arena_end(redisContext *c, redisReplyObjectFunctions *old);

#endif
