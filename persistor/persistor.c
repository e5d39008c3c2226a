/*
 * persistor — one replica's state: open/close, what it knows of MongoDB
 * (reachable, the unique index, its backoff) and readiness for /ready.  The
 * bottom of the persistor: every step (lease, freeze, write, clean, recover,
 * cycle) and the service loop (service.c) work on a `persistor`; nothing here
 * calls them.
 *
 * Invariants: nothing here touches Redis or writes archive state; MongoDB
 * state changes are logged once per change (log_state_report).
 */
#include "persistor.h"
#include "keys.h"
#include "log.h"
#include "mongo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MONGO_BACKOFF_MIN_MS 100

persistor_metrics pst_metrics;

static void register_metrics(void)
{
    pst_metrics.leader = metrics_gauge("txagg_persistor_leader", "1 while this replica holds the persistor lease", NULL);
    pst_metrics.lease_acquisitions =
        metrics_counter("txagg_persistor_lease_acquisitions_total", "Persistor leases taken by this replica", NULL);
    pst_metrics.lease_losses =
        metrics_counter("txagg_persistor_lease_losses_total", "Leases lost (expired or taken) while held", NULL);
    pst_metrics.batches_frozen =
        metrics_counter("txagg_persistor_batches_frozen_total", "Archive batches frozen by this replica", NULL);
    pst_metrics.batches_completed = metrics_counter("txagg_persistor_batches_completed_total",
                                                    "Archive batches written to MongoDB and cleaned up", NULL);
    pst_metrics.day_documents = metrics_counter(
        "txagg_persistor_day_documents_archived_total",
        "Day documents written to MongoDB by completed batches (a day archived again after late rows counts again)",
        NULL);
    pst_metrics.recoveries = metrics_counter("txagg_persistor_recoveries_total",
                                             "Pending batches finished by recovery after a crash or takeover", NULL);
    pst_metrics.cycle_seconds = metrics_histogram("txagg_persistor_cycle_duration_seconds",
                                                  "Duration of an archival cycle", NULL, metrics_latency_buckets_us,
                                                  metrics_latency_nbuckets);
    pst_metrics.hot_age = metrics_gauge(
        "txagg_persistor_oldest_hot_day_age_seconds",
        "Virtual clock minus the start of the oldest day still in Redis (0: none), read every PERSIST_INTERVAL_MS "
        "by every replica; above txagg_persistor_retention_seconds archival is behind",
        NULL);
    pst_metrics.retention = metrics_gauge("txagg_persistor_retention_seconds",
                                          "RETENTION_DAYS in seconds: days older than this by the virtual clock "
                                          "are due for archival",
                                          NULL);
}

