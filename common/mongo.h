/*
 * mongo — MongoDB client setup from MONGODB_URI with bounded timeouts.
 *
 * Every client made here has connectTimeoutMS, socketTimeoutMS and
 * serverSelectionTimeoutMS (MONGODB_TIMEOUT_MS unless the URI sets them), so a
 * paused or unreachable server fails a call within seconds instead of hanging
 * the thread.  Error API 2 is set before first use, so a duplicate key is
 * `error.domain == MONGOC_ERROR_SERVER && error.code == 11000`
 * (mongo_is_duplicate_key).  mongoc_client_t is single-threaded; threads share
 * a mongoc_client_pool_t.  The driver's own log lines are routed into
 * log.h's format ("Couldn't send endSessions", harmless on FerretDB, at DEBUG).
 */
#ifndef TXAGG_MONGO_H
#define TXAGG_MONGO_H

#include <mongoc/mongoc.h>
#include <stdint.h>

#include "config.h"

/* mongoc_init() and the log handler, once per process (shared-memory
 * counters off: MONGOC_DISABLE_SHM); cleanup at exit. */
void mongo_global_init(void);
void mongo_global_cleanup(void);

/* The URI of cfg with default timeouts and appname applied; NULL + err. */
mongoc_uri_t *mongo_uri_build(const txagg_config *cfg, const char *appname, char *err, size_t errlen);
/* A pool for request threads (at most max_size clients; 0 = the driver's
 * default).  Retryable reads are off unless the URI sets retryReads: a request
 * must fail within one timeout, and a retry on a paused server doubles it. */
mongoc_client_pool_t *mongo_pool_new(const txagg_config *cfg, const char *appname, uint32_t max_size, char *err,
                                     size_t errlen);
mongoc_client_t *mongo_client_new(const txagg_config *cfg, const char *appname, char *err, size_t errlen);

/* {ping: 1} on the configured database; 0 when the server answered. */
int mongo_ping(mongoc_client_t *client, const txagg_config *cfg, char *err, size_t errlen);

int mongo_is_duplicate_key(const bson_error_t *e);

/* createIndexes {field: 1} named "<field>_1" (idempotent); 0 or -1 + err. */
int mongo_ensure_index(mongoc_collection_t *coll, const char *field, int unique, char *err, size_t errlen);

/* Process-wide count of MongoDB errors (callers count them; for /metrics). */
void mongo_count_error(void);
uint64_t mongo_error_total(void);

#endif
