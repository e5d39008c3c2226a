/*
 * backpressure — the backlog bound; see backpressure.h.
 *
 * Invariant (one importer): a batch is published only while the rows
 * published since the last measurement are fewer than the room that
 * measurement left (MAX_BACKLOG - backlog), and aggregators only shrink the
 * backlog, so the backlog never exceeds MAX_BACKLOG + BATCH_SIZE - 1.  The
 * backlog is also measured again at least every RECHECK_MS while publishing,
 * which bounds the overshoot when several importers share the room.  While
 * waiting, Redis is polled every POLL_MS; the wait is logged once when it
 * starts and once when it ends, and counted in /metrics.
 *
 * Partitions (backpressure_new_tier): the backlog is the sum over every
 * partition's stream of its group's backlog, each measured where the
 * partition lives; the group is created on every partition's stream.  On one
 * Redis through the partition's connection (stream_group_backlog); on a
 * cluster through rcluster_cmd, which follows redirections — an XINFO
 * answered MOVED by a node must not read as "no such stream" (0).
 */
#include "backpressure.h"
#include "stream.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"

#include <stdlib.h>
#include <string.h>

#define RECHECK_MS 100
#define POLL_MS 100

struct backpressure {
    rconn *rc;  /* backpressure_new: the one connection, untagged names */
    tier *t;    /* backpressure_new_tier: every partition */
    int64_t max;
    int64_t room;      /* rows that may still be published before measuring again */
    int64_t checked_ms; /* when the room was measured (0 = never) */
    atomic_int *up;
    metric *m_waits, *m_backlog;
};

backpressure *backpressure_new(rconn *rc, int64_t max_backlog, atomic_int *up)
{
    backpressure *bp = calloc(1, sizeof *bp);
    if (!bp) return NULL;
    bp->rc = rc;
    bp->max = max_backlog;
    bp->up = up;
    bp->m_waits = metrics_counter("txagg_importer_backpressure_waits_total",
                                  "times the importer waited for the group backlog to fall below MAX_BACKLOG", NULL);
    bp->m_backlog = metrics_gauge("txagg_importer_backlog", "group backlog (lag + pending) last measured", NULL);
    return bp;
}

backpressure *backpressure_new_tier(tier *t, int64_t max_backlog, atomic_int *up)
{
    backpressure *bp = backpressure_new(NULL, max_backlog, up);
    if (bp) bp->t = t;
    return bp;
}

void backpressure_free(backpressure *bp) { free(bp); }

static void set_up(backpressure *bp, int v)
{
    if (bp->up) atomic_store(bp->up, v);
}

/* Connected (waiting if needed); -1 when stopping while disconnected. */
static int connect_or_stop(backpressure *bp)
{
    if (rconn_ensure(bp->rc) == 0) return 0;
    set_up(bp, 0);
    return rconn_wait(bp->rc);
}

static int is_cluster(const backpressure *bp) { return bp->t && rcluster_is_cluster(bp->t->cl); }

/* On a cluster: back off after a failed request (the map refreshed); -1
 * when stopping. */
static int cluster_pause(backpressure *bp, int attempt)
{
    set_up(bp, 0);
    rcluster_redirect rd = {.kind = RCLUSTER_LOST};
    return rcluster_recover(bp->t->cl, &rd, attempt > 8 ? 8 : attempt);
}

/* The group on stream (of partition part when bp->t); see backpressure_ensure_group. */
static int ensure_group_of(backpressure *bp, int part, const char *stream)
{
    for (int attempt = 0;; attempt++) {
        redisReply *r;
        if (is_cluster(bp)) {
            r = rcluster_cmd(bp->t->cl, bp->t->parts[part].slot, "XGROUP CREATE %s %s 0 MKSTREAM", stream, KEYS_GROUP);
            if (!r || rcluster_classify(r, NULL) != RCLUSTER_REPLY) { /* retries exhausted: again */
                if (r) freeReplyObject(r);
                if (cluster_pause(bp, attempt)) return -1;
                continue;
            }
        } else {
            if (bp->t) bp->rc = tier_conn(bp->t, part);
            if (connect_or_stop(bp)) return -1;
            r = rconn_cmd(bp->rc, "XGROUP CREATE %s %s 0 MKSTREAM", stream, KEYS_GROUP);
            if (!r) continue; /* I/O error: the context was dropped; reconnect */
        }
        set_up(bp, 1);
        int ok = r->type == REDIS_REPLY_STATUS || rreply_is_error(r, "BUSYGROUP");
        if (!ok) {
            char q[300];
            log_error("cannot create the consumer group", "stream=%s group=%s err=%s", stream, KEYS_GROUP,
                      log_q(q, sizeof q, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
        }
        freeReplyObject(r);
        return ok ? 0 : -1;
    }
}

int backpressure_ensure_group(backpressure *bp)
{
    if (!bp->t) return ensure_group_of(bp, 0, KEYS_STREAM);
    for (int p = 0; p < bp->t->n; p++)
        if (ensure_group_of(bp, p, bp->t->parts[p].stream)) return -1;
    return 0;
}

/* The value of name in a flat name/value reply (XINFO), or NULL. */
static const redisReply *field(const redisReply *a, const char *name)
{
    if (!a || a->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < a->elements; i += 2) {
        const redisReply *k = a->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) && !strcmp(k->str, name))
            return a->element[i + 1];
    }
    return NULL;
}

