/*
 * cluster — slot map, routing and redirections over rconn; see cluster.h.
 *
 * Invariants: nodes are only ever added (an rconn handed out stays valid
 * until rcluster_free); once have_map is set every slot has an owner (a map
 * without full coverage is never installed; a MOVED only re-points one slot);
 * on one Redis the map is node 0 for every slot and is never refreshed.  A
 * command is sent again only when it is known not to have run.  It also
 * keeps the process-wide counts of redirections and map changes, on /metrics
 * in cluster mode.
 */
#include "cluster.h"
#include "dynbuf.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_OWNER 0xFFFFu
#define MAX_ATTEMPTS 64
#define BACKOFF_MIN_MS 20
#define BACKOFF_MAX_MS 500
/* Caps of the growable buffers: nodes known (a cluster has at most 16384
 * masters, and replicas), the text of one MULTI … EXEC. */
#define NODES_MAX 65536
#define MULTI_TEXT_MAX ((size_t)1 << 30)

typedef struct node {
    char host[256];
    int port;
    rconn *rc; /* created on first use */
} node;

struct rcluster {
    txagg_config cfg; /* credentials and timeout of every node's rconn */
    char name[64];
    int cluster; /* 0: one Redis, node 0 */
    node *nodes; /* seeds first, then the nodes maps named */
    int nnodes;
    size_t cap;
    uint16_t owner[RCLUSTER_SLOTS]; /* slot → index in nodes */
    int have_map;
    rconn *last;
    char err[1024];
};

/* --- process-wide state: counters and what has been logged ----------------- */

static atomic_uint_fast64_t redirects[RCLUSTER_LOST + 1];
static atomic_uint_fast64_t refreshes;
static atomic_uint_fast64_t map_changes; /* maps unlike the last one loaded in the process */

uint64_t rcluster_redirect_total(rcluster_kind kind)
{
    return kind >= RCLUSTER_REPLY && kind <= RCLUSTER_LOST ? atomic_load(&redirects[kind]) : 0;
}
uint64_t rcluster_refresh_total(void) { return atomic_load(&refreshes); }
uint64_t rcluster_map_changes(void) { return atomic_load(&map_changes); }

void rcluster_count(rcluster_kind kind)
{
    if (kind > RCLUSTER_REPLY && kind <= RCLUSTER_LOST) atomic_fetch_add(&redirects[kind], 1);
}

static uint64_t moved_total(void) { return rcluster_redirect_total(RCLUSTER_MOVED); }
static uint64_t ask_total(void) { return rcluster_redirect_total(RCLUSTER_ASK); }
static uint64_t tryagain_total(void) { return rcluster_redirect_total(RCLUSTER_TRYAGAIN); }
static uint64_t clusterdown_total(void) { return rcluster_redirect_total(RCLUSTER_CLUSTERDOWN); }
static uint64_t lost_total(void) { return rcluster_redirect_total(RCLUSTER_LOST); }

/* Registered by the first cluster-mode rcluster of the process: one Redis
 * has no slots to be redirected from, and its pages stay as they were. */
