/*
 * routes — path table, method and token checks, the handlers; see routes.h.
 *
 * Invariants: every request is answered with one complete response
 * (http_reply: Content-Length, so keep-alive works) and counted once under
 * its route and status; counters are registered at start-up, so a request
 * never takes the metrics registry lock; only /stats and /ready do I/O.
 */
#include "routes.h"

#include "app.h"
#include "auth.h"
#include "freshness.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "mongo.h"
#include "query.h"
#include "signals.h"

#include <civetweb.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char asset_api_dashboard_html[];
extern const char asset_api_docs_html[];
extern const char asset_api_openapi_json[];

#define PATH_MAX_LEN 1024

typedef int (*handler_fn)(struct mg_connection *conn, api_app *app, api_worker *w);

static int h_stats(struct mg_connection *, api_app *, api_worker *);
static int h_stats_csv(struct mg_connection *, api_app *, api_worker *);
static int h_freshness(struct mg_connection *, api_app *, api_worker *);
static int h_health(struct mg_connection *, api_app *, api_worker *);
static int h_ready(struct mg_connection *, api_app *, api_worker *);
static int h_metrics(struct mg_connection *, api_app *, api_worker *);
static int h_openapi(struct mg_connection *, api_app *, api_worker *);
static int h_docs(struct mg_connection *, api_app *, api_worker *);
static int h_dashboard(struct mg_connection *, api_app *, api_worker *);

typedef struct route {
    const char *path;
    handler_fn fn;
    int needs_token;
} route;

static const route routes[] = {
    {"/stats", h_stats, 1},         {"/stats.csv", h_stats_csv, 1},   {"/freshness", h_freshness, 1},
    {"/health", h_health, 0},       {"/ready", h_ready, 0},           {"/metrics", h_metrics, 1},
    {"/openapi.json", h_openapi, 1}, {"/docs", h_docs, 1},            {"/", h_dashboard, 0},
};
#define NROUTES ((int)(sizeof routes / sizeof routes[0]))
#define ROUTE_OTHER NROUTES /* label for unknown paths */

static const int codes[] = {200, 400, 401, 404, 405, 414, 500, 503};
#define NCODES ((int)(sizeof codes / sizeof codes[0]))
#define CODE_OTHER NCODES

static metric *m_requests[NROUTES + 1][NCODES + 1];
static metric *m_latency[NROUTES + 1];

/* ---- metrics ------------------------------------------------------------- */

static int64_t cache_bytes_now(void);
static cold_cache *metrics_cache; /* the cache shown by txagg_api_cold_cache_bytes */

static void register_metrics(void)
{
    for (int r = 0; r <= NROUTES; r++) {
        const char *path = r < NROUTES ? routes[r].path : "other";
        char labels[160];
        for (int c = 0; c <= NCODES; c++) {
            if (c < NCODES) snprintf(labels, sizeof labels, "route=\"%s\",code=\"%d\"", path, codes[c]);
            else snprintf(labels, sizeof labels, "route=\"%s\",code=\"other\"", path);
            m_requests[r][c] = metrics_counter("txagg_api_requests_total", "HTTP requests by route and status", labels);
        }
        snprintf(labels, sizeof labels, "route=\"%s\"", path);
        m_latency[r] = metrics_histogram("txagg_api_request_duration_seconds", "Time to answer a request, by route",
                                         labels, metrics_latency_buckets_us, metrics_latency_nbuckets);
    }
    metrics_gauge_fn("txagg_api_cold_cache_bytes", "Bytes held by the cold cache", NULL, cache_bytes_now);
}

void routes_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_metrics);
}

static int64_t cache_bytes_now(void)
{
    cold_cache *c = __atomic_load_n(&metrics_cache, __ATOMIC_ACQUIRE);
    return c ? (int64_t)cold_cache_bytes(c) : 0;
}

static void account(int r, int status, int64_t us)
{
    int c = CODE_OTHER;
    for (int i = 0; i < NCODES; i++)
        if (codes[i] == status) c = i;
    metrics_inc(m_requests[r][c]);
    metrics_observe_us(m_latency[r], us);
}

/* ---- handlers ------------------------------------------------------------ */

