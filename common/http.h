/*
 * http — every HTTP answer txagg sends, and the small listener of the
 * workers and of the api's probe port (both on civetweb).
 *
 * One place for the reply shapes: a response is written whole (status line
 * with civetweb's reason phrase, Content-Type, Content-Length, Cache-Control:
 * no-store, extra headers, body), errors are {"detail": "one sentence"}, and
 * /health and /metrics answer the same on every listener of every binary
 * (the api's main-port /ready adds what failed, routes.c).  One place for the listening address: http_start builds civetweb's
 * listening_ports from a host and a port for all four binaries.
 *
 * A listener (http_listener_start) serves, with two threads, no keep-alive:
 *   GET /health   200 {"status":"ok"}              liveness, no I/O
 *   GET /ready    200 / 503 from ready_fn           state the owner keeps, no I/O
 *   GET /metrics  Prometheus text (metrics.h)       with HTTP_LISTEN_METRICS
 * Anything else is 404 JSON; a method other than GET/HEAD is 405 with Allow.
 * The workers serve it on METRICS_HOST:METRICS_PORT, the api on
 * API_HOST:API_PROBE_PORT (health and readiness only: the api's /metrics
 * stays behind its token on the main port).
 */
#ifndef TXAGG_HTTP_H
#define TXAGG_HTTP_H

#include <stddef.h>

struct mg_connection;
struct mg_context;
struct mg_callbacks;

/* civetweb's mg_init_library, once per process. */
void http_global_init(void);

/* civetweb's listening_ports for host:port into buf ("[h]:p" for an IPv6
 * literal); 0, or -1 when it does not fit. */
int http_listen_spec(const char *host, int port, char *buf, size_t n);

/* Start a civetweb server on host:port with the further options opts (NULL-
 * terminated name/value pairs, without listening_ports), callbacks cb (their
 * log_message set to http_log_message when unset) and user data, and route
 * every URI to handler.  On failure (port taken, bad address) returns NULL
 * with err = "listen HOST:PORT: civetweb's reason". */
struct mg_context *http_start(struct mg_callbacks *cb, void *user, const char *host, int port, const char **opts,
                              int (*handler)(struct mg_connection *, void *), char *err, size_t errlen);
/* The port a started server listens on (the chosen one for port 0). */
int http_bound_port(struct mg_context *ctx);

/* What ready_fn returns for GET /ready?QUERY (query NULL when absent). */
enum { HTTP_NOT_READY = 0, HTTP_READY = 1, HTTP_BAD_QUERY = -1 };
typedef int (*http_ready_fn)(void *arg, const char *query);
/* flags of http_listener_start */
enum { HTTP_LISTEN_METRICS = 1 };

typedef struct http_listener http_listener;

/* ready_fn NULL means always ready.  On failure (port taken, bad address)
 * returns NULL with err set. */
http_listener *http_listener_start(const char *host, int port, unsigned flags, http_ready_fn ready_fn, void *arg,
                                   char *err, size_t errlen);
int http_listener_port(const http_listener *l);
void http_listener_stop(http_listener *l);

/* Send a complete response with Content-Length (keep-alive safe; a HEAD
 * request gets the head only).  extra_headers: NULL or "Name: value\r\n"
 * lines.  Returns status (what a civetweb handler returns). */
int http_reply(struct mg_connection *conn, int status, const char *ctype, const char *body, size_t len,
               const char *extra_headers);
/* The same for a NUL-terminated body. */
int http_reply_str(struct mg_connection *conn, int status, const char *ctype, const char *body,
                   const char *extra_headers);
/* {"detail": "..."} with status: the error shape of every txagg listener. */
int http_reply_detail(struct mg_connection *conn, int status, const char *detail, const char *extra_headers);
/* The common answers: 404 not found, 405 with "Allow: GET, HEAD", /health,
 * /ready ({"status":"ready"} 200 or {"status":"not ready"} 503) and /metrics. */
int http_reply_not_found(struct mg_connection *conn);
int http_reply_bad_method(struct mg_connection *conn);
int http_reply_health(struct mg_connection *conn);
int http_reply_ready(struct mg_connection *conn, int ready);
int http_reply_metrics(struct mg_connection *conn);

/* civetweb's log_message callback: its messages as logfmt warnings. */
int http_log_message(const struct mg_connection *conn, const char *message);

/* 1 for GET, 2 for HEAD, 0 for anything else. */
int http_method_is_get(struct mg_connection *conn);

#endif