static void register_metrics(void)
{
    static const char *help = "Redis Cluster refusals and redirections met, by kind: moved, ask, tryagain, "
                              "clusterdown, lost (a node unreachable)";
    metrics_counter_fn("txagg_redis_cluster_redirects_total", help, "kind=\"moved\"", moved_total);
    metrics_counter_fn("txagg_redis_cluster_redirects_total", help, "kind=\"ask\"", ask_total);
    metrics_counter_fn("txagg_redis_cluster_redirects_total", help, "kind=\"tryagain\"", tryagain_total);
    metrics_counter_fn("txagg_redis_cluster_redirects_total", help, "kind=\"clusterdown\"", clusterdown_total);
    metrics_counter_fn("txagg_redis_cluster_redirects_total", help, "kind=\"lost\"", lost_total);
    metrics_counter_fn("txagg_redis_cluster_map_changes_total",
                       "Redis Cluster slot maps loaded that differed from the one loaded before (failovers, reshards)",
                       NULL, rcluster_map_changes);
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_state usable_state; /* "redis cluster" usable or not */
static uint64_t logged_map;    /* signature of the last map logged */

static void report_usable(int up, const char *detail)
{
    pthread_mutex_lock(&log_lock);
    log_state_report(&usable_state, "redis cluster", up, detail);
    pthread_mutex_unlock(&log_lock);
}

/* --- nodes ------------------------------------------------------------------ */

static int node_index(rcluster *cl, const char *host, int port)
{
    for (int i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].port == port && !strcmp(cl->nodes[i].host, host)) return i;
    if (dynbuf_reserve_array(&cl->nodes, &cl->cap, (size_t)cl->nnodes + 1, sizeof *cl->nodes,
                             NODES_MAX * sizeof *cl->nodes))
        return -1;
    node *n = &cl->nodes[cl->nnodes];
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    n->rc = NULL;
    return cl->nnodes++;
}

static rconn *node_conn(rcluster *cl, int i)
{
    node *n = &cl->nodes[i];
    if (!n->rc) n->rc = rconn_new_at(&cl->cfg, n->host, n->port, cl->name[0] ? cl->name : NULL);
    return n->rc;
}

rconn *rcluster_node(rcluster *cl, const char *host, int port)
{
    int i = node_index(cl, host, port);
    return i < 0 ? NULL : node_conn(cl, i);
}

rcluster *rcluster_new(const txagg_config *cfg, const char *client_name)
{
    rcluster *cl = calloc(1, sizeof *cl);
    if (!cl) return NULL;
    cl->cfg = *cfg;
    snprintf(cl->name, sizeof cl->name, "%s", client_name ? client_name : "");
    memset(cl->owner, 0xff, sizeof cl->owner);
    if (!cfg->redis_cluster[0]) {
        if (node_index(cl, cfg->redis_host, cfg->redis_port) != 0) goto fail;
        memset(cl->owner, 0, sizeof cl->owner);
        cl->have_map = 1;
        return cl;
    }
    config_hostport seeds[CONFIG_MAX_SEEDS];
    int n = config_hostports(cfg->redis_cluster, seeds, CONFIG_MAX_SEEDS, cl->err, sizeof cl->err);
    if (n < 0) { /* config_load has refused it already; a hand-made config */
        log_error("bad cluster configuration", "var=REDIS_CLUSTER err=\"%s\"", cl->err);
        goto fail;
    }
    cl->cluster = 1;
    static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;
    pthread_once(&metrics_once, register_metrics);
    for (int i = 0; i < n; i++)
        if (node_index(cl, seeds[i].host, seeds[i].port) < 0) goto fail;
    snprintf(cl->err, sizeof cl->err, "no slot map loaded yet");
    return cl;
fail:
    rcluster_free(cl);
    return NULL;
}

void rcluster_free(rcluster *cl)
{
    if (!cl) return;
    for (int i = 0; i < cl->nnodes; i++) rconn_free(cl->nodes[i].rc);
    free(cl->nodes);
    free(cl);
}

int rcluster_is_cluster(const rcluster *cl) { return cl->cluster; }
const char *rcluster_error(const rcluster *cl) { return cl->err; }
rconn *rcluster_last_conn(const rcluster *cl) { return cl->last; }

/* --- slot map ------------------------------------------------------------- */

/* Append "; text" to a bounded buffer. */
static void note(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(char *buf, size_t n, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 3 >= n) return;
    if (used) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, n - used, fmt, ap);
    va_end(ap);
}

static int is_int(const redisReply *r) { return r && r->type == REDIS_REPLY_INTEGER; }

/*
 * CLUSTER SLOTS: [[first, last, [host, port, id, …] (primary), [host, port, …]
 * (replicas)…]…] into map.  A host "" means the node that answered (asked);
 * "?" an unknown address (the slots stay unserved).  Replicas are learnt as
 * nodes, so a later refresh can ask them.  0, or -1 with why.
 */