/*
 * The number of partitions must have been checked against Redis before any
 * read (a process started with another REDIS_PARTITIONS would read keys the
 * data is not in and answer wrong sums).  The service loop checks at start
 * and every second until it succeeds; a request before that checks on its
 * own thread.  0 when checked, else the status sent.
 */
static int layout_checked(struct mg_connection *conn, api_app *app, api_worker *w, int *status)
{
    int l = __atomic_load_n(&app->layout, __ATOMIC_ACQUIRE);
    if (l == 0) {
        char err[512];
        int rv = tier_check_layout(&w->t, err, sizeof err);
        if (rv == TIER_OK) {
            __atomic_store_n(&app->layout, 1, __ATOMIC_RELEASE);
            return 0;
        }
        if (rv == TIER_ELAYOUT) {
            __atomic_store_n(&app->layout, -1, __ATOMIC_RELEASE);
            *status = http_reply_detail(conn, 500, err, NULL);
            return -1;
        }
        char d[600];
        snprintf(d, sizeof d, "Redis unavailable: %s", err);
        *status = http_reply_detail(conn, 503, d, "Retry-After: 1\r\n");
        return -1;
    }
    if (l < 0) {
        *status = http_reply_detail(conn, 500, "the data in Redis was written with another REDIS_PARTITIONS (see the log)",
                                    NULL);
        return -1;
    }
    return 0;
}

static int answer_stats(struct mg_connection *conn, api_app *app, api_worker *w, enum stats_format fmt)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *qs = ri->query_string;
    char err[512];
    query_range q;
    if (query_parse_stats(qs, qs ? strlen(qs) : 0, app->cfg.max_range_days, &q, err, sizeof err))
        return http_reply_detail(conn, 400, err, NULL);
    int status;
    if (layout_checked(conn, app, w, &status)) return status;
    int rv = stats_answer_tier(&app->env, &w->t, &w->stats, (int32_t)q.from_day, (int32_t)q.to_day, fmt, err,
                               sizeof err);
    if (rv == STATS_OK && fmt == STATS_CSV) {
        char disp[128], a[TS_DAY_LEN + 1], b[TS_DAY_LEN + 1];
        ts_format_day(q.from_day, a);
        ts_format_day(q.to_day, b);
        snprintf(disp, sizeof disp, "Content-Disposition: attachment; filename=\"txagg-%s-%s.csv\"\r\n", a, b);
        status = http_reply(conn, 200, "text/csv; charset=utf-8; header=present", w->stats.body, w->stats.blen, disp);
    } else if (rv == STATS_OK) {
        status = http_reply(conn, 200, "application/json", w->stats.body, w->stats.blen, NULL);
    } else if (rv == STATS_INTERNAL) {
        char qerr[600];
        log_error("stats failed", "detail=%s", log_q(qerr, sizeof qerr, err));
        status = http_reply_detail(conn, 500, err, NULL);
    } else {
        status = http_reply_detail(conn, 503, err, "Retry-After: 1\r\n");
    }
    stats_scratch_trim(&w->stats);
    return status;
}

static int h_stats(struct mg_connection *conn, api_app *app, api_worker *w)
{
    return answer_stats(conn, app, w, STATS_JSON);
}

static int h_stats_csv(struct mg_connection *conn, api_app *app, api_worker *w)
{
    return answer_stats(conn, app, w, STATS_CSV);
}

static int h_freshness(struct mg_connection *conn, api_app *app, api_worker *w)
{
    if (mg_get_request_info(conn)->query_string) return http_reply_detail(conn, 400, "/freshness takes no parameter", NULL);
    freshness f;
    char err[300], body[256];
    int status;
    if (layout_checked(conn, app, w, &status)) return status;
    int rv = freshness_read_tier(&w->t, &f, err, sizeof err);
    if (rv == FRESH_UNAVAILABLE) return http_reply_detail(conn, 503, err, "Retry-After: 1\r\n");
    if (rv != FRESH_OK) return http_reply_detail(conn, 500, err, NULL);
    size_t n = freshness_json(&f, app->cfg.max_range_days, body, sizeof body);
    return http_reply(conn, 200, "application/json", body, n, NULL);
}

static int h_health(struct mg_connection *conn, api_app *app, api_worker *w)
{
    (void)app;
    (void)w;
    return http_reply_health(conn);
}

