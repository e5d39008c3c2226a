/*
 * consumer — the group member's read/apply loop, recovery and claims; see
 * consumer.h.
 *
 * Batches in hand.  `cur` is parsed and is applied next; `raw` is a read
 * reply already received but not parsed; `nxt` receives it while Redis runs
 * the apply of `cur`.  In the steady state one pump round trip carries
 * EVALSHA(cur) + XREADGROUP(next), so at most three batches of this consumer
 * are pending at once.  `aux` holds the batch of a recovery page or a claim.
 *
 * Invariants:
 *  - a batch is applied only by apply.lua, whose ownership check runs in the
 *    same atomic script as its writes and XACK;
 *  - whatever is dropped from memory (stale batch, connection loss, bad
 *    reply) is still pending for this consumer in Redis, and need_recover is
 *    set, so the next step re-reads and applies it;
 *  - a claimed batch's ids lie below every id in hand (entries idle for
 *    CLAIM_IDLE_MS were delivered before anything read since), so claiming
 *    between pumps does not make the in-hand batches stale.  If that ever
 *    fails to hold, the check answers "stale" and recovery sorts it out.
 */
#include "consumer.h"
#include "keys.h"
#include "log.h"
#include "signals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_ID_MAX 48    /* "18446744073709551615-18446744073709551615" */
#define RECOVER_RESTARTS 64 /* stale pages restart recovery at most this often per call */
#define CLAIM_ROUNDS 100    /* XAUTOCLAIM calls per consumer_claim at most */

typedef struct slot {
    batch b;
    redisReply *reply; /* the batch's ids point into it */
    int full;          /* parsed and not applied yet */
} slot;

struct consumer {
    rconn *rc;
    agg_stats *st;
    char name[128];
    int batch_size;
    int block_ms;
    slot cur, nxt, aux;
    redisReply *raw; /* a read reply received, not parsed yet */
    apply_args args;
    int need_setup, need_recover;
    int set_up;
    char claim_cursor[STREAM_ID_MAX];
    int refused; /* the script is refusing our batches (logged once per change) */
};

static void slot_clear(slot *s)
{
    if (s->reply) freeReplyObject(s->reply);
    s->reply = NULL;
    s->full = 0;
    batch_reset(&s->b);
}

/* Forget everything in hand: it is all still pending for us in Redis. */
static void drop_in_hand(consumer *c)
{
    slot_clear(&c->cur);
    slot_clear(&c->nxt);
    slot_clear(&c->aux);
    if (c->raw) freeReplyObject(c->raw);
    c->raw = NULL;
}

consumer *consumer_new(rconn *rc, const char *name, int batch_size, int block_ms, agg_stats *st)
{
    consumer *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (batch_init(&c->cur.b) || batch_init(&c->nxt.b) || batch_init(&c->aux.b)) {
        consumer_free(c);
        return NULL;
    }
    c->rc = rc;
    c->st = st;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->batch_size = batch_size > 0 ? batch_size : 1;
    c->block_ms = block_ms > 0 ? block_ms : 1;
    apply_args_init(&c->args);
    c->need_setup = c->need_recover = 1;
    snprintf(c->claim_cursor, sizeof c->claim_cursor, "0-0");
    return c;
}

void consumer_free(consumer *c)
{
    if (!c) return;
    drop_in_hand(c);
    batch_free(&c->cur.b);
    batch_free(&c->nxt.b);
    batch_free(&c->aux.b);
    apply_args_free(&c->args);
    free(c);
}

int consumer_ready(const consumer *c) { return c->set_up && !c->need_setup && rconn_connected(c->rc); }

/* A connection error: the context is gone, so is anything in flight. */
static long fail_io(consumer *c)
{
    rconn_drop(c->rc);
    drop_in_hand(c);
    c->need_setup = c->need_recover = 1;
    return -1;
}

/* ---- parsing ------------------------------------------------------------- */

int consumer_batch_from_entries(batch *b, const redisReply *entries)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY) return -1;
    const char *fv_stack[64];
    size_t fl_stack[64];
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING) return -1;
        const redisReply *id = e->element[0], *f = e->element[1];
        if (f->type == REDIS_REPLY_NIL) {
            if (batch_add(b, id->str, id->len, NULL, NULL, 0)) return -1;
            continue;
        }
        if (f->type != REDIS_REPLY_ARRAY) return -1;
        const char **fv = fv_stack;
        size_t *fl = fl_stack;
        if (f->elements > 64) {
            fv = malloc(f->elements * sizeof *fv);
            fl = malloc(f->elements * sizeof *fl);
        }
        int rv = fv && fl ? 0 : -1;
        for (size_t j = 0; rv == 0 && j < f->elements; j++) {
            const redisReply *s = f->element[j];
            if (s->type != REDIS_REPLY_STRING) rv = -1;
            else {
                fv[j] = s->str;
                fl[j] = s->len;
            }
        }
        if (rv == 0) rv = batch_add(b, id->str, id->len, fv, fl, f->elements);
        if (fv != fv_stack) {
            free(fv);
            free(fl);
        }
        if (rv) return -1;
    }
    return batch_finish(b);
}

