/*
 * http — worker listener and response helpers; see http.h.
 *
 * Responses are written whole (status line, headers with Content-Length,
 * body) by http_reply, and each handler returns the status code so civetweb
 * records it and keeps the connection alive where allowed.
 *
 * Invariant: handlers do no I/O besides answering — /ready reads a flag the
 * service's loop maintains — so a probe never waits on Redis or MongoDB.
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

struct http_listener {
    struct mg_context *ctx;
    int (*ready_fn)(void *);
    void *arg;
};

static void lib_init(void) { mg_init_library(0); }

void http_global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lib_init);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

int http_reply(struct mg_connection *conn, int status, const char *ctype, const char *body, size_t len,
               const char *extra_headers)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s\r\n",
                     status, status_text(status), ctype, len, extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof head) return -1;
    /* One buffer when small: a single send keeps latency low on keep-alive. */
    int head_only = http_method_is_get(conn) == 2;
    if (!head_only && len <= 16384) {
        char buf[sizeof head + 16384];
        memcpy(buf, head, (size_t)n);
        memcpy(buf + n, body, len);
        return mg_write(conn, buf, (size_t)n + len) > 0 ? 0 : -1;
    }
    if (mg_write(conn, head, (size_t)n) <= 0) return -1;
    if (head_only || len == 0) return 0;
    return mg_write(conn, body, len) > 0 ? 0 : -1;
}

int http_reply_detail(struct mg_connection *conn, int status, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "detail", detail);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    int rv = http_reply(conn, status, "application/json", s ? s : "{}", s ? strlen(s) : 2, NULL);
    cJSON_free(s);
    return rv;
}

int http_method_is_get(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (!ri || !ri->request_method) return 0;
    if (!strcmp(ri->request_method, "GET")) return 1;
    if (!strcmp(ri->request_method, "HEAD")) return 2;
    return 0;
}

static int handle(struct mg_connection *conn, void *cbdata)
{
    http_listener *l = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *uri = ri->local_uri ? ri->local_uri : "";
    int is_known = !strcmp(uri, "/health") || !strcmp(uri, "/ready") || !strcmp(uri, "/metrics");
    if (!is_known) {
        http_reply_detail(conn, 404, "not found");
        return 404;
    }
    if (!http_method_is_get(conn)) {
        http_reply(conn, 405, "application/json", "{\"detail\":\"method not allowed\"}", 31, "Allow: GET, HEAD\r\n");
        return 405;
    }
    if (!strcmp(uri, "/health")) {
        const char *b = "{\"status\":\"ok\"}";
        http_reply(conn, 200, "application/json", b, strlen(b), NULL);
        return 200;
    }
    if (!strcmp(uri, "/ready")) {
        int ready = l->ready_fn ? l->ready_fn(l->arg) : 1;
        const char *b = ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\"}";
        http_reply(conn, ready ? 200 : 503, "application/json", b, strlen(b), NULL);
        return ready ? 200 : 503;
    }
    size_t len = 0;
    char *text = metrics_render(&len);
    http_reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", text ? len : 0, NULL);
    free(text);
    return 200;
}

int http_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    char q[512];
    log_warn("http", "detail=%s", log_q(q, sizeof q, message));
    return 1;
}

struct mg_context *http_start(struct mg_callbacks *cb, void *user, const char **opts,
                              int (*handler)(struct mg_connection *, void *), char *err, size_t errlen)
{
    http_global_init();
    if (!cb->log_message) cb->log_message = http_log_message;
    char etext[256] = "";
    unsigned ecode = 0;
    struct mg_init_data init = {cb, user, opts};
    struct mg_error_data edata = {&ecode, etext, sizeof etext};
    struct mg_context *ctx = mg_start2(&init, &edata);
    if (!ctx) {
        snprintf(err, errlen, "listen %s: %s", opts[1], etext[0] ? etext : "failed");
        return NULL;
    }
    mg_set_request_handler(ctx, "/", handler, user);
    return ctx;
}

http_listener *http_listener_start(const char *host, int port, int (*ready_fn)(void *), void *arg, char *err,
                                   size_t errlen)
{
    http_global_init();
    http_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->ready_fn = ready_fn;
    l->arg = arg;
    char ports[300];
    snprintf(ports, sizeof ports, "%s:%d", host, port);
    const char *opts[] = {"listening_ports", ports, "num_threads", "2", "enable_keep_alive", "no",
                          "request_timeout_ms", "5000", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    l->ctx = http_start(&cb, l, opts, handle, err, errlen);
    if (!l->ctx) {
        free(l);
        return NULL;
    }
    return l;
}

void http_listener_stop(http_listener *l)
{
    if (!l) return;
    mg_stop(l->ctx);
    free(l);
}
