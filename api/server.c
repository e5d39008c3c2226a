/*
 * server — civetweb set-up, per-thread state, the MongoDB pool; see
 * server.h.
 *
 * Invariants: an api_worker exists for every worker thread (type 1) from
 * init_thread to exit_thread and is touched by that thread only; the
 * api_app outlives the civetweb context (mg_stop joins every worker first).
 */
#include "server.h"
#include "http.h"
#include "log.h"
#include "mongo.h"
#include "routes.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *init_thread(const struct mg_context *ctx, int thread_type)
{
    if (thread_type != 1) return NULL; /* master and timer threads serve no request */
    api_app *app = mg_get_user_data(ctx);
    api_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    char err[256];
    int ok = tier_init(&w->t, &app->cfg, "txagg-api", err, sizeof err) == 0;
    if (ok && !w->t.tagged) ok = (w->rc = tier_conn(&w->t, 0)) != NULL; /* one Redis: the same connection as ever */
    if (!ok || stats_scratch_init(&w->stats)) {
        if (ok) tier_free(&w->t);
        stats_scratch_free(&w->stats);
        free(w);
        return NULL; /* requests on this thread answer 500 */
    }
    return w;
}

static void exit_thread(const struct mg_context *ctx, int thread_type, void *p)
{
    (void)ctx;
    (void)thread_type;
    api_worker *w = p;
    if (!w) return;
    tier_free(&w->t); /* frees w->rc with it */
    stats_scratch_free(&w->stats);
    free(w);
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    api_worker *w = mg_get_thread_pointer(conn);
    if (!w || !w->t.cl) {
        return http_reply_detail(conn, 500, "worker thread without state (out of memory at start-up)", NULL);
    }
    return routes_handle(conn, cbdata, w);
}

/* Errors civetweb answers itself (request too large, malformed request
 * line…) get the API's error shape too. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg)
{
    http_reply_detail(conn, status, msg && *msg ? msg : "bad request", NULL);
    return 0;
}

static void free_app(api_app *app)
{
    if (app->pool) mongoc_client_pool_destroy(app->pool);
    cold_cache_free(app->cache);
    answer_cache_free(app->answers);
    free(app);
}

api_app *api_server_start(const txagg_config *cfg, char *err, size_t errlen)
{
    mongo_global_init();
    http_global_init();
    routes_init();
    stats_init();

    api_app *app = calloc(1, sizeof *app);
    if (!app) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    app->cfg = *cfg;
    app->token_len = strlen(cfg->api_token);
    app->pool = mongo_pool_new(cfg, "txagg-api", (uint32_t)cfg->api_threads + 2, err, errlen);
    app->cache = cold_cache_new(API_COLD_CACHE_BYTES);
    app->answers = answer_cache_new(API_ANSWER_CACHE_BYTES);
    if (!app->pool || !app->cache || !app->answers) {
        if (app->pool) snprintf(err, errlen, "out of memory");
        free_app(app);
        return NULL;
    }
    app->env = (stats_env){app->pool, app->cfg.mongodb_database, app->cfg.mongodb_collection, app->cache,
                           API_MAX_ATTEMPTS, app->answers};

    char threads[16], head_ms[24];
    snprintf(threads, sizeof threads, "%d", cfg->api_threads);
    snprintf(head_ms, sizeof head_ms, "%d", cfg->api_head_timeout_s * 1000);
    const char *opts[] = {"num_threads", threads, "enable_keep_alive", "yes", "keep_alive_timeout_ms", "500",
                          "request_timeout_ms", head_ms, "max_request_size", "8192", "tcp_nodelay", "1",
                          "listen_backlog", "1024", "connection_queue", "256", "decode_url", "no", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.init_thread = init_thread;
    cb.exit_thread = exit_thread;
    cb.http_error = on_http_error;
    app->ctx = http_start(&cb, app, cfg->api_host, cfg->api_port, opts, on_request, err, errlen);
    if (!app->ctx) {
        free_app(app);
        return NULL;
    }
    app->port = http_bound_port(app->ctx);
    return app;
}

void api_server_stop(api_app *app)
{
    if (!app) return;
    mg_stop(app->ctx);
    free_app(app);
}