/* The entries array of an XREADGROUP reply (one stream), NULL when none. */
static const redisReply *read_entries(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) return NULL;
    const redisReply *s = r->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) return NULL;
    return s->element[1];
}

/*
 * Turn a read reply into a full slot (the slot takes the reply).  Returns the
 * number of entries, 0 for an empty read (reply freed), -1 for an unusable
 * reply (freed; flags set).
 */
static long slot_fill(consumer *c, slot *s, redisReply *r)
{
    slot_clear(s);
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char q[300];
        if (strstr(r->str, "NOGROUP")) {
            log_warn("consumer group missing, creating it again", "group=%s", KEYS_GROUP);
            c->need_setup = 1;
        } else {
            log_error("read failed", "err=%s", log_q(q, sizeof q, r->str));
        }
        c->need_recover = 1;
        freeReplyObject(r);
        return -1;
    }
    const redisReply *entries = read_entries(r);
    if (!entries) {
        log_error("unexpected read reply", "type=%d", r->type);
        freeReplyObject(r);
        c->need_recover = 1;
        return -1;
    }
    if (entries->elements == 0) {
        freeReplyObject(r);
        return 0;
    }
    s->reply = r;
    if (consumer_batch_from_entries(&s->b, entries) != 0) {
        log_error("unusable read reply (bad shape or out of memory); re-reading pending entries");
        slot_clear(s);
        c->need_recover = 1;
        return -1;
    }
    s->full = 1;
    return (long)s->b.n_ids;
}

/* ---- applying ------------------------------------------------------------ */

/* Account for an apply outcome; sets the flags for the next step.  Returns
 * entries applied (>= 0) or -1 when the connection is gone. */
static long settle(consumer *c, const batch *b, const apply_result *res)
{
    char q[300];
    switch (res->status) {
    case APPLY_OK:
        if ((size_t)res->count != b->n_ids)
            log_error("batch acknowledged fewer entries than it holds", "ids=%zu acked=%lld", b->n_ids, res->count);
        metrics_add(c->st->entries_applied, (uint64_t)res->count);
        metrics_add(c->st->rows_counted, b->n_valid);
        metrics_add(c->st->rejected, b->n_malformed);
        metrics_add(c->st->gone, b->n_gone);
        metrics_inc(c->st->batches);
        if (c->refused) log_info("batches apply again");
        c->refused = 0;
        log_debug("batch applied", "entries=%zu valid=%zu malformed=%zu gone=%zu", b->n_ids, b->n_valid,
                  b->n_malformed, b->n_gone);
        return res->count;
    case APPLY_STALE:
        metrics_inc(c->st->stale_batches);
        log_debug("batch stale: entries no longer ours, re-reading pending", "entries=%zu owned=%lld", b->n_ids,
                  res->count);
        c->need_recover = 1;
        return 0;
    case APPLY_NOGROUP:
        log_warn("consumer group missing, creating it again", "group=%s", KEYS_GROUP);
        c->need_setup = c->need_recover = 1;
        return 0;
    case APPLY_NOSCRIPT: /* handled by the caller; not expected here */
    case APPLY_EREPLY:
        /* The batch stays pending: refused again on every retry until the
         * offending key is repaired; logged once per change, retried slowly. */
        if (!c->refused)
            log_error("batch refused by the apply script, nothing written; retrying every second until repaired",
                      "err=%s", log_q(q, sizeof q, res->err));
        else log_debug("batch refused again", "err=%s", log_q(q, sizeof q, res->err));
        c->refused = 1;
        c->need_recover = 1;
        sig_sleep_ms(1000);
        return 0;
    case APPLY_EIO:
    default:
        c->need_setup = c->need_recover = 1;
        return -1;
    }
}

/* Apply a full slot synchronously and clear it.  Returns entries applied;
 * res->status says what happened (APPLY_EREPLY when the arguments could not
 * be built). */
static long apply_slot_sync(consumer *c, slot *s, apply_result *res)
{
    if (apply_build(&c->args, &s->b, KEYS_GROUP, c->name) != 0) {
        log_error("cannot build the apply arguments (out of memory)");
        res->status = APPLY_EREPLY;
        slot_clear(s);
        c->need_recover = 1;
        return 0;
    }
    apply_run(c->rc, &c->args, res);
    long n = settle(c, &s->b, res);
    slot_clear(s);
    if (n < 0) drop_in_hand(c);
    return n;
}

