/*
 * cluster — the process's Redis target: one Redis server (REDIS_HOST,
 * REDIS_PORT) or a Redis Cluster reached through seed nodes (REDIS_CLUSTER).
 *
 * hiredis 0.14 has no cluster support and Debian ships no cluster client, so
 * this is the small layer on top of `rconn` (common/redis) that the services
 * need, and no more:
 *   - the hash slot of a key (CRC16/XMODEM mod 16384, `{hash tags}`);
 *   - the slot map, read with CLUSTER SLOTS from any reachable node (seeds
 *     first, then every node learnt), refreshed on demand; a map that does not
 *     cover all 16384 slots is refused;
 *   - one lazily connected rconn per node, handed to callers that pipeline or
 *     run scripts ("the rconn serving slot S");
 *   - redirections: MOVED (refresh the map, retry on the new owner), ASK
 *     (ASKING + the command on the named node, once, the map unchanged),
 *     TRYAGAIN and CLUSTERDOWN (back off, retry), a node that does not answer
 *     (refresh from any other node, retry) — for one command, a script, or a
 *     MULTI/EXEC whose keys share one slot; classification and recovery helpers
 *     for callers that pipeline and recover on their own terms.
 *
 * On one Redis the same calls work with every slot served by the one rconn
 * and no redirection followed, so a caller has one code path for both modes.
 *
 * Retry rule: the layer retries a command only when it knows the command did
 * not run (no connection could be made, or the reply was MOVED, ASK,
 * TRYAGAIN or CLUSTERDOWN — all refused before execution).  An I/O error after
 * the command was sent leaves its outcome unknown: the map is refreshed and
 * NULL returned, exactly like rconn_cmd, and the caller re-reads its state.
 * Retries stop after REDIS_TIMEOUT_MS (then the last cluster error reply, or
 * NULL, is returned) or on a stop request.
 *
 * Threads: an rcluster and its rconns belong to one thread (hiredis contexts
 * are not thread-safe): one rcluster per thread.  An rconn returned by
 * rcluster_conn()/rcluster_node() stays valid until rcluster_free().
 *
 * Logging, once per change and per process (not per thread or retry): a node
 * unreachable / reachable again (rconn), the cluster unusable / usable again
 * (no node answered, incomplete coverage), the slot map loaded, slots moved
 * between primaries, a failover seen (a primary's slots now on another node).
 */
#ifndef TXAGG_CLUSTER_H
#define TXAGG_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "redis.h"

#define RCLUSTER_SLOTS 16384

typedef struct rcluster rcluster;

/* The hash slot of a key: keys_slot (common/keys.h). */

/* From the config: cluster mode when REDIS_CLUSTER is set, else one Redis.
 * Nothing is connected yet.  client_name (may be NULL): CLIENT SETNAME. */
rcluster *rcluster_new(const txagg_config *cfg, const char *client_name);
void rcluster_free(rcluster *cl);
int rcluster_is_cluster(const rcluster *cl);

/* Load the slot map now (a no-op on one Redis).  0, or -1 with
 * rcluster_error() naming REDIS_CLUSTER and why (no node answered, a node is
 * not a cluster node, slots not covered); a previous map is then kept. */
int rcluster_refresh(rcluster *cl);
/* The last error of this object (refresh, retries exhausted, outcome unknown). */
const char *rcluster_error(const rcluster *cl);

/* The rconn of the primary serving slot (loading the map on first use), not
 * necessarily connected yet; NULL when no map could be loaded. */
rconn *rcluster_conn(rcluster *cl, int slot);
/* The rconn of a node by address, e.g. the target of an ASK (never NULL
 * unless out of memory). */
rconn *rcluster_node(rcluster *cl, const char *host, int port);
/* The rconn the last rcluster_cmd/_script/_multi ran on (after MOVED or ASK
 * not the one rcluster_conn named before): rconn_replica_wait() goes there. */
rconn *rcluster_last_conn(const rcluster *cl);
/* The primaries of the current map (one Redis: the one server); writes at
 * most max, returns how many there are (loading the map on first use; 0 when
 * it cannot be loaded). */
int rcluster_primaries(rcluster *cl, rconn **out, int max);

/*
 * One command for slot, redirections handled.  A reply (maybe an ordinary
 * error reply for the caller), or NULL: no connection within the retry budget
 * or outcome unknown (see the retry rule above; rcluster_error says which).
 * Free with freeReplyObject.
 */