static int parse_slots(rcluster *cl, const char *asked, const redisReply *r, uint16_t *map, char *why, size_t wn,
                       const char *from)
{
    if (r->type == REDIS_REPLY_ERROR) {
        note(why, wn, "%s: %s", from, r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY) goto bad;
    for (int s = 0; s < RCLUSTER_SLOTS; s++) map[s] = NO_OWNER;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) || !is_int(e->element[1]))
            goto bad;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0 || hi >= RCLUSTER_SLOTS || lo > hi) goto bad;
        for (size_t k = 2; k < e->elements; k++) {
            const redisReply *a = e->element[k];
            if (a->type != REDIS_REPLY_ARRAY || a->elements < 2 || a->element[0]->type != REDIS_REPLY_STRING ||
                !is_int(a->element[1]))
                goto bad;
            const char *host = a->element[0]->len ? a->element[0]->str : asked;
            if (!strcmp(host, "?")) continue;
            int idx = node_index(cl, host, (int)a->element[1]->integer);
            if (idx < 0) {
                note(why, wn, "%s: out of memory", from);
                return -1;
            }
            if (k == 2)
                for (long long s = lo; s <= hi; s++) map[s] = (uint16_t)idx;
        }
    }
    return 0;
bad:
    note(why, wn, "%s: unexpected CLUSTER SLOTS reply", from);
    return -1;
}

static void addr(const rcluster *cl, unsigned idx, char *buf, size_t n)
{
    if (idx == NO_OWNER) snprintf(buf, n, "none");
    else snprintf(buf, n, "%s:%d", cl->nodes[idx].host, cl->nodes[idx].port);
}

/* "a:1,b:2" — the primaries of map in slot order. */
static void primaries_text(const rcluster *cl, const uint16_t *map, char *buf, size_t n)
{
    buf[0] = '\0';
    unsigned seen[64];
    int nseen = 0;
    for (int s = 0; s < RCLUSTER_SLOTS; s++) {
        int dup = 0;
        for (int k = 0; k < nseen && !dup; k++) dup = seen[k] == map[s];
        if (dup || nseen == 64) continue;
        seen[nseen++] = map[s];
        char a[300];
        addr(cl, map[s], a, sizeof a);
        size_t used = strlen(buf);
        snprintf(buf + used, n - used, "%s%s", used ? "," : "", a);
    }
}

/* FNV-1a over the slot → address assignment: equal maps, equal signature,
 * whichever rcluster (thread) built them. */
static uint64_t map_signature(const rcluster *cl, const uint16_t *map)
{
    uint64_t h = 1469598103934665603ull;
    for (int s = 0; s < RCLUSTER_SLOTS; s++) {
        if (s && map[s] == map[s - 1]) continue;
        char a[300];
        addr(cl, map[s], a, sizeof a);
        char run[320];
        int len = snprintf(run, sizeof run, "%d=%s;", s, a);
        for (int i = 0; i < len; i++) h = (h ^ (unsigned char)run[i]) * 1099511628211ull;
    }
    return h;
}

/* Log a new map once per process: loaded, slots moved, a primary replaced;
 * count it in map_changes. */