int consumer_setup(consumer *c)
{
    if (rconn_ensure(c->rc) != 0) return -1;
    redisReply *r = rconn_cmd(c->rc, "XGROUP CREATE %s %s 0 MKSTREAM", KEYS_STREAM, KEYS_GROUP);
    if (!r) return -1;
    int ok = r->type == REDIS_REPLY_STATUS || rreply_is_error(r, "BUSYGROUP");
    if (!ok) {
        char q[300];
        log_error("cannot create the consumer group", "group=%s err=%s", KEYS_GROUP, log_q(q, sizeof q, r->str));
    }
    freeReplyObject(r);
    if (!ok || apply_load(c->rc) != 0) return -1;
    c->need_setup = 0;
    c->set_up = 1;
    return 0;
}

long consumer_recover(consumer *c)
{
    drop_in_hand(c); /* all of it is in the pending list we are about to read */
    char from[STREAM_ID_MAX] = "0", count[16];
    snprintf(count, sizeof count, "%d", c->batch_size);
    long total = 0;
    int restarts = 0;
    for (;;) {
        redisReply *r = rconn_cmd(c->rc, "XREADGROUP GROUP %s %s COUNT %s STREAMS %s %s", KEYS_GROUP, c->name, count,
                                  KEYS_STREAM, from);
        if (!r) return fail_io(c);
        long n = slot_fill(c, &c->aux, r);
        if (n < 0) return -1;
        if (n == 0) break;
        const batch *b = &c->aux.b;
        snprintf(from, sizeof from, "%.*s", (int)b->idlens[b->n_ids - 1], b->ids[b->n_ids - 1]);
        int last_page = n < c->batch_size;
        apply_result res;
        long applied = apply_slot_sync(c, &c->aux, &res);
        if (applied < 0 || res.status == APPLY_NOGROUP || res.status == APPLY_EREPLY) return -1;
        if (res.status != APPLY_OK) { /* stale: start over from the head of our list */
            if (++restarts > RECOVER_RESTARTS) return -1;
            snprintf(from, sizeof from, "0");
            continue;
        }
        total += applied;
        if (last_page) break;
    }
    c->need_recover = 0;
    if (total) log_info("pending entries recovered", "consumer=%s entries=%ld", c->name, total);
    return total;
}

long consumer_claim(consumer *c, int64_t min_idle_ms)
{
    char idle[32], count[16];
    snprintf(idle, sizeof idle, "%lld", (long long)min_idle_ms);
    snprintf(count, sizeof count, "%d", c->batch_size);
    long claimed = 0;
    for (int round = 0; round < CLAIM_ROUNDS && !c->need_recover && !c->need_setup; round++) {
        redisReply *r = rconn_cmd(c->rc, "XAUTOCLAIM %s %s %s %s %s COUNT %s", KEYS_STREAM, KEYS_GROUP, c->name, idle,
                                  c->claim_cursor, count);
        if (!r) return fail_io(c);
        if (r->type == REDIS_REPLY_ERROR) {
            if (strstr(r->str, "NOGROUP")) c->need_setup = c->need_recover = 1;
            else {
                char q[300];
                log_error("claim failed", "err=%s", log_q(q, sizeof q, r->str));
            }
            freeReplyObject(r);
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            return -1;
        }
        snprintf(c->claim_cursor, sizeof c->claim_cursor, "%s", r->element[0]->str);
        int wrapped = !strcmp(c->claim_cursor, "0-0");
        const redisReply *entries = r->element[1];
        if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) {
            freeReplyObject(r);
            if (wrapped) break;
            continue;
        }
        /* the claimed entries are ours now: from here on the usual rules */
        slot_clear(&c->aux);
        c->aux.reply = r;
        if (consumer_batch_from_entries(&c->aux.b, entries) != 0) {
            slot_clear(&c->aux);
            c->need_recover = 1;
            return -1;
        }
        size_t n = c->aux.b.n_ids;
        metrics_add(c->st->claims, n);
        log_info("entries claimed from idle consumers", "consumer=%s entries=%zu min_idle_ms=%s", c->name, n, idle);
        apply_result res;
        if (apply_slot_sync(c, &c->aux, &res) < 0) return -1;
        claimed += (long)n;
        if (wrapped) break;
    }
    return claimed;
}

/* ---- the pipelined pump -------------------------------------------------- */

