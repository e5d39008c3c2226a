/*
 * api — the service loop; see api.h.  Requests are served by civetweb's
 * worker threads (server.c, routes.c); this thread starts the main server
 * and the probe listener, then checks Redis and MongoDB once a second for
 * the probe's /ready until a stop request.
 *
 * The loop also checks the number of partitions against Redis's record
 * (tier_check_layout) until it succeeds once — at start, or as soon as
 * Redis answers; a mismatch stops the process with exit status 2 (a
 * configuration error).  /stats and /freshness wait for that check (a worker
 * makes it itself when it comes first; routes.c).
 *
 * Invariant: the probe listener's handlers read the two flags this loop
 * writes and do no I/O, so /health and /ready on API_PROBE_PORT answer at
 * once even while every API_THREADS worker is held (slow clients, a paused
 * dependency).
 */
#include "api.h"
#include "http.h"
#include "log.h"
#include "mongo.h"
#include "server.h"
#include "signals.h"

#include <stdatomic.h>
#include <string.h>

#define API_DEPS_CHECK_MS 1000

static atomic_int redis_up, mongo_up;

/* /ready on the probe port: both dependencies at the last check, or Redis
 * alone with ?deps=redis (as /ready on the main port). */
static int probe_ready(void *arg, const char *query)
{
    (void)arg;
    int redis_only = query && *query;
    if (redis_only && strcmp(query, "deps=redis") != 0) return HTTP_BAD_QUERY;
    return atomic_load(&redis_up) && (redis_only || atomic_load(&mongo_up)) ? HTTP_READY : HTTP_NOT_READY;
}

static void check_deps(api_app *app, tier *t)
{
    char redis_err[300], mongo_err[300];
    stats_check_deps_tier(&app->env, &app->cfg, t, redis_err, sizeof redis_err, mongo_err, sizeof mongo_err);
    atomic_store(&redis_up, !redis_err[0]);
    atomic_store(&mongo_up, !mongo_err[0]);
}

/* The number of partitions against Redis's record, until checked once (a
 * worker may have done it first).  0, or -1 on a layout mismatch (logged). */
static int check_layout(api_app *app, tier *t, int *logged)
{
    if (__atomic_load_n(&app->layout, __ATOMIC_ACQUIRE) > 0) return 0;
    char err[512], q[600];
    int rv = tier_check_layout(t, err, sizeof err);
    if (rv == TIER_OK) {
        __atomic_store_n(&app->layout, 1, __ATOMIC_RELEASE);
        return 0;
    }
    if (rv == TIER_ELAYOUT) {
        __atomic_store_n(&app->layout, -1, __ATOMIC_RELEASE);
        log_error("configuration error", "var=REDIS_PARTITIONS detail=%s", log_q(q, sizeof q, err));
        return -1;
    }
    if (!*logged) log_info("partition layout not checked yet, Redis unavailable", "detail=%s", log_q(q, sizeof q, err));
    *logged = 1;
    return 0;
}

int api_run(const txagg_config *cfg)
{
    char err[512], q[600];
    api_app *app = api_server_start(cfg, err, sizeof err);
    http_listener *probe = NULL;
    if (app && cfg->api_probe_port)
        probe = http_listener_start(cfg->api_host, cfg->api_probe_port, 0, probe_ready, NULL, err, sizeof err);
    tier t = {0};
    int tier_ok = app && tier_init(&t, cfg, "txagg-api-ready", err, sizeof err) == 0;
    if (!app || (cfg->api_probe_port && !probe) || !tier_ok) {
        log_error("cannot start", "detail=%s", log_q(q, sizeof q, err));
        if (tier_ok) tier_free(&t);
        http_listener_stop(probe);
        api_server_stop(app);
        mongo_global_cleanup();
        return 1;
    }
    log_info("started", "version=%s host=%s port=%d probe_port=%d threads=%d head_timeout_s=%d auth=%s max_range_days=%d "
             "partitions=%d%s",
             TXAGG_VERSION, cfg->api_host, app->port, probe ? http_listener_port(probe) : 0, cfg->api_threads,
             cfg->api_head_timeout_s, cfg->api_token[0] ? "bearer" : "open", cfg->max_range_days, t.n,
             rcluster_is_cluster(t.cl) ? " redis=cluster" : "");
    int status = 0, logged = 0;
    do {
        if (check_layout(app, &t, &logged)) {
            status = 2; /* a configuration error, as at the start of every binary */
            break;
        }
        check_deps(app, &t);
    } while (!sig_sleep_ms(API_DEPS_CHECK_MS));
    log_info("stopping");
    http_listener_stop(probe);
    api_server_stop(app);
    tier_free(&t);
    mongo_global_cleanup();
    log_info("stopped");
    return status;
}