/*
 * /ready: Redis answers PING and MongoDB answers ping.  /ready?deps=redis:
 * ready when Redis answers (MongoDB is still checked and reported) — the
 * probe for a load balancer, since without MongoDB the api still answers every
 * range served from Redis alone and should stay in the pool.
 */
static int h_ready(struct mg_connection *conn, api_app *app, api_worker *w)
{
    const char *qs = mg_get_request_info(conn)->query_string;
    int redis_only = 0;
    if (qs && *qs) {
        if (strcmp(qs, "deps=redis") != 0)
            return http_reply_detail(conn, 400, "unknown query: /ready takes no parameter or deps=redis", NULL);
        redis_only = 1;
    }
    char redis_err[300], mongo_err[300];
    stats_check_deps_tier(&app->env, &app->cfg, &w->t, redis_err, sizeof redis_err, mongo_err, sizeof mongo_err);
    int ready = !redis_err[0] && (redis_only || !mongo_err[0]);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", ready ? "ready" : "not ready");
    cJSON_AddStringToObject(o, "redis", redis_err[0] ? redis_err : "ok");
    cJSON_AddStringToObject(o, "mongodb", mongo_err[0] ? mongo_err : "ok");
    if (redis_err[0] || mongo_err[0]) {
        char d[700];
        snprintf(d, sizeof d, "%s%s%s%s%s", redis_err[0] ? "Redis unavailable: " : "", redis_err,
                 redis_err[0] && mongo_err[0] ? "; " : "", mongo_err[0] ? "MongoDB unavailable: " : "", mongo_err);
        cJSON_AddStringToObject(o, "detail", d);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int status = http_reply_str(conn, ready ? 200 : 503, "application/json", s ? s : "{}", NULL);
    cJSON_free(s);
    return status;
}

static int h_metrics(struct mg_connection *conn, api_app *app, api_worker *w)
{
    (void)w;
    __atomic_store_n(&metrics_cache, app->cache, __ATOMIC_RELEASE);
    return http_reply_metrics(conn);
}

static int h_openapi(struct mg_connection *conn, api_app *app, api_worker *w)
{
    (void)app;
    (void)w;
    return http_reply_str(conn, 200, "application/json", asset_api_openapi_json, NULL);
}

/* Pages: inline script and style only, requests to this origin only. */
#define PAGE_HEADERS                                                                                         \
    "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " \
    "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"     \
    "X-Content-Type-Options: nosniff\r\n"

static int h_docs(struct mg_connection *conn, api_app *app, api_worker *w)
{
    (void)app;
    (void)w;
    return http_reply_str(conn, 200, "text/html; charset=utf-8", asset_api_docs_html, PAGE_HEADERS);
}

static int h_dashboard(struct mg_connection *conn, api_app *app, api_worker *w)
{
    (void)app;
    (void)w;
    return http_reply_str(conn, 200, "text/html; charset=utf-8", asset_api_dashboard_html, PAGE_HEADERS);
}

/* ---- dispatch ------------------------------------------------------------ */

int routes_handle(struct mg_connection *conn, api_app *app, api_worker *w)
{
    int64_t t0 = sig_now_us();
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *path = ri->local_uri ? ri->local_uri : "";
    int r = ROUTE_OTHER, status;
    if (strlen(path) > PATH_MAX_LEN) {
        status = http_reply_detail(conn, 414, "URI too long", NULL);
        account(r, status, sig_now_us() - t0);
        return status;
    }
    for (int i = 0; i < NROUTES; i++)
        if (!strcmp(path, routes[i].path)) r = i;
    if (r == ROUTE_OTHER) {
        status = http_reply_not_found(conn);
    } else if (!http_method_is_get(conn)) {
        status = http_reply_bad_method(conn);
    } else if (routes[r].needs_token &&
               !auth_bearer_ok(app->cfg.api_token, app->token_len, mg_get_header(conn, "Authorization"))) {
        status = http_reply_detail(conn, 401, "missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)",
                                   "WWW-Authenticate: Bearer realm=\"txagg\"\r\n");
    } else {
        status = routes[r].fn(conn, app, w);
    }
    account(r, status, sig_now_us() - t0);
    return status;
}