long consumer_pump(consumer *c)
{
    if (!c->cur.full && c->nxt.full) { /* nxt was filled by a previous pump */
        slot t = c->cur;
        c->cur = c->nxt;
        c->nxt = t;
    }
    if (!c->cur.full) {
        if (!c->raw) {
            if (sig_stopping()) return 0;
            if (!rconn_ctx(c->rc)) return fail_io(c);
            c->raw = rconn_cmd(c->rc, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >", KEYS_GROUP, c->name,
                               c->batch_size, c->block_ms, KEYS_STREAM);
            if (!c->raw) return fail_io(c);
        }
        redisReply *r = c->raw;
        c->raw = NULL;
        if (slot_fill(c, &c->cur, r) <= 0) return 0;
    }

    redisContext *ctx = rconn_ctx(c->rc);
    if (!ctx) return fail_io(c);
    if (apply_build(&c->args, &c->cur.b, KEYS_GROUP, c->name) != 0) {
        log_error("cannot build the apply arguments (out of memory)");
        drop_in_hand(c);
        c->need_recover = 1;
        return 0;
    }
    if (apply_send(c->rc, &c->args) != 0) return fail_io(c);
    /* raw (if any) moves into nxt below, so a read is due unless nxt is taken */
    int want_read = !sig_stopping() && !c->nxt.full;
    if (want_read && redisAppendCommand(ctx, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >", KEYS_GROUP,
                                        c->name, c->batch_size, c->block_ms, KEYS_STREAM) != REDIS_OK)
        return fail_io(c);
    for (int done = 0; !done;)
        if (redisBufferWrite(ctx, &done) != REDIS_OK) return fail_io(c);

    /* Redis runs the script (and the read) while we parse the previous read. */
    if (c->raw) { /* a failure only sets flags: the replies below must still be read */
        redisReply *r = c->raw;
        c->raw = NULL;
        slot_fill(c, &c->nxt, r);
    }

    void *reply = NULL;
    if (redisGetReply(ctx, &reply) != REDIS_OK) return fail_io(c);
    apply_result res;
    apply_parse_reply(reply, &res);
    freeReplyObject(reply);
    /* The read may fail (it can block for block_ms) after the apply
     * succeeded: account for the apply first, then fail. */
    int read_failed = 0;
    if (want_read) {
        reply = NULL;
        if (redisGetReply(ctx, &reply) != REDIS_OK) read_failed = 1;
        else c->raw = reply;
    }
    if (res.status == APPLY_NOSCRIPT) { /* the script did not run; the pipeline is drained: run it now */
        if (read_failed) res.status = APPLY_EIO;
        else apply_run(c->rc, &c->args, &res);
    }
    long n = settle(c, &c->cur.b, &res);
    slot_clear(&c->cur);
    if (n < 0 || read_failed) {
        fail_io(c);
        return n < 0 ? -1 : n;
    }
    if (c->need_recover || c->need_setup) drop_in_hand(c);
    return n;
}

long consumer_step(consumer *c)
{
    if (c->need_setup || !rconn_connected(c->rc)) {
        if (c->set_up && !c->need_setup) { /* connection lost between steps (e.g. by a periodic task) */
            c->need_recover = 1;
        }
        c->need_setup = 1;
        if (rconn_wait(c->rc) != 0) return -1;
        if (consumer_setup(c) != 0) {
            sig_sleep_ms(1000); /* not an outage (rconn logs those): e.g. `transactions` is not a stream */
            return 0;
        }
    }
    if (c->need_recover) {
        long n = consumer_recover(c);
        return n < 0 ? 0 : n;
    }
    return consumer_pump(c);
}

long consumer_drain(consumer *c)
{
    long total = 0;
    while ((c->cur.full || c->nxt.full || c->raw) && !c->need_recover && !c->need_setup) {
        long n = consumer_pump(c);
        if (n < 0) break;
        total += n;
    }
    if (c->need_recover && !c->need_setup && rconn_connected(c->rc)) {
        long n = consumer_recover(c);
        if (n > 0) total += n;
    }
    return total;
}

long consumer_fetch(consumer *c, int block_ms)
{
    redisReply *r = block_ms > 0 ? rconn_cmd(c->rc, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >",
                                             KEYS_GROUP, c->name, c->batch_size, block_ms, KEYS_STREAM)
                                 : rconn_cmd(c->rc, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s >", KEYS_GROUP,
                                             c->name, c->batch_size, KEYS_STREAM);
    if (!r) return fail_io(c);
    return slot_fill(c, &c->cur, r);
}

void consumer_commit(consumer *c, apply_result *res)
{
    res->status = APPLY_EREPLY;
    res->count = 0;
    snprintf(res->err, sizeof res->err, "nothing in hand");
    if (!c->cur.full) return;
    if (apply_build(&c->args, &c->cur.b, KEYS_GROUP, c->name) != 0) {
        snprintf(res->err, sizeof res->err, "out of memory");
        return;
    }
    apply_run(c->rc, &c->args, res);
    if (settle(c, &c->cur.b, res) < 0) {
        fail_io(c);
        return;
    }
    slot_clear(&c->cur);
}