static void log_map(const rcluster *cl, const uint16_t *old, int had, const uint16_t *map)
{
    uint64_t sig = map_signature(cl, map);
    pthread_mutex_lock(&log_lock);
    int fresh = sig != logged_map;
    logged_map = sig;
    if (fresh) atomic_fetch_add(&map_changes, 1);
    pthread_mutex_unlock(&log_lock);
    if (!fresh) return;
    char prim[1024], a[300], b[300];
    primaries_text(cl, map, prim, sizeof prim);
    if (!had) {
        log_info("redis cluster slot map loaded", "primaries=%s", prim);
        return;
    }
    struct { unsigned from, to; int n; } moves[32];
    int nmoves = 0;
    for (int s = 0; s < RCLUSTER_SLOTS; s++) {
        if (old[s] == map[s]) continue;
        int k = 0;
        while (k < nmoves && !(moves[k].from == old[s] && moves[k].to == map[s])) k++;
        if (k == nmoves) {
            if (nmoves == 32) continue;
            moves[nmoves].from = old[s];
            moves[nmoves].to = map[s];
            moves[nmoves++].n = 0;
        }
        moves[k].n++;
    }
    for (int k = 0; k < nmoves; k++) {
        int still = 0;
        for (int s = 0; s < RCLUSTER_SLOTS && !still; s++) still = map[s] == moves[k].from;
        addr(cl, moves[k].from, a, sizeof a);
        addr(cl, moves[k].to, b, sizeof b);
        if (still) log_info("redis cluster slots moved", "from=%s to=%s slots=%d", a, b, moves[k].n);
        else log_warn("redis cluster primary replaced", "old=%s new=%s slots=%d primaries=%s", a, b, moves[k].n, prim);
    }
}

int rcluster_refresh(rcluster *cl)
{
    if (!cl->cluster) return 0;
    uint16_t *map = malloc(sizeof cl->owner);
    if (!map) return log_fail(-1, cl->err, sizeof cl->err, "REDIS_CLUSTER: out of memory");
    char why[768] = "";
    /* Seeds first, then every node learnt; nodes named by an answer that was
     * refused are asked too (the loop sees cl->nnodes grow). */
    for (int i = 0; i < cl->nnodes; i++) {
        char from[300], asked[256];
        snprintf(asked, sizeof asked, "%s", cl->nodes[i].host);
        snprintf(from, sizeof from, "%s:%d", asked, cl->nodes[i].port);
        rconn *rc = node_conn(cl, i);
        if (!rc) continue;
        if (rconn_ensure(rc) != 0) {
            note(why, sizeof why, "%s: %s", from, rconn_error(rc));
            continue;
        }
        redisReply *r = rconn_cmd(rc, "CLUSTER SLOTS");
        if (!r) {
            note(why, sizeof why, "%s: %s", from, rconn_error(rc));
            continue;
        }
        int bad = parse_slots(cl, asked, r, map, why, sizeof why, from);
        freeReplyObject(r);
        if (bad) continue;
        int gaps = 0, first = -1;
        for (int s = 0; s < RCLUSTER_SLOTS; s++)
            if (map[s] == NO_OWNER && !gaps++) first = s;
        if (gaps) {
            note(why, sizeof why, "%s: %d of %d hash slots have no primary (first: %d)", from, gaps, RCLUSTER_SLOTS,
                 first);
            continue;
        }
        uint16_t *old = malloc(sizeof cl->owner);
        if (old) memcpy(old, cl->owner, sizeof cl->owner);
        int had = cl->have_map && old;
        memcpy(cl->owner, map, sizeof cl->owner);
        cl->have_map = 1;
        atomic_fetch_add(&refreshes, 1);
        log_map(cl, had ? old : NULL, had, map);
        free(old);
        free(map);
        report_usable(1, NULL);
        return 0;
    }
    free(map);
    snprintf(cl->err, sizeof cl->err, "REDIS_CLUSTER=%.200s: no usable slot map (%s)", cl->cfg.redis_cluster,
             why[0] ? why : "no node to ask");
    report_usable(0, cl->err);
    return -1;
}

rconn *rcluster_conn(rcluster *cl, int slot)
{
    if (slot < 0 || slot >= RCLUSTER_SLOTS) {
        log_fail(-1, cl->err, sizeof cl->err, "slot %d out of range", slot);
        return NULL;
    }
    if (!cl->have_map && rcluster_refresh(cl) != 0) return NULL;
    return node_conn(cl, cl->owner[slot]);
}

