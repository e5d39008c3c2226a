/*
 * mongo — MongoDB client setup from MONGODB_URI with bounded timeouts.
 *
 * Every client made here has connectTimeoutMS, socketTimeoutMS and
 * serverSelectionTimeoutMS (MONGODB_TIMEOUT_MS unless the URI sets them), so a
 * paused or unreachable server fails a call within seconds instead of hanging
 * the thread.  Error API 2 is set before first use, so a duplicate key is
 * `error.domain == MONGOC_ERROR_SERVER && error.code == 11000`
 * (mongo_is_duplicate_key).  mongoc_client_t is single-threaded; threads share
 * a mongoc_client_pool_t.  The driver's own log lines go through log.h (logfmt,
 * this process's svc, msg="mongodb driver" with domain= and detail=), at the
 * level mongo_driver_log_level gives them — never to stderr in its own format.
 */
#ifndef TXAGG_MONGO_H
#define TXAGG_MONGO_H

#include <mongoc/mongoc.h>
#include <stdint.h>

#include "config.h"

/* mongoc_init() and the log handler, once per process, and the MongoDB
 * metrics below; cleanup at exit.  Debian's driver initialises itself in a
 * library constructor, before main: its shared-memory counters (and a
 * warning in its own format when /dev/shm/mongoc-<pid> is left over from an
 * earlier process) can only be turned off by MONGOC_DISABLE_SHM=1 in the
 * environment, which the image and scripts set (docs/OPERATIONS.md); the
 * setenv here covers drivers built without that constructor. */
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

/* The log.h level of one of the driver's log lines, or -1 to drop it:
 * errors stay errors; warnings stay warnings except the per-call I/O failures
 * ("stream"/"socket" domains: the caller gets the same error and reports the
 * outage once per change) and endSessions at exit, which are DEBUG; the
 * driver's info is DEBUG, its debug and trace are dropped. */
int mongo_driver_log_level(int level, const char *domain, const char *message);

/* Add readConcern {level: "majority"} to a find's opts: the read sees only
 * writes a majority of a replica set holds, which no failover rolls back
 * (a standalone server or FerretDB treats it as a plain read). */
void mongo_read_majority(bson_t *opts);

/* createIndexes {field: 1} named "<field>_1" (idempotent); 0 or -1 + err. */
int mongo_ensure_index(mongoc_collection_t *coll, const char *field, int unique, char *err, size_t errlen);

/* Process-wide count of MongoDB errors (callers count them; for /metrics,
 * txagg_mongo_errors_total). */
void mongo_count_error(void);
uint64_t mongo_error_total(void);

/* Whether MongoDB answered the caller's last call, process-wide: logged once
 * per change of state (log_state_report; what names the server in the line,
 * e.g. "mongodb" or "mongodb://host:port") and exported as txagg_mongo_up
 * (1 before the first report: no call yet is no failure).  Callers count errors with mongo_count_error. */
void mongo_report_state(const char *what, int up, const char *detail);

#endif
