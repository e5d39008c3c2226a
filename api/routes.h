/*
 * routes — what each path of the API answers, and the request metrics.
 *
 *   GET /stats         the merged daily totals (stats.c); 400 / 401 / 500 / 503 {"detail"}
 *   GET /stats.csv     the same as CSV, for a download
 *   GET /freshness     virtual clock, archived-through day, ingest backlog (freshness.c)
 *   GET /health        liveness, no I/O
 *   GET /ready         Redis PING and MongoDB ping (stats_check_deps), each bounded by its timeout; 503 when either fails
 *   GET /metrics       Prometheus text
 *   GET /openapi.json  the OpenAPI 3.1 description (api/assets/openapi.json)
 *   GET /docs          the same, readable (api/assets/docs.html)
 *   GET /              the dashboard (api/assets/dashboard.html)
 * HEAD is accepted wherever GET is.  An unknown path is 404 JSON, another
 * method 405 with Allow, a path beyond 1024 bytes 414 (the shapes are
 * common/http's).  With API_TOKEN set, /stats, /stats.csv, /freshness,
 * /metrics, /openapi.json and /docs need the bearer token (401 JSON with
 * WWW-Authenticate otherwise); /health, /ready and / stay open.
 *
 * Metrics: txagg_api_requests_total{route,code}, a latency histogram per
 * route, and the cold cache's size (the Redis and MongoDB ones are
 * common/redis's and common/mongo's).
 */
#ifndef TXAGG_API_ROUTES_H
#define TXAGG_API_ROUTES_H

struct mg_connection;
struct api_app;
struct api_worker;

/* Register the metrics (once per process). */
void routes_init(void);

/* Answer one request; returns the HTTP status sent. */
int routes_handle(struct mg_connection *conn, struct api_app *app, struct api_worker *w);

#endif