int rcluster_primaries(rcluster *cl, rconn **out, int max)
{
    if (!cl->have_map && rcluster_refresh(cl) != 0) return 0;
    int n = 0;
    unsigned seen[256];
    for (int s = 0; s < RCLUSTER_SLOTS; s++) {
        int dup = 0;
        for (int k = 0; k < n && !dup; k++) dup = seen[k] == cl->owner[s];
        if (dup || n == 256) continue;
        if (n < max) out[n] = node_conn(cl, cl->owner[s]);
        seen[n++] = cl->owner[s];
    }
    return n;
}

/* --- redirections ------------------------------------------------------------ */

rcluster_kind rcluster_classify(const redisReply *r, rcluster_redirect *rd)
{
    rcluster_redirect tmp;
    if (!rd) rd = &tmp;
    rd->kind = RCLUSTER_REPLY;
    rd->slot = -1;
    rd->host[0] = '\0';
    rd->port = 0;
    if (!r) return rd->kind = RCLUSTER_LOST;
    if (r->type != REDIS_REPLY_ERROR) return RCLUSTER_REPLY;
    if (rreply_is_error(r, "TRYAGAIN")) return rd->kind = RCLUSTER_TRYAGAIN;
    if (rreply_is_error(r, "CLUSTERDOWN")) return rd->kind = RCLUSTER_CLUSTERDOWN;
    int moved = rreply_is_error(r, "MOVED "), ask = rreply_is_error(r, "ASK ");
    if (!moved && !ask) return RCLUSTER_REPLY;
    /* "MOVED 3999 127.0.0.1:6381"; an empty host means the node that answered */
    const char *p = r->str + (moved ? 6 : 4);
    char *end;
    long slot = strtol(p, &end, 10);
    if (end == p || *end != ' ' || slot < 0 || slot >= RCLUSTER_SLOTS) return RCLUSTER_REPLY;
    const char *hp = end + 1, *colon = strrchr(hp, ':');
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || *end || port < 1 || port > 65535 || (size_t)(colon - hp) >= sizeof rd->host) return RCLUSTER_REPLY;
    size_t hl = (size_t)(colon - hp);
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') { /* [IPv6]:port */
        hp++;
        hl -= 2;
    }
    memcpy(rd->host, hp, hl);
    rd->host[hl] = '\0';
    rd->slot = (int)slot;
    rd->port = (int)port;
    return rd->kind = moved ? RCLUSTER_MOVED : RCLUSTER_ASK;
}

static int backoff(int attempt)
{
    int64_t ms = BACKOFF_MIN_MS;
    for (int i = 0; i < attempt && ms < BACKOFF_MAX_MS; i++) ms *= 2;
    return sig_sleep_ms(ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms) ? -1 : 0;
}

int rcluster_recover(rcluster *cl, const rcluster_redirect *rd, int attempt)
{
    switch (rd->kind) {
    case RCLUSTER_REPLY:
    case RCLUSTER_ASK:
        return 0;
    case RCLUSTER_MOVED:
        if (cl->cluster) {
            rcluster_refresh(cl);
            /* The node that answered MOVED knows better than a stale map. */
            int idx = cl->have_map && rd->host[0] ? node_index(cl, rd->host, rd->port) : -1;
            if (idx >= 0 && rd->slot >= 0) cl->owner[rd->slot] = (uint16_t)idx;
        }
        return attempt >= 2 ? backoff(attempt - 2) : 0; /* a map flapping mid-failover */
    case RCLUSTER_TRYAGAIN:
        return backoff(attempt);
    case RCLUSTER_CLUSTERDOWN:
    case RCLUSTER_LOST:
        if (cl->cluster) rcluster_refresh(cl);
        return backoff(attempt);
    }
    return 0;
}

int rcluster_append_asking(rconn *rc)
{
    redisContext *c = rconn_ctx(rc);
    return c && redisAppendCommand(c, "ASKING") == REDIS_OK ? 0 : -1;
}