persistor *persistor_open(const txagg_config *cfg, char *err, size_t errlen)
{
    int w = 1;
    if (strcmp(cfg->mongodb_write_concern, "majority") != 0) {
        w = atoi(cfg->mongodb_write_concern);
        if (w < 1) {
            snprintf(err, errlen,
                     "MONGODB_WRITE_CONCERN: %s cannot confirm an archive write (use majority or a number >= 1)",
                     cfg->mongodb_write_concern);
            return NULL;
        }
    }
    register_metrics();
    metrics_set(pst_metrics.retention, (int64_t)cfg->retention_days * 86400);
    mongo_global_init();
    persistor *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->mongo_backoff_ms = MONGO_BACKOFF_MIN_MS;
    if (tier_init(&p->t, cfg, "persistor", err, errlen) != 0) {
        free(p);
        return NULL;
    }
    p->invalid_tracked = calloc((size_t)p->t.n, sizeof *p->invalid_tracked);
    keys_global(p->lease_key, sizeof p->lease_key, KEYS_PERSISTOR_LEASE, p->t.tagged);
    keys_global(p->fence_key, sizeof p->fence_key, KEYS_PERSISTOR_FENCE, p->t.tagged);
    p->lease_slot = keys_slot(p->lease_key, strlen(p->lease_key));
    /* one Redis: its connection is described without I/O (no slot map to load) */
    if (!p->t.tagged) p->rc = tier_conn(&p->t, 0);
    p->mongo = mongo_client_new(cfg, "persistor", err, errlen);
    if (!p->invalid_tracked || (!p->t.tagged && !p->rc) || !p->mongo) {
        if (p->mongo) snprintf(err, errlen, "out of memory"); /* else mongo_client_new said why */
        persistor_close(p);
        return NULL;
    }
    p->coll = mongoc_client_get_collection(p->mongo, cfg->mongodb_database, cfg->mongodb_collection);
    p->wc = mongoc_write_concern_new();
    if (!strcmp(cfg->mongodb_write_concern, "majority")) mongoc_write_concern_set_w(p->wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
    else mongoc_write_concern_set_w(p->wc, w);
    mongoc_write_concern_set_journal(p->wc, cfg->mongodb_journal != 0);
    mongoc_write_concern_set_wtimeout_int64(p->wc, cfg->mongodb_timeout_ms);
    if (!mongoc_write_concern_is_valid(p->wc)) {
        snprintf(err, errlen, "MONGODB_WRITE_CONCERN/MONGODB_JOURNAL: not a valid write concern");
        persistor_close(p);
        return NULL;
    }
    const mongoc_host_list_t *h = mongoc_uri_get_hosts(mongoc_client_get_uri(p->mongo));
    snprintf(p->mongo_what, sizeof p->mongo_what, "mongodb://%s", h ? h->host_and_port : "?");
    return p;
}

void persistor_close(persistor *p)
{
    if (!p) return;
    if (p->wc) mongoc_write_concern_destroy(p->wc);
    if (p->coll) mongoc_collection_destroy(p->coll);
    if (p->mongo) mongoc_client_destroy(p->mongo);
    tier_free(&p->t); /* p->rc is the tier's */
    free(p->invalid_tracked);
    free(p);
}

int persistor_use_partition(persistor *p, int i)
{
    if (i < 0 || i >= p->t.n) return -1;
    p->cur = i;
    return 0;
}

int persistor_redis_ensure(persistor *p)
{
    rconn *rc = rcluster_conn(p->t.cl, p->lease_slot);
    if (rc && rconn_ensure(rc) == 0) return 0;
    if (!rcluster_is_cluster(p->t.cl) || rcluster_refresh(p->t.cl) != 0) return -1;
    rc = rcluster_conn(p->t.cl, p->lease_slot); /* a failover: the slot lives elsewhere now */
    return rc && rconn_ensure(rc) == 0 ? 0 : -1;
}

int persistor_redis_connected(persistor *p)
{
    rconn *rc = rcluster_conn(p->t.cl, p->lease_slot);
    return rc && rconn_connected(rc);
}

void persistor_mongo_state(persistor *p, int up, const char *detail)
{
    mongo_report_state(p->mongo_what, up, detail);
    atomic_store(&p->mongo_up, up);
    if (up) p->mongo_backoff_ms = MONGO_BACKOFF_MIN_MS;
}

int persistor_ping_mongo(persistor *p)
{
    char err[512];
    int up = mongo_ping(p->mongo, &p->cfg, err, sizeof err) == 0;
    persistor_mongo_state(p, up, err);
    return up ? PST_OK : PST_EMONGO;
}

int persistor_ensure_indexes(persistor *p)
{
    if (p->indexes_ready) return PST_OK;
    char err[512], perr[512];
    if (mongo_ensure_index(p->coll, "date", 1, err, sizeof err) == 0) {
        p->indexes_ready = 1;
        persistor_mongo_state(p, 1, NULL);
        log_info("index ready", "collection=%s.%s index=date_1 unique=1", p->cfg.mongodb_database,
                 p->cfg.mongodb_collection);
        return PST_OK;
    }
    /* Down, or up but refusing (duplicate dates in an old collection): tell which. */
    if (mongo_ping(p->mongo, &p->cfg, perr, sizeof perr) == 0) {
        persistor_mongo_state(p, 1, NULL);
        char q[600];
        log_error("cannot create the unique index on date; nothing is archived until it exists", "err=%s",
                  log_q(q, sizeof q, err));
    } else {
        persistor_mongo_state(p, 0, err);
    }
    return PST_EMONGO;
}

int persistor_ready(void *arg, const char *query)
{
    (void)query;
    persistor *p = arg;
    return atomic_load(&p->redis_up) && atomic_load(&p->mongo_up);
}
