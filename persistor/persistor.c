/*
 * persistor — one replica's state (open/close, MongoDB state, readiness) and
 * the service loop.
 *
 * The loop, every lease/3 at most:
 *   - without the lease: ensure the unique index and ping MongoDB (once per
 *     PERSIST_INTERVAL_MS, also for /ready); when both are fine, try to take
 *     the lease, and on success run a cycle at once (it starts with recovery);
 *   - with the lease: every PERSIST_INTERVAL_MS run a cycle (cycle.c); in
 *     between, renew the lease.  A refused renewal or script means the lease
 *     is lost: the replica stands by again.
 * Redis unreachable: rconn reconnects with capped backoff and logs once per
 * change; a lease not confirmed within its TTL counts as lost.  SIGTERM /
 * SIGINT: the batch in hand is finished (unless it waits on an outage), the
 * lease released (a standby takes over at once), exit 0.
 *
 * Invariants: main.c holds no logic; nothing here writes archive state — the
 * steps do, each behind the lease check of its script.
 */
#include "persistor.h"
#include "cycle.h"
#include "http.h"
#include "lease.h"
#include "log.h"
#include "mongo.h"
#include "signals.h"

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
    pst_metrics.days_archived =
        metrics_counter("txagg_persistor_days_archived_total", "Days moved to MongoDB (per batch)", NULL);
    pst_metrics.recoveries = metrics_counter("txagg_persistor_recoveries_total",
                                             "Pending batches finished by recovery after a crash or takeover", NULL);
    pst_metrics.cycle_seconds = metrics_histogram("txagg_persistor_cycle_duration_seconds",
                                                  "Duration of an archival cycle", NULL, metrics_latency_buckets_us,
                                                  metrics_latency_nbuckets);
    metrics_counter_fn("txagg_persistor_mongo_errors_total", "MongoDB calls that failed", NULL, mongo_error_total);
    metrics_counter_fn("txagg_redis_errors_total", "Redis I/O errors", NULL, rconn_error_total);
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
    mongo_global_init();
    persistor *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->mongo_backoff_ms = MONGO_BACKOFF_MIN_MS;
    p->rc = rconn_new(cfg, "persistor");
    p->mongo = mongo_client_new(cfg, "persistor", err, errlen);
    if (!p->rc || !p->mongo) {
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
    rconn_free(p->rc);
    free(p);
}

void persistor_mongo_state(persistor *p, int up, const char *detail)
{
    log_state_report(&p->mongo_state, p->mongo_what, up, detail);
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

int persistor_ready(void *arg)
{
    persistor *p = arg;
    return atomic_load(&p->redis_up) && atomic_load(&p->mongo_up);
}

int persistor_run(const txagg_config *cfg)
{
    char err[512];
    persistor *p = persistor_open(cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "persistor: configuration error: %s\n", err);
        return 2;
    }
    http_listener *hl = NULL;
    if (cfg->metrics_port) {
        hl = http_listener_start(cfg->metrics_host, cfg->metrics_port, persistor_ready, p, err, sizeof err);
        if (!hl) {
            log_error("metrics listener failed", "err=%s", err);
            persistor_close(p);
            mongo_global_cleanup();
            return 1;
        }
    }
    log_info("started", "version=%s retention_days=%d interval_ms=%lld lease_ms=%lld", TXAGG_VERSION,
             cfg->retention_days, (long long)cfg->persist_interval_ms, (long long)cfg->persist_lease_ms);

    int64_t tick = cfg->persist_lease_ms / 3;
    int64_t next_cycle = 0, next_ping = 0;
    while (!sig_stopping()) {
        int64_t now = sig_now_ms();
        if (rconn_ensure(p->rc) != 0) {
            atomic_store(&p->redis_up, 0);
            if (p->fence > 0 && !lease_held(p)) lease_lost(p, "redis unreachable for the lease time");
            sig_sleep_ms(tick < 500 ? tick : 500);
            continue;
        }
        atomic_store(&p->redis_up, 1);
        if (p->fence <= 0) {
            /* Stand by; take the lease only when this replica can do the work
             * (a replica that reaches MongoDB should win it). */
            if (now >= next_ping) {
                if (persistor_ensure_indexes(p) == PST_OK) persistor_ping_mongo(p);
                next_ping = now + cfg->persist_interval_ms;
            }
            if (!p->indexes_ready || !atomic_load(&p->mongo_up) || lease_acquire(p) != PST_OK) {
                sig_sleep_ms(tick);
                continue;
            }
            next_cycle = now; /* a new holder recovers at once */
        }
        if (now >= next_cycle) {
            int64_t t0 = sig_now_us();
            int rv = cycle_run(p);
            metrics_observe_us(pst_metrics.cycle_seconds, sig_now_us() - t0);
            atomic_store(&p->redis_up, rconn_connected(p->rc));
            next_cycle = sig_now_ms() + (rv == PST_EREDIS && tick < cfg->persist_interval_ms ? tick
                                                                                            : cfg->persist_interval_ms);
            next_ping = next_cycle;
            continue;
        }
        int64_t wait = next_cycle - now;
        if (sig_sleep_ms(wait < tick ? wait : tick)) break;
        lease_renew(p);
    }
    if (p->fence > 0) lease_release(p);
    http_listener_stop(hl);
    persistor_close(p);
    mongo_global_cleanup();
    log_info("stopped");
    return 0;
}
