/*
 * api — the service loop; see api.h.  The work happens in civetweb's worker
 * threads (server.c, routes.c); this thread only waits for a stop request.
 */
#include "api.h"
#include "log.h"
#include "mongo.h"
#include "server.h"
#include "signals.h"

int api_run(const txagg_config *cfg)
{
    char err[512], q[600];
    api_app *app = api_server_start(cfg, err, sizeof err);
    if (!app) {
        log_error("cannot start", "detail=%s", log_q(q, sizeof q, err));
        mongo_global_cleanup();
        return 1;
    }
    log_info("started", "version=%s host=%s port=%d threads=%d auth=%s max_range_days=%d", TXAGG_VERSION,
             cfg->api_host, app->port, cfg->api_threads, cfg->api_token[0] ? "bearer" : "open", cfg->max_range_days);
    while (!sig_sleep_ms(1000)) {
    }
    log_info("stopping");
    api_server_stop(app);
    mongo_global_cleanup();
    log_info("stopped");
    return 0;
}
