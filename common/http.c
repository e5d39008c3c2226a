/*
 * http — reply shapes, the listening address and the small listener; see
 * http.h.
 *
 * Responses are written whole by http_reply, and each handler returns the
 * status code so civetweb records it and keeps the connection alive where
 * allowed.
 *
 * Invariant: a listener's handlers do no I/O besides answering — /ready
 * calls the owner's ready_fn, which reads state the owner's loop maintains —
 * so a probe never waits on Redis or MongoDB.
 */
#include "http.h"
#include "log.h"
#include "metrics.h"

#include <civetweb.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct http_listener {
    struct mg_context *ctx;
    unsigned flags;
    http_ready_fn ready_fn;
    void *arg;
};

static void lib_init(void) { mg_init_library(0); }

void http_global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lib_init);
}

/* ---- replies ------------------------------------------------------------- */

int http_reply(struct mg_connection *conn, int status, const char *ctype, const char *body, size_t len,
               const char *extra_headers)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s\r\n",
                     status, mg_get_response_code_text(conn, status), ctype, len, extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof head) { /* cannot happen with our headers; say so rather than hang */
        log_error("http reply head too long", "status=%d", status);
        return status;
    }
    /* One buffer when small: a single send keeps latency low on keep-alive. */
    int head_only = http_method_is_get(conn) == 2;
    if (!head_only && len <= 16384) {
        char buf[sizeof head + 16384];
        memcpy(buf, head, (size_t)n);
        memcpy(buf + n, body, len);
        mg_write(conn, buf, (size_t)n + len);
        return status;
    }
    if (mg_write(conn, head, (size_t)n) > 0 && !head_only && len > 0) mg_write(conn, body, len);
    return status;
}

int http_reply_str(struct mg_connection *conn, int status, const char *ctype, const char *body,
                   const char *extra_headers)
{
    return http_reply(conn, status, ctype, body, strlen(body), extra_headers);
}

int http_reply_detail(struct mg_connection *conn, int status, const char *detail, const char *extra_headers)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "detail", detail);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    http_reply_str(conn, status, CT_JSON, s ? s : "{}", extra_headers);
    cJSON_free(s);
    return status;
}

int http_reply_not_found(struct mg_connection *conn) { return http_reply_detail(conn, 404, "not found", NULL); }

int http_reply_bad_method(struct mg_connection *conn)
{
    return http_reply_detail(conn, 405, "method not allowed (use GET or HEAD)", "Allow: GET, HEAD\r\n");
}

int http_reply_health(struct mg_connection *conn)
{
    return http_reply_str(conn, 200, CT_JSON, "{\"status\":\"ok\"}", NULL);
}

int http_reply_ready(struct mg_connection *conn, int ready)
{
    return http_reply_str(conn, ready ? 200 : 503, CT_JSON, ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\"}",
                          NULL);
}

int http_reply_metrics(struct mg_connection *conn)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    http_reply(conn, 200, CT_METRICS, text ? text : "", text ? len : 0, NULL);
    free(text);
    return 200;
}

int http_method_is_get(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (!ri || !ri->request_method) return 0;
    if (!strcmp(ri->request_method, "GET")) return 1;
    if (!strcmp(ri->request_method, "HEAD")) return 2;
    return 0;
}

int http_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    char q[512];
    log_warn("http", "detail=%s", log_q(q, sizeof q, message));
    return 1;
}

/* ---- servers ------------------------------------------------------------- */

int http_listen_spec(const char *host, int port, char *buf, size_t n)
{
    int w = strchr(host, ':') ? snprintf(buf, n, "[%s]:%d", host, port) : snprintf(buf, n, "%s:%d", host, port);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

#define HTTP_MAX_OPTS 40

struct mg_context *http_start(struct mg_callbacks *cb, void *user, const char *host, int port, const char **opts,
                              int (*handler)(struct mg_connection *, void *), char *err, size_t errlen)
{
    http_global_init();
    char ports[300];
    if (http_listen_spec(host, port, ports, sizeof ports)) {
        snprintf(err, errlen, "listen %.200s: address too long", host);
        return NULL;
    }
    const char *all[HTTP_MAX_OPTS + 3] = {"listening_ports", ports};
    size_t k = 2;
    for (size_t i = 0; opts && opts[i] && k < HTTP_MAX_OPTS; i++) all[k++] = opts[i];
    all[k] = NULL;
    if (!cb->log_message) cb->log_message = http_log_message;
    char etext[256] = "";
    unsigned ecode = 0;
    struct mg_init_data init = {cb, user, all};
    struct mg_error_data edata = {&ecode, etext, sizeof etext};
    struct mg_context *ctx = mg_start2(&init, &edata);
    if (!ctx) {
        snprintf(err, errlen, "listen %s: %s", ports, etext[0] ? etext : "failed");
        return NULL;
    }
    mg_set_request_handler(ctx, "/", handler, user);
    return ctx;
}

int http_bound_port(struct mg_context *ctx)
{
    struct mg_server_port sp[4];
    int n = mg_get_server_ports(ctx, 4, sp);
    return n > 0 ? sp[0].port : -1;
}

static int handle(struct mg_connection *conn, void *cbdata)
{
    http_listener *l = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *uri = ri->local_uri ? ri->local_uri : "";
    int metrics = (l->flags & HTTP_LISTEN_METRICS) && !strcmp(uri, "/metrics");
    if (strcmp(uri, "/health") && strcmp(uri, "/ready") && !metrics) return http_reply_not_found(conn);
    if (!http_method_is_get(conn)) return http_reply_bad_method(conn);
    if (!strcmp(uri, "/health")) return http_reply_health(conn);
    if (metrics) return http_reply_metrics(conn);
    int ready = l->ready_fn ? l->ready_fn(l->arg, ri->query_string) : HTTP_READY;
    if (ready == HTTP_BAD_QUERY) return http_reply_detail(conn, 400, "unknown query for /ready", NULL);
    return http_reply_ready(conn, ready == HTTP_READY);
}

http_listener *http_listener_start(const char *host, int port, unsigned flags, http_ready_fn ready_fn, void *arg,
                                   char *err, size_t errlen)
{
    http_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->flags = flags;
    l->ready_fn = ready_fn;
    l->arg = arg;
    const char *opts[] = {"num_threads", "2", "enable_keep_alive", "no", "request_timeout_ms", "5000", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    l->ctx = http_start(&cb, l, host, port, opts, handle, err, errlen);
    if (!l->ctx) {
        free(l);
        return NULL;
    }
    return l;
}

int http_listener_port(const http_listener *l) { return http_bound_port(l->ctx); }

void http_listener_stop(http_listener *l)
{
    if (!l) return;
    mg_stop(l->ctx);
    free(l);
}