static int64_t int_of(const redisReply *r, int64_t dflt) { return r && r->type == REDIS_REPLY_INTEGER ? r->integer : dflt; }

/*
 * The backlog of a partition's stream on a cluster: XINFO STREAM and XINFO
 * GROUPS through rcluster_cmd, read by the rules of common/stream.h (lag 0
 * when the group delivered the last id, nil lag = length - pending, lag +
 * pending at most the length).  0, or -1 when the cluster did not answer.
 */
static int cluster_backlog(backpressure *bp, int part, int64_t *backlog)
{
    int slot = bp->t->parts[part].slot;
    const char *stream = bp->t->parts[part].stream;
    redisReply *s = rcluster_cmd(bp->t->cl, slot, "XINFO STREAM %s", stream);
    if (!s || rcluster_classify(s, NULL) != RCLUSTER_REPLY) {
        if (s) freeReplyObject(s);
        return -1;
    }
    *backlog = 0;
    if (s->type != REDIS_REPLY_ARRAY) { /* no such key: nothing waits */
        freeReplyObject(s);
        return 0;
    }
    redisReply *g = rcluster_cmd(bp->t->cl, slot, "XINFO GROUPS %s", stream);
    if (!g || rcluster_classify(g, NULL) != RCLUSTER_REPLY) {
        freeReplyObject(s);
        if (g) freeReplyObject(g);
        return -1;
    }
    int64_t length = int_of(field(s, "length"), 0), lag = 0, pending = 0;
    const redisReply *last = field(s, "last-generated-id");
    int found = 0;
    for (size_t i = 0; g->type == REDIS_REPLY_ARRAY && i < g->elements; i++) {
        const redisReply *e = g->element[i], *name = field(e, "name"), *delivered = field(e, "last-delivered-id");
        if (!name || name->type != REDIS_REPLY_STRING || strcmp(name->str, KEYS_GROUP) != 0) continue;
        found = 1;
        pending = int_of(field(e, "pending"), 0);
        if (delivered && last && delivered->type == REDIS_REPLY_STRING && last->type == REDIS_REPLY_STRING &&
            !strcmp(delivered->str, last->str))
            lag = 0;
        else lag = int_of(field(e, "lag"), length - pending);
        if (lag < 0) lag = 0;
        if (lag + pending > length) lag = length > pending ? length - pending : 0;
    }
    *backlog = found ? lag + pending : length;
    freeReplyObject(s);
    freeReplyObject(g);
    return 0;
}

int backpressure_backlog_of(rconn *rc, const char *stream, int64_t *backlog)
{
    stream_backlog b;
    if (stream_group_backlog(rc, stream, KEYS_GROUP, &b) != 0) return -1;
    /* no group (yet, or deleted): every entry in the stream is an upper bound */
    *backlog = b.found ? b.lag + b.pending : b.length;
    return 0;
}

int backpressure_backlog(rconn *rc, int64_t *backlog) { return backpressure_backlog_of(rc, KEYS_STREAM, backlog); }

/* The backlog of every partition, summed (waiting for Redis); -1 when stopping. */
static int measure_tier(backpressure *bp, int64_t *backlog)
{
    *backlog = 0;
    for (int p = 0; p < bp->t->n; p++) {
        int64_t one = 0;
        for (int attempt = 0;; attempt++) {
            if (is_cluster(bp)) {
                if (cluster_backlog(bp, p, &one) == 0) break;
                if (cluster_pause(bp, attempt)) return -1;
                continue;
            }
            bp->rc = tier_conn(bp->t, p);
            if (connect_or_stop(bp)) return -1;
            if (backpressure_backlog_of(bp->rc, bp->t->parts[p].stream, &one) == 0) break;
        }
        *backlog += one;
    }
    return 0;
}

/* Measure the backlog (waiting for Redis); -1 when stopping. */
static int measure(backpressure *bp, int64_t *backlog)
{
    if (bp->t) {
        if (measure_tier(bp, backlog)) return -1;
    } else {
        for (;;) {
            if (connect_or_stop(bp)) return -1;
            if (backpressure_backlog(bp->rc, backlog) == 0) break;
        }
    }
    set_up(bp, 1);
    metrics_set(bp->m_backlog, *backlog);
    bp->checked_ms = sig_now_ms();
    bp->room = bp->max - *backlog;
    return 0;
}

int backpressure_reserve(backpressure *bp, int64_t n)
{
    int64_t now = sig_now_ms();
    if (bp->checked_ms && bp->room > 0 && now - bp->checked_ms < RECHECK_MS) {
        bp->room -= n;
        return 0;
    }
    int64_t backlog;
    if (measure(bp, &backlog)) return -1;
    if (bp->room > 0) {
        bp->room -= n;
        return 0;
    }
    metrics_inc(bp->m_waits);
    int64_t since = sig_now_ms();
    log_warn("backlog above MAX_BACKLOG, waiting for the aggregators", "backlog=%lld max_backlog=%lld",
             (long long)backlog, (long long)bp->max);
    while (bp->room <= 0) {
        if (sig_sleep_ms(POLL_MS)) return -1;
        if (measure(bp, &backlog)) return -1;
    }
    log_info("backlog below MAX_BACKLOG, publishing again", "backlog=%lld max_backlog=%lld waited_ms=%lld",
             (long long)backlog, (long long)bp->max, (long long)(sig_now_ms() - since));
    bp->room -= n;
    return 0;
}
