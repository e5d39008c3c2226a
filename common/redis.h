/*
 * redis — one Redis connection with timeouts, reconnect and capped backoff,
 * and Lua scripts run by SHA with a NOSCRIPT fallback.
 *
 * hiredis 0.14 facts this module hides (read in hiredis's source): a context is
 * not thread-safe (one rconn per thread) and is unusable after an I/O error
 * (we free it and connect anew); redisConnectWithTimeout sets only the connect
 * timeout (we call redisSetTimeout on every new context).  Keep XREADGROUP
 * BLOCK shorter than REDIS_TIMEOUT_MS.
 *
 * Outages: rconn_ensure() makes at most one connection attempt per backoff
 * step (100 ms doubling to 5 s) and returns at once otherwise, so a request
 * handler fails fast; rconn_wait() loops until connected or stopping, for
 * workers.  The state is logged once per change (log_state_report), per
 * server and process: all connections to one host:port share that state.
 */
#ifndef TXAGG_REDIS_H
#define TXAGG_REDIS_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "config.h"

typedef struct rconn rconn;

/* A connection description for a server (one Redis, or a cluster node):
 * credentials and timeout from cfg, the address from host and port; nothing
 * is connected yet.  client_name (may be NULL) is sent as CLIENT SETNAME.
 * The services reach Redis through common/tier (common/cluster). */
rconn *rconn_new_at(const txagg_config *cfg, const char *host, int port, const char *client_name);
#ifdef TXAGG_TESTING
/* rconn_new_at for REDIS_HOST:REDIS_PORT (tests and their tools). */
rconn *rconn_new(const txagg_config *cfg, const char *client_name);
#endif
void rconn_free(rconn *rc);

/* 0 when connected (connecting now if the backoff allows), -1 otherwise. */
int rconn_ensure(rconn *rc);
/* Block until connected (0) or a stop is requested (-1). */
int rconn_wait(rconn *rc);
int rconn_connected(const rconn *rc);
/* The last connection error, for logs and HTTP details. */
const char *rconn_error(const rconn *rc);

/*
 * One command.  NULL on an I/O error or when not connected (the context is
 * dropped and will be re-created); an error *reply* is returned as a reply.
 * Free with freeReplyObject.
 */
redisReply *rconn_cmd(rconn *rc, const char *fmt, ...);
redisReply *rconn_cmd_argv(rconn *rc, int argc, const char **argv, const size_t *lens);

/*
 * Pipelining: the live context (NULL when not connected).  Append with
 * redisAppendCommand*, read with redisGetReply; on REDIS_ERR call
 * rconn_drop() — the context must not be used again.
 */
redisContext *rconn_ctx(rconn *rc);
void rconn_drop(rconn *rc);
/* The server's address. */
const char *rconn_host(const rconn *rc);
int rconn_port(const rconn *rc);

/*
 * Replica wait: ask the server how many replicas are connected to it (ROLE,
 * which lists the replicas in sync — the ones WAIT can count) and, when there
 * are any, send WAIT <that many> <timeout_ms> on this same connection, so the
 * answer covers every write this connection made before.  WAIT is refused
 * inside scripts: call this right after the script or EXEC, on the rconn that
 * ran it.  timeout_ms is clamped to 1..REDIS_TIMEOUT_MS-100 (WAIT 0 would
 * block for ever; a longer wait would hit the socket timeout).
 * 0 with *replicas (connected) and *acked (acknowledged, <= *replicas) set;
 * -1 on an I/O error, when the connection was lost since the write (a new one
 * would prove nothing) or when the server is not a primary (err says which).
 */
int rconn_replica_wait(rconn *rc, int timeout_ms, int *replicas, int *acked, char *err, size_t errlen);

/* Process-wide count of Redis errors (dropped connections and failed
 * connection attempts) and of reconnects, and whether the process's last
 * connection event on any server (connect, drop, failed attempt) succeeded
 * (1 before the first: no contact yet is no failure).  The first rconn_new
 * registers them for /metrics as txagg_redis_errors_total,
 * txagg_redis_reconnects_total and txagg_redis_up (one definition for every
 * service). */
uint64_t rconn_error_total(void);
uint64_t rconn_reconnect_total(void);
int rconn_up(void);
/*
 * How many times a connection of this process found another server at an
 * address than the one found there before: another run_id (a restart, or a
 * replica promoted behind the address) or another replication id (a
 * primary demoted, a replica promoted in place).  Such a server may hold
 * another history of writes — a promoted replica can lack the last writes
 * its primary acknowledged, then climb back to the same counters with other
 * contents — so caches keyed by Redis counters add this number to their key
 * (api/answer_cache.h).  Connections that find the server already known
 * (first connections of more threads, reconnects after an idle drop) leave
 * it unchanged; a server that refuses INFO counts on every connection.
 * Not seen: a server that changes history under a connection kept open.
 */
uint64_t rconn_history(void);

/* 1 when r is an error reply whose text starts with prefix (NULL = any). */
int rreply_is_error(const redisReply *r, const char *prefix);

/*
 * A Lua script embedded at build time (see scripts/embed-lua.sh).
 *   static rscript apply = RSCRIPT_INIT("apply", lua_aggregator_apply);
 */
typedef struct rscript {
    const char *name;
    const char *src;
    char sha[41];
} rscript;
#define RSCRIPT_INIT(name, src) {(name), (src), ""}

/* SCRIPT LOAD (sets s->sha).  0 on success. */
int rscript_load(rconn *rc, rscript *s);
/* EVALSHA with numkeys = nkeys over argv[0..argc) (keys first); on NOSCRIPT
 * loads the script again and retries once.  NULL on I/O error. */
redisReply *rscript_run(rconn *rc, rscript *s, int nkeys, int argc, const char **argv, const size_t *lens);
/* The EVALSHA command formatted for redisAppendFormattedCommand (the script
 * loaded first): its length, or -1; free *out with redisFreeCommand. */
int rscript_format(const rscript *s, int nkeys, int argc, const char **argv, const size_t *lens, char **out);
/* Append an EVALSHA to the pipeline (load the script first). */
int rscript_append(rconn *rc, rscript *s, int nkeys, int argc, const char **argv, const size_t *lens);

#endif
