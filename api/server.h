/*
 * server — the API's civetweb context and what its threads share.
 *
 * API_THREADS worker threads, all started by mg_start; civetweb gives one
 * keep-alive connection to one worker at a time, so a client with 32
 * connections needs at least 32 threads.  Each worker owns an api_worker
 * (init_thread / exit_thread, reached through mg_get_thread_pointer): its
 * own tier (common/tier.h: the partitions, and the connection — on one
 * Redis — or the cluster layer with one connection per node; a hiredis
 * context is not thread-safe) and its own reusable request buffers.  MongoDB clients come from one
 * mongoc_client_pool (thread-safe; sized so a pop never waits).
 *
 * Paths are matched undecoded (decode_url=no): no route needs percent-
 * encoding, so "/stats%00x" or "/%73tats" is simply 404 instead of being
 * decoded (and truncated at the NUL) into "/stats".
 *
 * Limits: the request line and headers together at most 8 KiB
 * (max_request_size; civetweb answers larger ones itself, as JSON through the
 * http_error callback); API_HEAD_TIMEOUT_S (5 s) for a new connection to
 * send its whole request head — civetweb measures it from the first byte
 * read, so a client trickling bytes is cut too — and 500 ms for the next
 * request on a kept-alive connection.  A worker held by a slow client is
 * therefore free again after at most that long (the probe port, api.c,
 * keeps /health and /ready answering meanwhile).
 * Every Redis call is bounded by REDIS_TIMEOUT_MS and every MongoDB call by
 * MONGODB_TIMEOUT_MS (connect, socket, server selection; retryable reads off,
 * so a paused server costs one timeout, not two), so a stopped dependency
 * cannot hold a worker for long.
 */
#ifndef TXAGG_API_SERVER_H
#define TXAGG_API_SERVER_H

#include <stddef.h>

#include "app.h"
#include "config.h"

/* Start serving cfg->api_host:cfg->api_port (port 0 = any free port, for
 * tests).  NULL with err when the port cannot be bound. */
api_app *api_server_start(const txagg_config *cfg, char *err, size_t errlen);
/* Stop accepting, finish the requests in hand, free everything. */
void api_server_stop(api_app *app);

#endif