/* --- routed requests -------------------------------------------------------- */

/* Formatted commands sent as one unit, and how to read their replies. */
typedef struct request {
    char *buf;
    size_t len;
    int nreplies; /* replies buf produces */
    int multi;    /* buf is MULTI … EXEC */
    rscript *script;
} request;

/* [ASKING] + the request on a connected rc: the reply that decides (EXEC's,
 * or a queued command's refusal that made EXEC abort), or NULL after an I/O
 * error (rc dropped; the request may have run). */
static redisReply *send_once(rconn *rc, const request *q, int asking)
{
    redisContext *c = rconn_ctx(rc);
    redisReply *last = NULL, *refused = NULL;
    if (asking && redisAppendCommand(c, "ASKING") != REDIS_OK) goto io;
    if (redisAppendFormattedCommand(c, q->buf, q->len) != REDIS_OK) goto io;
    int total = q->nreplies + (asking ? 1 : 0);
    for (int i = 0; i < total; i++) {
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) goto io;
        if (i == total - 1) last = r;
        else if (q->multi && !refused && rcluster_classify(r, NULL) != RCLUSTER_REPLY) refused = r;
        else freeReplyObject(r);
    }
    if (refused && rreply_is_error(last, "EXECABORT")) {
        freeReplyObject(last);
        return refused;
    }
    freeReplyObject(refused);
    return last;
io:
    freeReplyObject(refused);
    rconn_drop(rc);
    return NULL;
}

static redisReply *route(rcluster *cl, int slot, const request *q)
{
    int64_t deadline = sig_now_ms() + cl->cfg.redis_timeout_ms;
    rconn *rc = NULL;
    int asking = 0;
    redisReply *refusal = NULL; /* the last cluster error reply, returned when retries end */
    for (int attempt = 0;; attempt++) {
        if (!rc) rc = rcluster_conn(cl, slot);
        redisReply *r = NULL;
        int sent = rc && rconn_ensure(rc) == 0;
        if (sent) {
            cl->last = rc;
            r = send_once(rc, q, asking);
            if (r && q->script && rreply_is_error(r, "NOSCRIPT")) { /* this node's cache lacks it */
                freeReplyObject(r);
                r = NULL;
                sent = rscript_load(rc, q->script) == 0;
                if (sent) r = send_once(rc, q, asking);
            }
        }
        if (sent && !r) {
            freeReplyObject(refusal);
            char was[300];
            snprintf(was, sizeof was, "%s:%d: %s", rconn_host(rc), rconn_port(rc), rconn_error(rc));
            if (cl->cluster) rcluster_refresh(cl); /* the next call goes where the slot now lives */
            log_fail(-1, cl->err, sizeof cl->err, "%s (the command may have run)", was);
            return NULL;
        }
        if (!sent && rc && rconn_connected(rc)) { /* SCRIPT LOAD refused: a bug, not an outage */
            freeReplyObject(refusal);
            log_fail(-1, cl->err, sizeof cl->err, "SCRIPT LOAD %s refused on %s:%d", q->script->name,
                     rconn_host(rc), rconn_port(rc));
            return NULL;
        }
        rcluster_redirect rd;
        rcluster_kind k = rcluster_classify(sent ? r : NULL, &rd);
        if (k == RCLUSTER_REPLY || (!cl->cluster && sent)) {
            freeReplyObject(refusal);
            return r;
        }
        if (!cl->cluster) { /* one Redis, not reachable: fail fast, as rconn_cmd */
            log_fail(-1, cl->err, sizeof cl->err, "%s:%d: %s", rconn_host(rc), rconn_port(rc), rconn_error(rc));
            return NULL;
        }
        rcluster_count(k);
        if (sent) {
            log_fail(-1, cl->err, sizeof cl->err, "slot %d: %s", slot, r->str);
            freeReplyObject(refusal);
            refusal = r;
        } else {
            freeReplyObject(refusal); /* the last word is the outage, not an older refusal */
            refusal = NULL;
        }
        if (!sent && rc) {
            log_fail(-1, cl->err, sizeof cl->err, "REDIS_CLUSTER: slot %d: %s:%d: %s", slot, rconn_host(rc),
                     rconn_port(rc), rconn_error(rc));
        } /* else no map: rcluster_refresh has said why in cl->err */
        if ((k == RCLUSTER_ASK || k == RCLUSTER_MOVED) && !rd.host[0])
            snprintf(rd.host, sizeof rd.host, "%s", rconn_host(rc));
        asking = k == RCLUSTER_ASK;
        rc = asking ? rcluster_node(cl, rd.host, rd.port) : NULL;
        if (attempt + 1 >= MAX_ATTEMPTS || sig_now_ms() >= deadline) break;
        if (rcluster_recover(cl, &rd, attempt) != 0) break;
    }
    return refusal;
}

