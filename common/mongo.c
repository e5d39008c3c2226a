/*
 * mongo — client setup; see mongo.h.
 */
#include "mongo.h"
#include "log.h"
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t mongo_errors;
static atomic_int mongo_inited;

void mongo_count_error(void) { atomic_fetch_add(&mongo_errors, 1); }
uint64_t mongo_error_total(void) { return atomic_load(&mongo_errors); }

/* The process's view of MongoDB: one state for every client and thread, so
 * an outage is logged once per process, not once per client. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static log_state state;
static atomic_int mongo_up = 1; /* no call yet is no failure */

void mongo_report_state(const char *what, int up, const char *detail)
{
    atomic_store(&mongo_up, up != 0);
    pthread_mutex_lock(&state_lock);
    log_state_report(&state, what, up, detail);
    pthread_mutex_unlock(&state_lock);
}

static int64_t up_gauge(void) { return atomic_load(&mongo_up); }

static void register_metrics(void)
{
    metrics_counter_fn("txagg_mongo_errors_total", "MongoDB calls of this process that failed", NULL,
                       mongo_error_total);
    metrics_gauge_fn("txagg_mongo_up",
                     "0 while this process's last call to MongoDB failed, else 1 (also before the first)",
                     NULL, up_gauge);
}

int mongo_driver_log_level(int level, const char *domain, const char *message)
{
    if (level <= MONGOC_LOG_LEVEL_CRITICAL) return LOG_LVL_ERROR; /* ERROR is 0, CRITICAL 1 */
    if (level == MONGOC_LOG_LEVEL_WARNING) {
        /* A failed read or write on a connection ("Failed to buffer 4 bytes")
         * is also returned to the caller, which reports the outage once per
         * change (mongo_report_state); per call it is only detail.  The
         * endSessions warning at exit is harmless on FerretDB. */
        int io = domain && (!strcmp(domain, "stream") || !strcmp(domain, "socket"));
        return io || (message && strstr(message, "endSessions")) ? LOG_LVL_DEBUG : LOG_LVL_WARNING;
    }
    if (level <= MONGOC_LOG_LEVEL_INFO) return LOG_LVL_DEBUG;
    return -1; /* the driver's debug and trace output */
}

static void on_driver_log(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
    (void)data;
    int lvl = mongo_driver_log_level((int)level, domain, message);
    if (lvl < 0 || !log_enabled(lvl)) return;
    char q[600], d[64];
    log_write(lvl, "mongodb driver", " domain=%s detail=%s", log_qv(d, sizeof d, domain ? domain : ""),
              log_q(q, sizeof q, message ? message : ""));
}

void mongo_global_init(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&mongo_inited, &expected, 1)) return;
    /* The driver's shared-memory counters leave a /dev/shm/mongoc-<pid> file
     * behind every process killed with -9 (our crash tests kill thousands);
     * we never read those counters.  Too late for a driver that initialised
     * itself in a constructor (Debian's does; see mongo.h); a user's explicit
     * setting wins. */
    setenv("MONGOC_DISABLE_SHM", "1", 0);
    mongoc_log_set_handler(on_driver_log, NULL);
    mongoc_init();
    register_metrics();
}

void mongo_global_cleanup(void)
{
    int expected = 1;
    if (atomic_compare_exchange_strong(&mongo_inited, &expected, 0)) mongoc_cleanup();
}

mongoc_uri_t *mongo_uri_build(const txagg_config *cfg, const char *appname, char *err, size_t errlen)
{
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(cfg->mongodb_uri, &e);
    if (!uri) {
        snprintf(err, errlen, "MONGODB_URI: %s", e.message);
        return NULL;
    }
    static const char *const timeouts[] = {MONGOC_URI_CONNECTTIMEOUTMS, MONGOC_URI_SOCKETTIMEOUTMS,
                                           MONGOC_URI_SERVERSELECTIONTIMEOUTMS};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++)
        if (!mongoc_uri_has_option(uri, timeouts[i]))
            mongoc_uri_set_option_as_int32(uri, timeouts[i], cfg->mongodb_timeout_ms);
    if (appname && !mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_APPNAME, appname);
    return uri;
}

mongoc_client_pool_t *mongo_pool_new(const txagg_config *cfg, const char *appname, uint32_t max_size, char *err,
                                     size_t errlen)
{
    mongoc_uri_t *uri = mongo_uri_build(cfg, appname, err, errlen);
    if (!uri) return NULL;
    if (!mongoc_uri_has_option(uri, MONGOC_URI_RETRYREADS))
        mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYREADS, false);
    bson_error_t e;
    mongoc_client_pool_t *pool = mongoc_client_pool_new_with_error(uri, &e);
    mongoc_uri_destroy(uri);
    if (!pool) {
        snprintf(err, errlen, "MONGODB_URI: %s", e.message);
        return NULL;
    }
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    if (max_size) mongoc_client_pool_max_size(pool, max_size);
    return pool;
}

mongoc_client_t *mongo_client_new(const txagg_config *cfg, const char *appname, char *err, size_t errlen)
{
    mongoc_uri_t *uri = mongo_uri_build(cfg, appname, err, errlen);
    if (!uri) return NULL;
    bson_error_t e;
    mongoc_client_t *client = mongoc_client_new_from_uri_with_error(uri, &e);
    mongoc_uri_destroy(uri);
    if (!client) {
        snprintf(err, errlen, "MONGODB_URI: %s", e.message);
        return NULL;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return client;
}

int mongo_ping(mongoc_client_t *client, const txagg_config *cfg, char *err, size_t errlen)
{
    bson_t cmd = BSON_INITIALIZER;
    bson_error_t e;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    bool ok = mongoc_client_command_simple(client, cfg->mongodb_database, &cmd, NULL, NULL, &e);
    bson_destroy(&cmd);
    if (!ok) {
        mongo_count_error();
        snprintf(err, errlen, "%s", e.message);
        return -1;
    }
    return 0;
}

int mongo_is_duplicate_key(const bson_error_t *e)
{
    return e->domain == MONGOC_ERROR_SERVER && e->code == 11000;
}

void mongo_read_majority(bson_t *opts)
{
    mongoc_read_concern_t *rc = mongoc_read_concern_new();
    mongoc_read_concern_set_level(rc, MONGOC_READ_CONCERN_LEVEL_MAJORITY);
    mongoc_read_concern_append(rc, opts);
    mongoc_read_concern_destroy(rc);
}

int mongo_ensure_index(mongoc_collection_t *coll, const char *field, int unique, char *err, size_t errlen)
{
    /* The createIndexes command: mongo-c-driver 1.23 has no index-model API. */
    char name[128];
    snprintf(name, sizeof name, "%s_1", field);
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(mongoc_collection_get_name(coll)), "indexes", "[", "{", "key",
                           "{", field, BCON_INT32(1), "}", "name", BCON_UTF8(name), "unique",
                           BCON_BOOL(unique != 0), "}", "]");
    bson_error_t e;
    bool ok = mongoc_collection_write_command_with_opts(coll, cmd, NULL, NULL, &e);
    bson_destroy(cmd);
    if (!ok) {
        mongo_count_error();
        snprintf(err, errlen, "createIndexes %s: %s", name, e.message);
        return -1;
    }
    return 0;
}
