/*
 * app — the state the api's modules share: the process-wide api_app and the
 * per-thread api_worker.  Only types: server.c creates and frees them,
 * routes.c reads them, so neither module needs the other's header for them.
 *
 * Invariants: an api_app outlives every civetweb thread that can see it; an
 * api_worker belongs to one worker thread (init_thread to exit_thread) and
 * is touched by that thread only.
 */
#ifndef TXAGG_API_APP_H
#define TXAGG_API_APP_H

#include <mongoc/mongoc.h>
#include <stddef.h>

#include "cold_cache.h"
#include "config.h"
#include "redis.h"
#include "stats.h"

/* Bound of the cold cache (see cold_cache.h). */
#define API_COLD_CACHE_BYTES ((size_t)8 << 20)
/* Bound of the answer cache (see answer_cache.h): 64 slots of a few KB. */
#define API_ANSWER_CACHE_BYTES ((size_t)1 << 20)
/* Snapshot + MongoDB rounds of one /stats request before 503. */
#define API_MAX_ATTEMPTS 5

typedef struct api_app {
    txagg_config cfg;
    size_t token_len;
    mongoc_client_pool_t *pool;
    cold_cache *cache;
    answer_cache *answers;
    stats_env env;
    struct mg_context *ctx;
    int port; /* the port actually bound */
} api_app;

typedef struct api_worker {
    rconn *rc;
    stats_scratch stats;
} api_worker;

#endif
