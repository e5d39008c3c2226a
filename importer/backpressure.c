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
    rconn *rc;
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

int backpressure_ensure_group(backpressure *bp)
{
    for (;;) {
        if (connect_or_stop(bp)) return -1;
        redisReply *r = rconn_cmd(bp->rc, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
        if (!r) continue; /* I/O error: the context was dropped; reconnect */
        set_up(bp, 1);
        int ok = r->type == REDIS_REPLY_STATUS || rreply_is_error(r, "BUSYGROUP");
        if (!ok) {
            char q[300];
            log_error("cannot create the consumer group", "stream=%s group=%s err=%s", KEYS_STREAM, KEYS_GROUP,
                      log_q(q, sizeof q, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
        }
        freeReplyObject(r);
        return ok ? 0 : -1;
    }
}

int backpressure_backlog(rconn *rc, int64_t *backlog)
{
    stream_backlog b;
    if (stream_group_backlog(rc, KEYS_STREAM, KEYS_GROUP, &b) != 0) return -1;
    /* no group (yet, or deleted): every entry in the stream is an upper bound */
    *backlog = b.found ? b.lag + b.pending : b.length;
    return 0;
}

/* Measure the backlog (waiting for Redis); -1 when stopping. */
static int measure(backpressure *bp, int64_t *backlog)
{
    for (;;) {
        if (connect_or_stop(bp)) return -1;
        if (backpressure_backlog(bp->rc, backlog) == 0) break;
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
