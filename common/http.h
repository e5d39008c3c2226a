/*
 * http — the small HTTP side of every worker, and response helpers shared
 * with the API (both on civetweb).
 *
 * A worker (importer, aggregator, persistor) starts an http_listener on
 * METRICS_HOST:METRICS_PORT with two threads, no keep-alive:
 *   GET /health   200 {"status":"ok"}           liveness, no I/O
 *   GET /ready    200 / 503 from ready_fn        readiness (state the loop keeps, no I/O)
 *   GET /metrics  Prometheus text (metrics.h)
 * Anything else is 404 JSON; a method other than GET/HEAD is 405.
 */
#ifndef TXAGG_HTTP_H
#define TXAGG_HTTP_H

#include <stddef.h>

struct mg_connection;
struct mg_context;
struct mg_callbacks;

/* civetweb's mg_init_library, once per process. */
void http_global_init(void);

/* Start a civetweb server with options opts (listening_ports first, as
 * mg_start2 wants them), callbacks cb (their log_message set to
 * http_log_message when unset) and user data, and route every URI to
 * handler.  On failure (port taken, bad address) returns NULL with err =
 * "listen PORTS: civetweb's reason". */
struct mg_context *http_start(struct mg_callbacks *cb, void *user, const char **opts,
                              int (*handler)(struct mg_connection *, void *), char *err, size_t errlen);

typedef struct http_listener http_listener;

/* ready_fn(arg) returns 1 when ready; NULL means always ready.  On failure
 * (port taken, bad address) returns NULL with err set. */
http_listener *http_listener_start(const char *host, int port, int (*ready_fn)(void *), void *arg, char *err,
                                   size_t errlen);
void http_listener_stop(http_listener *l);

/* Send a complete response with Content-Length (keep-alive safe).
 * extra_headers: NULL or "Name: value\r\n" lines. */
int http_reply(struct mg_connection *conn, int status, const char *ctype, const char *body, size_t len,
               const char *extra_headers);
/* {"detail": "..."} with status (the error shape of the API). */
int http_reply_detail(struct mg_connection *conn, int status, const char *detail);
/* civetweb's log_message callback: its messages as logfmt warnings. */
int http_log_message(const struct mg_connection *conn, const char *message);

/* 1 for GET, 2 for HEAD, 0 for anything else. */
int http_method_is_get(struct mg_connection *conn);

#endif