redisReply *rcluster_cmd(rcluster *cl, int slot, const char *fmt, ...);
redisReply *rcluster_cmd_argv(rcluster *cl, int slot, int argc, const char **argv, const size_t *lens);
/* EVALSHA of a script whose keys all hash to slot; NOSCRIPT loads it on that
 * node (each node has its own script cache) and runs it again. */
redisReply *rcluster_script(rcluster *cl, int slot, rscript *s, int nkeys, int argc, const char **argv,
                            const size_t *lens);

/* One command of a transaction. */
typedef struct rcluster_argv {
    int argc;
    const char **argv;
    const size_t *lens; /* NULL: strlen of each */
} rcluster_argv;
/*
 * MULTI, cmds[0..n), EXEC for slot, pipelined.  A redirection while queuing
 * makes Redis discard the transaction (EXECABORT) and one at EXEC refuses it,
 * so nothing ran and it is sent again where it belongs (after ASK: ASKING
 * before MULTI on the target).  Returns EXEC's reply (an array of the
 * commands' replies), an error reply, or NULL as rcluster_cmd.
 */
redisReply *rcluster_multi(rcluster *cl, int slot, int n, const rcluster_argv *cmds);

/*
 * For callers that pipeline on rcluster_conn() and recover on their own
 * terms.  rcluster_classify() says what a reply means (NULL — the rconn
 * dropped or could not connect — is RCLUSTER_LOST) and, for MOVED and ASK,
 * where the slot is served; RCLUSTER_REPLY is anything else (a result, or an
 * ordinary error for the caller).
 *
 *   RCLUSTER_MOVED       nothing ran; the map is stale: rcluster_recover, redo on rcluster_conn(slot)
 *   RCLUSTER_ASK         nothing ran; the slot is migrating: ASKING + the command on
 *                        rcluster_node(rd.host, rd.port) for this command only
 *   RCLUSTER_TRYAGAIN    nothing ran; a multi-key command during a migration: recover (backs off), redo
 *   RCLUSTER_CLUSTERDOWN nothing ran; the cluster is failing over: recover (backs off, refreshes), redo
 *   RCLUSTER_LOST        the node is gone or the connection broke (outcome unknown if the
 *                        command was sent): recover (refreshes), re-read state, redo
 */
typedef enum rcluster_kind {
    RCLUSTER_REPLY = 0,
    RCLUSTER_MOVED,
    RCLUSTER_ASK,
    RCLUSTER_TRYAGAIN,
    RCLUSTER_CLUSTERDOWN,
    RCLUSTER_LOST,
} rcluster_kind;

typedef struct rcluster_redirect {
    rcluster_kind kind;
    int slot;      /* MOVED, ASK */
    char host[256]; /* MOVED, ASK: the node now serving the slot */
    int port;
} rcluster_redirect;

rcluster_kind rcluster_classify(const redisReply *r, rcluster_redirect *rd);
/* Prepare the retry number `attempt` (0, 1, …) after rd: MOVED refreshes the
 * map and points the slot at rd's node; TRYAGAIN and CLUSTERDOWN sleep a
 * backoff growing with attempt (CLUSTERDOWN and LOST also refresh); ASK and
 * REPLY do nothing.  0, or -1 when a stop was requested. */
int rcluster_recover(rcluster *cl, const rcluster_redirect *rd, int attempt);
/* Append ASKING to rc's pipeline (its reply, +OK, comes first). */
int rcluster_append_asking(rconn *rc);

/* Process-wide counts (for /metrics and tests): redirections of each kind
 * seen, and slot maps loaded.  The rcluster_* calls count what they meet;
 * a caller that sends on an rconn itself and classifies the reply counts
 * what it meets with rcluster_count (REPLY is not counted).  In cluster mode
 * they are on /metrics: txagg_redis_cluster_redirects_total{kind} and
 * txagg_redis_cluster_map_changes_total. */
void rcluster_count(rcluster_kind kind);
uint64_t rcluster_redirect_total(rcluster_kind kind);
uint64_t rcluster_refresh_total(void);
/* How many times a slot map loaded by any rcluster of the process differed
 * (owners' addresses) from the map loaded just before it: a failover or a
 * resharding seen, not a thread loading the map everyone already has. */
uint64_t rcluster_map_changes(void);

#endif
