/*
 * service — the persistor's service loop, on top of the steps.
 *
 * Every lease/3 at most:
 *   - without the lease: ensure the unique index and ping MongoDB (once per
 *     PERSIST_INTERVAL_MS, also for /ready); when both are fine, try to take
 *     the lease, and on success run a cycle at once (it starts with recovery);
 *   - with the lease: every PERSIST_INTERVAL_MS run a cycle (cycle.c); in
 *     between, renew the lease.  A refused renewal or script means the lease
 *     is lost: the replica stands by again;
 *   - either way, every PERSIST_INTERVAL_MS: how far back the hot tier
 *     reaches (archive_batch_hot_age) for /metrics, so the figure does not
 *     depend on which replica holds the lease, or whether one does; and
 *     right after each cycle, so an archived day leaves the figure at once.
 * At start the number of partitions is checked (and recorded the first
 * time, tier_check_layout): another number than the data's stops the
 * process with exit 2; Redis not answering is waited for.
 * Redis unreachable: rconn reconnects with capped backoff and logs once per
 * change (on a cluster the slot map is refreshed: the lease's slot may have
 * moved to a promoted replica); a lease not confirmed within its TTL counts
 * as lost.  SIGTERM / SIGINT: the batch in hand is finished (unless it waits
 * on an outage), the lease released (a standby takes over at once), exit 0.
 *
 * Invariants: main.c holds no logic; nothing here writes archive state — the
 * steps do, each behind the lease check of its script.
 */
#include "service.h"
#include "archive_batch.h"
#include "cycle.h"
#include "http.h"
#include "lease.h"
#include "log.h"
#include "mongo.h"
#include "persistor.h"
#include "signals.h"

#include <stdio.h>

/* tier_check_layout until Redis answers: 0, 2 (another number of
 * partitions: a configuration error, logged) or 0 on a stop request. */
static int check_layout(persistor *p)
{
    char err[512], q[600];
    int logged = 0;
    while (!sig_stopping()) {
        int rv = tier_check_layout(&p->t, err, sizeof err);
        if (rv == TIER_OK) {
            if (logged) log_info("redis layout checked", "partitions=%d", p->t.n);
            return 0;
        }
        if (rv == TIER_ELAYOUT) {
            log_error("configuration error", "var=REDIS_PARTITIONS detail=%s", log_q(q, sizeof q, err));
            return 2;
        }
        if (!logged++)
            log_warn("cannot check the number of partitions yet; retrying", "detail=%s", log_q(q, sizeof q, err));
        sig_sleep_ms(500);
    }
    return 0;
}

int service_run(const txagg_config *cfg)
{
    char err[512];
    persistor *p = persistor_open(cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "persistor: configuration error: %s\n", err);
        return 2;
    }
    http_listener *hl = NULL;
    if (cfg->metrics_port) {
        hl = http_listener_start(cfg->metrics_host, cfg->metrics_port, HTTP_LISTEN_METRICS, persistor_ready, p, err,
                                 sizeof err);
        if (!hl) {
            char q[600];
            log_error("cannot start", "detail=%s", log_q(q, sizeof q, err));
            persistor_close(p);
            mongo_global_cleanup();
            return 1;
        }
    }
    log_info("started", "version=%s retention_days=%d interval_ms=%lld lease_ms=%lld", TXAGG_VERSION,
             cfg->retention_days, (long long)cfg->persist_interval_ms, (long long)cfg->persist_lease_ms);
    if (p->t.tagged) log_info("partitioned hot tier", "partitions=%d cluster=%d", p->t.n, rcluster_is_cluster(p->t.cl));
    int status = check_layout(p);
    if (status != 0) {
        http_listener_stop(hl);
        persistor_close(p);
        mongo_global_cleanup();
        return status;
    }

    int64_t tick = cfg->persist_lease_ms / 3;
    int64_t next_cycle = 0, next_ping = 0, next_age = 0;
    while (!sig_stopping()) {
        int64_t now = sig_now_ms();
        if (persistor_redis_ensure(p) != 0) {
            atomic_store(&p->redis_up, 0);
            if (p->fence > 0 && !lease_held(p)) lease_lost(p, "redis unreachable for the lease time");
            sig_sleep_ms(tick < 500 ? tick : 500);
            continue;
        }
        atomic_store(&p->redis_up, 1);
        if (now >= next_age) { /* every replica: the figure must not depend on who holds the lease */
            int64_t age;
            if (archive_batch_hot_age(p, &age) == PST_OK) metrics_set(pst_metrics.hot_age, age);
            next_age = now + cfg->persist_interval_ms;
        }
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
            atomic_store(&p->redis_up, persistor_redis_connected(p));
            next_cycle = sig_now_ms() + (rv == PST_EREDIS && tick < cfg->persist_interval_ms ? tick
                                                                                            : cfg->persist_interval_ms);
            next_ping = next_cycle;
            next_age = 0; /* what the cycle archived shows on /metrics at once */
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
