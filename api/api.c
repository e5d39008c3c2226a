/*
 * api — the service loop; see api.h.  Requests are served by civetweb's
 * worker threads (server.c, routes.c); this thread starts the main server
 * and the probe listener, then checks Redis and MongoDB once a second for
 * the probe's /ready until a stop request.
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

static void check_deps(api_app *app, rconn *rc)
{
    char redis_err[300], mongo_err[300];
    stats_check_deps(&app->env, &app->cfg, rc, redis_err, sizeof redis_err, mongo_err, sizeof mongo_err);
    atomic_store(&redis_up, !redis_err[0]);
    atomic_store(&mongo_up, !mongo_err[0]);
}

int api_run(const txagg_config *cfg)
{
    char err[512], q[600];
    api_app *app = api_server_start(cfg, err, sizeof err);
    http_listener *probe = NULL;
    if (app && cfg->api_probe_port)
        probe = http_listener_start(cfg->api_host, cfg->api_probe_port, 0, probe_ready, NULL, err, sizeof err);
    rconn *rc = app ? rconn_new(cfg, "txagg-api-ready") : NULL;
    if (!app || (cfg->api_probe_port && !probe) || !rc) {
        if (app && !rc) snprintf(err, sizeof err, "out of memory");
        log_error("cannot start", "detail=%s", log_q(q, sizeof q, err));
        rconn_free(rc);
        http_listener_stop(probe);
        api_server_stop(app);
        mongo_global_cleanup();
        return 1;
    }
    log_info("started", "version=%s host=%s port=%d probe_port=%d threads=%d head_timeout_s=%d auth=%s max_range_days=%d",
             TXAGG_VERSION, cfg->api_host, app->port, probe ? http_listener_port(probe) : 0, cfg->api_threads,
             cfg->api_head_timeout_s, cfg->api_token[0] ? "bearer" : "open", cfg->max_range_days);
    do {
        check_deps(app, rc);
    } while (!sig_sleep_ms(API_DEPS_CHECK_MS));
    log_info("stopping");
    http_listener_stop(probe);
    api_server_stop(app);
    rconn_free(rc);
    mongo_global_cleanup();
    log_info("stopped");
    return 0;
}