/* Route one formatted command (len < 0: formatting failed) and free it. */
static redisReply *route_one(rcluster *cl, int slot, char *buf, int len, rscript *script)
{
    if (len < 0) {
        log_fail(-1, cl->err, sizeof cl->err, "cannot format the command (bad format or out of memory)");
        return NULL;
    }
    request q = {buf, (size_t)len, 1, 0, script};
    redisReply *r = route(cl, slot, &q);
    redisFreeCommand(buf);
    return r;
}

redisReply *rcluster_cmd(rcluster *cl, int slot, const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    return route_one(cl, slot, buf, len, NULL);
}

redisReply *rcluster_cmd_argv(rcluster *cl, int slot, int argc, const char **argv, const size_t *lens)
{
    char *buf = NULL;
    int len = redisFormatCommandArgv(&buf, argc, argv, lens);
    return route_one(cl, slot, buf, len, NULL);
}

redisReply *rcluster_script(rcluster *cl, int slot, rscript *s, int nkeys, int argc, const char **argv,
                            const size_t *lens)
{
    if (!s->sha[0]) { /* the SHA comes from a node: load it where the slot lives, redirections handled */
        redisReply *r = rcluster_cmd(cl, slot, "SCRIPT LOAD %s", s->src);
        int ok = r && r->type == REDIS_REPLY_STRING && r->len == 40;
        if (ok) memcpy(s->sha, r->str, 41);
        else if (r) log_fail(-1, cl->err, sizeof cl->err, "SCRIPT LOAD %s: %s", s->name, r->str ? r->str : "?");
        freeReplyObject(r);
        if (!ok) return NULL;
    }
    char *buf = NULL;
    int len = rscript_format(s, nkeys, argc, argv, lens, &buf);
    return route_one(cl, slot, buf, len, s);
}

redisReply *rcluster_multi(rcluster *cl, int slot, int n, const rcluster_argv *cmds)
{
    static const char multi[] = "*1\r\n$5\r\nMULTI\r\n", exec[] = "*1\r\n$4\r\nEXEC\r\n";
    dynbuf text;
    dynbuf_init(&text, MULTI_TEXT_MAX);
    if (dynbuf_add(&text, multi, sizeof multi - 1)) goto oom;
    for (int i = 0; i <= n; i++) {
        char *one = NULL;
        int len = i < n ? redisFormatCommandArgv(&one, cmds[i].argc, cmds[i].argv, cmds[i].lens) : 0;
        if (len < 0) goto oom;
        int bad = i < n ? dynbuf_add(&text, one, (size_t)len) : dynbuf_add(&text, exec, sizeof exec - 1);
        redisFreeCommand(one);
        if (bad) goto oom;
    }
    request q = {.buf = text.p, .len = text.len, .nreplies = n + 2, .multi = 1};
    redisReply *r = route(cl, slot, &q);
    dynbuf_free(&text);
    return r;
oom:
    dynbuf_free(&text);
    log_fail(-1, cl->err, sizeof cl->err, "out of memory");
    return NULL;
}
