/*
 * settle — a test tool's writes to Redis, exactly once over a connection a
 * slow machine can time out (header-only: the tools link libtxagg alone).
 *
 * A reply timeout or a dropped connection after a write leaves its outcome
 * unknown: Redis may have applied it and the reply was lost, or not.  A tool
 * that dies there (or retries blindly) leaves its ledger or dump different
 * from Redis.  So every batch runs as one MULTI … EXEC that also sets the
 * tool's marker key to the batch's sequence number.  When the outcome is
 * unknown the tool reconnects, kills its former connection by CLIENT ID
 * (Redis runs one client's commands in order; once that client is gone, its
 * EXEC either ran or never will), and reads the marker: equal to the batch's
 * number, the batch applied (once); else it did not, and is sent again.
 * Only a deadline of SETTLE_GIVE_UP_MS without a definite answer, or an
 * error reply (a bug, not a slow machine), fails.
 *
 *   settle_init(&s, rc, "archive_probe")   marker "test:settle:<tool>:<pid>.<n>" (1 h TTL)
 *   settle_exec(&s, append, arg, &reply)    0: the batch applied exactly once
 *                                           (*reply: EXEC's reply, or NULL when
 *                                           it was lost); -1: gave up (s.err)
 *   settle_cmd(&s, fmt, …)                  one idempotent command (a read, a
 *                                           SET of a fixed value…), sent again
 *                                           after a reconnect until answered
 *
 * append(c, arg) appends the batch's commands (without MULTI/EXEC) with
 * redisAppendCommand and returns how many.  It is called again for a retry.
 *
 * Counts for the tools' reports: unknown (outcomes settled), lost_replies
 * (applied, reply lost), resent (not applied, sent again).
 *
 * Fault hook of the test tools (never in bin/): with TXAGG_TOOL_DROP_EXEC=N
 * in the environment, the N-th batch is applied but its replies are thrown
 * away and the connection dropped, as if they had timed out — the lost reply
 * of a loaded machine, on demand (tests/e2e/test_tools_settle.sh; a batch
 * Redis never ran is what its CLIENT PAUSE part makes).
 */
#ifndef TXAGG_TESTS_SETTLE_H
#define TXAGG_TESTS_SETTLE_H

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis.h"
#include "signals.h"

#define SETTLE_GIVE_UP_MS (10 * 60 * 1000)
#define SETTLE_MARKER_TTL_MS (60 * 60 * 1000) /* outlives any test, then leaves Redis */

typedef struct settle {
    rconn *rc;
    char marker[128];
    long long seq, client_id, drop_at;
    long unknown, lost_replies, resent;
    char err[256];
} settle;

static inline void settle_init(settle *s, rconn *rc, const char *tool)
{
    memset(s, 0, sizeof *s);
    s->rc = rc;
    snprintf(s->marker, sizeof s->marker, "test:settle:%s:%ld.%lld", tool, (long)getpid(),
             (long long)sig_now_ms() * 1000 + (long long)(rand() % 1000));
    const char *d = getenv("TXAGG_TOOL_DROP_EXEC");
    s->drop_at = d ? atoll(d) : 0;
}

/* Connected, with our client id known: 0, or -1 at the deadline. */
static inline int settle_connect(settle *s, int64_t deadline)
{
    while (sig_now_ms() < deadline) {
        if (rconn_ensure(s->rc) == 0) {
            if (s->client_id) return 0;
            redisReply *r = rconn_cmd(s->rc, "CLIENT ID");
            if (r && r->type == REDIS_REPLY_INTEGER) {
                s->client_id = r->integer;
                freeReplyObject(r);
                return 0;
            }
            if (r) freeReplyObject(r);
        }
        sig_sleep_ms(50);
    }
    snprintf(s->err, sizeof s->err, "redis unreachable for %d s: %s", SETTLE_GIVE_UP_MS / 1000,
             rconn_error(s->rc));
    return -1;
}

/* After an unknown outcome: 1 when batch seq applied, 0 when it did not and
 * never will, -1 at the deadline. */
static inline int settle_outcome(settle *s, int64_t deadline)
{
    long long old = s->client_id;
    for (;;) {
        s->client_id = 0;
        if (settle_connect(s, deadline) != 0) return -1;
        redisReply *k = rconn_cmd(s->rc, "CLIENT KILL ID %lld", old); /* "No such client" when gone */
        if (!k) continue;
        freeReplyObject(k);
        redisReply *m = rconn_cmd(s->rc, "GET %s", s->marker);
        if (!m) continue;
        int applied = m->type == REDIS_REPLY_STRING && atoll(m->str) == s->seq;
        freeReplyObject(m);
        return applied;
    }
}

static inline int settle_exec(settle *s, int (*append)(redisContext *c, void *arg), void *arg, redisReply **reply)
{
    int64_t deadline = sig_now_ms() + SETTLE_GIVE_UP_MS;
    s->seq++;
    if (reply) *reply = NULL;
    for (;;) {
        if (settle_connect(s, deadline) != 0) return -1;
        redisContext *c = rconn_ctx(s->rc);
        redisAppendCommand(c, "MULTI");
        int n = append(c, arg);
        redisAppendCommand(c, "SET %s %lld PX %d", s->marker, s->seq, SETTLE_MARKER_TTL_MS);
        redisAppendCommand(c, "EXEC");
        int io_error = 0;
        if (s->drop_at && s->seq == s->drop_at) { /* the fault hook: EXEC applied, its reply lost */
            s->drop_at = 0;
            for (int i = 0; i < n + 3; i++) {
                redisReply *r = NULL;
                if (redisGetReply(c, (void **)&r) != REDIS_OK) break;
                freeReplyObject(r);
            }
            io_error = 1;
        }
        redisReply *exec = NULL;
        for (int i = 0; i < n + 3 && !io_error; i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                io_error = 1;
                break;
            }
            if (r->type == REDIS_REPLY_ERROR) { /* refused, not lost: queued commands are checked at MULTI time */
                snprintf(s->err, sizeof s->err, "redis error in a batch: %s", r->str);
                freeReplyObject(r);
                for (i++; i < n + 3; i++) {
                    if (redisGetReply(c, (void **)&r) != REDIS_OK) break;
                    freeReplyObject(r);
                }
                return -1;
            }
            if (i == n + 2) exec = r;
            else freeReplyObject(r);
        }
        if (!io_error) {
            if (exec->type != REDIS_REPLY_ARRAY || exec->elements != (size_t)n + 1) {
                snprintf(s->err, sizeof s->err, "MULTI/EXEC did not apply");
                freeReplyObject(exec);
                return -1;
            }
            if (reply) *reply = exec;
            else freeReplyObject(exec);
            return 0;
        }
        rconn_drop(s->rc);
        s->unknown++;
        int applied = settle_outcome(s, deadline);
        if (applied < 0) return -1;
        if (applied) {
            s->lost_replies++;
            return 0;
        }
        s->resent++;
    }
}

/* One idempotent command, sent again after an I/O error until answered. */
static inline redisReply *settle_cmd(settle *s, const char *fmt, ...)
{
    int64_t deadline = sig_now_ms() + SETTLE_GIVE_UP_MS;
    for (;;) {
        if (settle_connect(s, deadline) != 0) return NULL;
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = redisvCommand(rconn_ctx(s->rc), fmt, ap);
        va_end(ap);
        if (r) return r;
        rconn_drop(s->rc);
        s->client_id = 0;
    }
}

#endif
