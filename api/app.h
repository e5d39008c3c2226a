/*
 * app — the state the api's modules share: the process-wide api_app and the
 * per-thread api_worker.  Only types: server.c creates and frees them,
 * routes.c reads them, so neither module needs the other's header for them.
 *
 * Invariants: an api_app outlives every civetweb thread that can see it; an
 * api_worker belongs to one worker thread (init_thread to exit_thread) and
 * is touched by that thread only — its tier too (hiredis contexts and the
 * cluster layer's slot map are not thread-safe: one tier per thread).
 */
#ifndef TXAGG_API_APP_H
#define TXAGG_API_APP_H

#include <mongoc/mongoc.h>
#include <stddef.h>

#include "cold_cache.h"
#include "config.h"
#include "redis.h"
#include "stats.h"
#include "tier.h"

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
    /* 1 once the number of partitions was checked against Redis
     * (tier_check_layout), by the service loop or a worker; -1 when Redis
     * holds another layout (the loop then stops the process, exit 2) */
    int layout; /* atomic: __atomic_load_n / __atomic_store_n */
} api_app;

typedef struct api_worker {
    tier t;    /* this thread's partitions and connections (REDIS_PARTITIONS, REDIS_CLUSTER) */
    rconn *rc; /* untagged: the one connection, tier_conn(&t, 0); tagged: NULL */
    stats_scratch stats;
} api_worker;

#endif
