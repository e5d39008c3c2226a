/*
 * consumer — the group member's read/apply loop, recovery and claims; see
 * consumer.h.
 *
 * Batches in hand.  Two slots: `head` (parsed, applied next) and `next`.
 * One pump round trip carries XREADGROUP (no BLOCK, into `next`) and then
 * EVALSHA(head): Redis answers the read first, so the client builds and
 * parses the next batch while Redis runs the script, and Redis finds the
 * next script waiting as soon as the client has accounted for the last one.
 * Only an empty hand blocks (XREADGROUP … BLOCK), so an idle stream costs no
 * apply latency.  At most two batches of this consumer are pending at once.
 * `aux` holds a recovery page or a claim.  Every slot's reply lives in the
 * slot's reply arena (reply_arena.h): no malloc per entry.
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
 *    fails to hold, the check answers "stale" and recovery sorts it out;
 *  - valid input never stalls the pipeline: a batch refused for one counter
 *    (APPLY_REFUSED: retrying cannot cure it) is applied in halves down to
 *    the entries that cannot be applied, which are dead-lettered (see
 *    "refused batches" below).  Only a refusal that names no counter (a
 *    system key of the wrong type) stops the consumer, retried every second.
 */
#include "consumer.h"
#include "keys.h"
#include "log.h"
#include "reply_arena.h"
#include "signals.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_ID_MAX 48    /* "18446744073709551615-18446744073709551615" */
#define RECOVER_RESTARTS 64 /* stale pages restart recovery at most this often per call */
#define CLAIM_ROUNDS 100    /* XAUTOCLAIM calls per consumer_claim at most */
#define CONSUMER_LINGER_MS 10 /* wait after a partial batch before reading again */

enum { S_EMPTY, S_RAW, S_FULL };

typedef struct slot {
    batch b;
    reply_arena arena;
    redisReply *reply; /* in the arena; the batch's ids point into it */
    const redisReply *entries; /* the entries array inside reply (S_FULL) */
    int state;         /* S_EMPTY, S_RAW (reply received, not parsed), S_FULL (parsed) */
} slot;

struct consumer {
    rconn *rc;    /* the connection serving the partition (re-asked of the tier at every step) */
    tier *t;      /* NULL: a consumer of one fixed rconn (consumer_new) */
    int p;        /* the partition (t set) */
    keys_part part; /* its key names (today's untagged names for consumer_new) */
    int cluster;  /* Redis Cluster: never wait on one node, recover the slot map instead */
    int solo;     /* the only partition: block and linger inside the pump, as always */
    int64_t retry_at; /* not solo: skip this partition until then (outage, redirection, refusal) */
    int redirs;   /* recoveries since the last batch applied (backoff) */
    agg_stats *st;
    char name[128];
    int batch_size;
    int block_ms;
    slot ring[2]; /* ring[h] is the head */
    int h;
    slot aux;
    batch iso; /* a part of a refused batch (refused batches) */
    apply_args args;
    int need_setup, need_recover;
    int set_up;
    char claim_cursor[STREAM_ID_MAX];
    int refused;      /* the script is refusing our batches (logged once per change) */
    int last_partial; /* the last batch applied was not full: we are caught up */
};

static consumer *consumer_alloc(const char *name, int batch_size, int block_ms, agg_stats *st);

static void slot_clear(slot *s)
{
    s->reply = NULL;
    s->entries = NULL;
    s->state = S_EMPTY;
    batch_reset(&s->b);
    reply_arena_reset(&s->arena);
}

/* Forget everything in hand: it is all still pending for us in Redis. */
static void drop_in_hand(consumer *c)
{
    slot_clear(&c->ring[0]);
    slot_clear(&c->ring[1]);
    slot_clear(&c->aux);
}

#ifdef TXAGG_TESTING
consumer *consumer_new(rconn *rc, const char *name, int batch_size, int block_ms, agg_stats *st)
{
    consumer *c = consumer_alloc(name, batch_size, block_ms, st);
    if (!c) return NULL;
    c->rc = rc;
    keys_parts_init(&c->part, 1, 0);
    c->solo = 1;
    return c;
}
#endif


consumer *consumer_new_part(tier *t, int p, const char *name, int batch_size, int block_ms, agg_stats *st)
{
    consumer *c = consumer_alloc(name, batch_size, block_ms, st);
    if (!c) return NULL;
    c->t = t;
    c->p = p;
    c->part = t->parts[p];
    c->cluster = rcluster_is_cluster(t->cl);
    c->solo = t->n == 1;
    return c;
}

static consumer *consumer_alloc(const char *name, int batch_size, int block_ms, agg_stats *st)
{
    consumer *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    slot *slots[3] = {&c->ring[0], &c->ring[1], &c->aux};
    for (int i = 0; i < 3; i++) reply_arena_init(&slots[i]->arena);
    if (batch_init(&c->ring[0].b) || batch_init(&c->ring[1].b) || batch_init(&c->aux.b) || batch_init(&c->iso)) {
        consumer_free(c);
        return NULL;
    }
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
    slot *slots[3] = {&c->ring[0], &c->ring[1], &c->aux};
    for (int i = 0; i < 3; i++) {
        batch_free(&slots[i]->b);
        reply_arena_free(&slots[i]->arena);
    }
    batch_free(&c->iso);
    apply_args_free(&c->args);
    free(c);
}

int consumer_ready(const consumer *c)
{
    return c->set_up && !c->need_setup && c->rc && rconn_connected(c->rc);
}

int consumer_idle(const consumer *c)
{
    if (!c->solo && c->retry_at && sig_now_ms() < c->retry_at) return 1; /* held off: nothing to do now */
    return c->ring[0].state == S_EMPTY && c->ring[1].state == S_EMPTY && !c->need_recover && !c->need_setup;
}

int consumer_caught_up(const consumer *c) { return c->last_partial; }

/* Not solo: leave this partition alone for a while (growing with the
 * recoveries since the last batch applied), so one failing partition costs
 * the others nothing but a skipped turn. */
static void hold_off(consumer *c, int64_t ms)
{
    if (c->solo) return;
    int64_t backoff = (int64_t)20 << (c->redirs < 6 ? c->redirs : 6);
    c->retry_at = sig_now_ms() + (ms > backoff ? ms : backoff);
}

/* The connection serving the partition now.  A different one than before
 * (the slot moved: failover, resharding) means that whatever is in hand was
 * read elsewhere: drop it, set up and recover there (state is re-read,
 * never trusted from before). */
static void refresh_conn(consumer *c)
{
    if (!c->t) return;
    rconn *rc = tier_conn(c->t, c->p);
    if (rc == c->rc) return;
    if (c->rc) log_info("partition served by another node now", "partition=%d node=%s:%d", c->p,
                        rc ? rconn_host(rc) : "none", rc ? rconn_port(rc) : 0);
    c->rc = rc;
    drop_in_hand(c);
    c->need_setup = c->need_recover = 1;
}

/* A connection error: the context is gone, so is anything in flight.  On a
 * cluster the slot map is read again (the node may be gone for good). */
static long fail_io(consumer *c)
{
    if (c->rc) rconn_drop(c->rc);
    drop_in_hand(c);
    c->need_setup = c->need_recover = 1;
    if (c->cluster) rcluster_refresh(c->t->cl);
    hold_off(c, 0);
    c->redirs++;
    return -1;
}

/* A Redis Cluster refusal (MOVED, ASK, TRYAGAIN, CLUSTERDOWN): nothing ran.
 * Recover the map (rcluster_recover: refresh, re-point, back off), forget
 * what is in hand and re-read state where the slot now lives. */
static void redirected(consumer *c, const rcluster_redirect *rd, const char *what)
{
    char q[300];
    snprintf(q, sizeof q, "%s", what);
    if (!c->redirs)
        log_info("partition redirected; recovering the slot map and re-reading its state", "partition=%d reply=%s",
                 c->p, q);
    rcluster_count(rd->kind);
    drop_in_hand(c);
    c->need_setup = c->need_recover = 1;
    if (c->t) rcluster_recover(c->t->cl, rd, c->redirs < 3 ? c->redirs : 3);
    if (c->solo && rd->kind == RCLUSTER_ASK) /* a slot mid-migration: nothing else to do meanwhile */
        sig_sleep_ms((int64_t)20 << (c->redirs < 4 ? c->redirs : 4));
    hold_off(c, 0);
    c->redirs++;
}

/* 1 (handled) when r is a cluster refusal. */
static int cluster_refusal(consumer *c, const redisReply *r)
{
    rcluster_redirect rd;
    rcluster_kind k = rcluster_classify(r, &rd);
    if (!r || k == RCLUSTER_REPLY || k == RCLUSTER_LOST) return 0;
    redirected(c, &rd, r->str);
    return 1;
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

/* Send a command and read its reply into s's arena (s is cleared first).
 * NULL on an I/O error (the context is dropped). */
static redisReply *slot_cmd(consumer *c, slot *s, const char *fmt, ...)
{
    slot_clear(s);
    if (!c->rc || rconn_ensure(c->rc) != 0) return NULL;
    redisContext *ctx = rconn_ctx(c->rc);
    va_list ap;
    va_start(ap, fmt);
    int rv = redisvAppendCommand(ctx, fmt, ap);
    va_end(ap);
    redisReply *r = NULL;
    if (rv != REDIS_OK || reply_arena_get_reply(ctx, &s->arena, &r) != REDIS_OK) {
        rconn_drop(c->rc);
        return NULL;
    }
    s->reply = r;
    s->state = S_RAW;
    return r;
}

/*
 * Parse the read reply a slot holds (S_RAW).  Returns the number of entries
 * (slot S_FULL), 0 for an empty read, -1 for an unusable reply (flags set);
 * in both latter cases the slot is cleared.
 */
static long slot_parse(consumer *c, slot *s)
{
    redisReply *r = s->reply;
    if (r->type == REDIS_REPLY_NIL) {
        slot_clear(s);
        return 0;
    }
    if (cluster_refusal(c, r)) {
        slot_clear(s);
        return -1;
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
        slot_clear(s);
        return -1;
    }
    const redisReply *entries = read_entries(r);
    if (!entries) {
        log_error("unexpected read reply", "type=%d", r->type);
        slot_clear(s);
        c->need_recover = 1;
        return -1;
    }
    if (entries->elements == 0) {
        slot_clear(s);
        return 0;
    }
    if (consumer_batch_from_entries(&s->b, entries) != 0) {
        log_error("unusable read reply (bad shape or out of memory); re-reading pending entries");
        slot_clear(s);
        c->need_recover = 1;
        return -1;
    }
    s->entries = entries;
    s->state = S_FULL;
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
        metrics_add(c->st->refused, b->n_refused);
        metrics_add(c->st->gone, b->n_gone);
        metrics_inc(c->st->batches);
        c->redirs = 0;
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
    case APPLY_REDIRECT:
        redirected(c, &res->rd, res->err);
        return 0;
    case APPLY_NOSCRIPT: /* handled by the caller; not expected here */
    case APPLY_REFUSED:  /* isolated by the caller; here only if isolation itself failed */
    case APPLY_EREPLY:
        /* The batch stays pending: refused again on every retry until the
         * offending key is repaired; logged once per change, retried slowly. */
        if (!c->refused)
            log_error("batch refused by the apply script, nothing written; retrying every second until repaired",
                      "err=%s", log_q(q, sizeof q, res->err));
        else log_debug("batch refused again", "err=%s", log_q(q, sizeof q, res->err));
        c->refused = 1;
        c->need_recover = 1;
        if (c->solo) sig_sleep_ms(1000);
        else hold_off(c, 1000); /* the other partitions go on meanwhile */
        return 0;
    case APPLY_EIO:
    default:
        c->need_setup = c->need_recover = 1;
        return -1;
    }
}

/* ---- refused batches ----------------------------------------------------- */

/*
 * The script refused a batch for one counter (APPLY_REFUSED): a key that is
 * not a hash, a stored value that is not an int64, or a sum that would pass
 * INT64_MAX.  Retrying cannot cure that, and the entries are valid, so they
 * must neither stall the pipeline nor be counted half: the batch's entries
 * are applied in halves, recursively; a single entry still refused is
 * dead-lettered with reason BATCH_REASON_REFUSED and the script's words as
 * detail, acknowledged in the same script call (an operator can replay it
 * from transactions:rejected once the counter is repaired).  Every part is a
 * contiguous run of the batch's ids, so the ownership check holds for it as
 * for the whole.  k refused entries among n cost O(k log n) script calls.
 */

/* Apply entries[lo, hi) of a refused batch; entries applied (acknowledged),
 * or -1 when the consumer must stop (connection lost, stale, a refusal that
 * names no counter: the flags are set by settle). */
static long apply_part(consumer *c, const redisReply *entries, size_t lo, size_t hi, const char *why)
{
    batch *b = &c->iso;
    batch_reset(b);
    redisReply view = *entries; /* a window on the same elements: nothing copied */
    view.element = entries->element + lo;
    view.elements = hi - lo;
    int dead = why != NULL;
    if (!dead && consumer_batch_from_entries(b, &view) != 0) return -1;
    if (dead) {
        const redisReply *e = view.element[0], *f = e->element[1];
        const char *fv[64];
        size_t fl[64], nfv = f->type == REDIS_REPLY_ARRAY && f->elements <= 64 ? f->elements : 0;
        for (size_t j = 0; j < nfv; j++) {
            fv[j] = f->element[j]->str;
            fl[j] = f->element[j]->len;
        }
        if (batch_add_refused(b, e->element[0]->str, e->element[0]->len, fv, fl, nfv, why) || batch_finish(b))
            return -1;
    }
    apply_result res;
    if (apply_build_part(&c->args, b, &c->part, KEYS_GROUP, c->name, APPLY_OWN_IDS) != 0) return -1;
    apply_run(c->rc, &c->args, &res);
    if (res.status == APPLY_REFUSED && !dead) {
        if (hi - lo == 1) { /* this entry is the one */
            char detail[sizeof res.err];
            snprintf(detail, sizeof detail, "%s", res.err);
            return apply_part(c, entries, lo, hi, detail);
        }
        size_t mid = lo + (hi - lo) / 2;
        long a = apply_part(c, entries, lo, mid, NULL);
        if (a < 0) return -1;
        long z = apply_part(c, entries, mid, hi, NULL);
        return z < 0 ? -1 : a + z;
    }
    long n = settle(c, b, &res);
    return res.status == APPLY_OK ? n : -1;
}

/* Isolate the entries of slot s that res refused; returns entries applied,
 * or -1 when the connection is gone (as settle). */
static long isolate(consumer *c, slot *s, const apply_result *res)
{
    char q[300];
    uint64_t refused_before = metrics_value(c->st->refused);
    log_warn("batch refused for one counter; applying it in parts to isolate the entries it cannot take",
             "entries=%zu err=%s", s->b.n_ids, log_q(q, sizeof q, res->err));
    long n = s->entries ? apply_part(c, s->entries, 0, s->entries->elements, NULL) : -1;
    if (n < 0) {
        c->need_recover = 1;
        return c->rc && rconn_connected(c->rc) ? 0 : -1;
    }
    log_warn("entries dead-lettered: their counter refused them", "reason=%s entries=%" PRIu64 " applied=%ld",
             BATCH_REASON_REFUSED, metrics_value(c->st->refused) - refused_before, n);
    return n;
}

/* Apply a full slot synchronously and clear it.  Returns entries applied;
 * res->status says what happened (APPLY_EREPLY when the arguments could not
 * be built). */
static long apply_slot_sync(consumer *c, slot *s, apply_result *res)
{
    if (apply_build_part(&c->args, &s->b, &c->part, KEYS_GROUP, c->name, APPLY_OWN_IDS) != 0) {
        log_error("cannot build the apply arguments (out of memory)");
        res->status = APPLY_EREPLY;
        slot_clear(s);
        c->need_recover = 1;
        return 0;
    }
    apply_run(c->rc, &c->args, res);
    long n = res->status == APPLY_REFUSED ? isolate(c, s, res) : settle(c, &s->b, res);
    slot_clear(s);
    if (n < 0) drop_in_hand(c);
    return n;
}

int consumer_setup(consumer *c)
{
    refresh_conn(c);
    if (!c->rc || rconn_ensure(c->rc) != 0) return -1;
    redisReply *r = rconn_cmd(c->rc, "XGROUP CREATE %s %s 0 MKSTREAM", c->part.stream, KEYS_GROUP);
    if (!r) return -1;
    if (cluster_refusal(c, r)) {
        freeReplyObject(r);
        return -1;
    }
    int ok = r->type == REDIS_REPLY_STATUS || rreply_is_error(r, "BUSYGROUP");
    if (!ok) {
        char q[300];
        log_error("cannot create the consumer group", "group=%s err=%s", KEYS_GROUP, log_q(q, sizeof q, r->str));
    }
    freeReplyObject(r);
    if (!ok || apply_load(c->rc) != 0) return -1;
    /* set up on this connection: a later change of node is seen by refresh_conn */
    c->need_setup = 0;
    c->set_up = 1;
    return 0;
}

long consumer_recover(consumer *c)
{
    drop_in_hand(c); /* all of it is in the pending list we are about to read */
    char from[STREAM_ID_MAX] = "0";
    long total = 0;
    int restarts = 0;
    for (;;) {
        if (!slot_cmd(c, &c->aux, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s %s", KEYS_GROUP, c->name, c->batch_size,
                      c->part.stream, from))
            return fail_io(c);
        long n = slot_parse(c, &c->aux);
        if (n < 0) return -1;
        if (n == 0) break;
        const batch *b = &c->aux.b;
        snprintf(from, sizeof from, "%.*s", (int)b->idlens[b->n_ids - 1], b->ids[b->n_ids - 1]);
        int last_page = n < c->batch_size;
        apply_result res;
        long applied = apply_slot_sync(c, &c->aux, &res);
        if (applied < 0 || res.status == APPLY_NOGROUP || res.status == APPLY_EREPLY ||
            res.status == APPLY_REDIRECT)
            return -1;
        if (res.status != APPLY_OK) { /* stale: start over from the head of our list */
            if (++restarts > RECOVER_RESTARTS) return -1;
            snprintf(from, sizeof from, "0");
            continue;
        }
        total += applied;
        if (last_page) break;
    }
    c->need_recover = 0;
    if (total) log_info("pending entries recovered", "consumer=%s partition=%d entries=%ld", c->name, c->p, total);
    return total;
}

long consumer_claim(consumer *c, int64_t min_idle_ms)
{
    long claimed = 0;
    refresh_conn(c);
    for (int round = 0; round < CLAIM_ROUNDS && !c->need_recover && !c->need_setup; round++) {
        redisReply *r = slot_cmd(c, &c->aux, "XAUTOCLAIM %s %s %s %lld %s COUNT %d", c->part.stream, KEYS_GROUP, c->name,
                                 (long long)min_idle_ms, c->claim_cursor, c->batch_size);
        if (!r) return fail_io(c);
        if (cluster_refusal(c, r)) {
            slot_clear(&c->aux);
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            if (strstr(r->str, "NOGROUP")) c->need_setup = c->need_recover = 1;
            else {
                char q[300];
                log_error("claim failed", "err=%s", log_q(q, sizeof q, r->str));
            }
            slot_clear(&c->aux);
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            slot_clear(&c->aux);
            return -1;
        }
        snprintf(c->claim_cursor, sizeof c->claim_cursor, "%s", r->element[0]->str);
        int wrapped = !strcmp(c->claim_cursor, "0-0");
        const redisReply *entries = r->element[1];
        if (entries->elements == 0) {
            slot_clear(&c->aux);
            if (wrapped) break;
            continue;
        }
        /* the claimed entries are ours now: from here on the usual rules */
        if (consumer_batch_from_entries(&c->aux.b, entries) != 0) {
            slot_clear(&c->aux);
            c->need_recover = 1;
            return -1;
        }
        c->aux.entries = entries;
        c->aux.state = S_FULL;
        size_t n = c->aux.b.n_ids;
        metrics_add(c->st->claims, n);
        log_info("entries claimed from idle consumers", "consumer=%s partition=%d entries=%zu min_idle_ms=%lld",
                 c->name, c->p, n, (long long)min_idle_ms);
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
    slot *head = &c->ring[c->h], *next = &c->ring[1 - c->h];
    if (head->state == S_EMPTY) { /* nothing in hand: wait for entries */
        if (sig_stopping()) return 0;
        /* Caught up (the last read was partial): let entries accumulate a
         * moment, so a steady stream is applied in full batches rather than
         * many small ones (the script's cost per hash does not shrink with
         * the batch). */
        if (c->solo) {
            if (c->last_partial && sig_sleep_ms(CONSUMER_LINGER_MS)) return 0;
            if (!slot_cmd(c, head, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >", KEYS_GROUP, c->name,
                          c->batch_size, c->block_ms, c->part.stream))
                return fail_io(c);
        } else { /* one of several: never block here (the service loop blocks when all are empty) */
            if (!slot_cmd(c, head, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s >", KEYS_GROUP, c->name,
                          c->batch_size, c->part.stream))
                return fail_io(c);
            if (head->reply->type == REDIS_REPLY_NIL) c->last_partial = 1;
        }
    }
    if (head->state == S_RAW && slot_parse(c, head) <= 0) return 0;

    redisContext *ctx = rconn_ctx(c->rc);
    if (!ctx) return fail_io(c);
    if (apply_build_part(&c->args, &head->b, &c->part, KEYS_GROUP, c->name, APPLY_OWN_ALL) != 0) {
        log_error("cannot build the apply arguments (out of memory)");
        drop_in_hand(c);
        c->need_recover = 1;
        return 0;
    }
    /* next is empty here (it became the head, or was never filled); a
     * partial head means we are caught up: no read ahead, linger instead */
    c->last_partial = head->b.n_ids < (size_t)c->batch_size;
    int want_read = !sig_stopping() && next->state == S_EMPTY && !c->last_partial;
    if (apply_send(c->rc, &c->args) != 0) return fail_io(c);
    if (want_read && redisAppendCommand(ctx, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s >", KEYS_GROUP, c->name,
                                        c->batch_size, c->part.stream) != REDIS_OK)
        return fail_io(c);
    void *reply = NULL;
    if (redisGetReply(ctx, &reply) != REDIS_OK) return fail_io(c);
    if (want_read) {
        redisReply *r = NULL;
        slot_clear(next);
        if (reply_arena_get_reply(ctx, &next->arena, &r) != REDIS_OK) return fail_io(c);
        next->reply = r;
        next->state = S_RAW;
        slot_parse(c, next);
    }
    apply_result res;
    apply_parse_reply(reply, &res);
    freeReplyObject(reply);
    if (res.status == APPLY_NOSCRIPT) { /* did not run; the read after it did: the "ids" form, synchronously */
        if (apply_build_part(&c->args, &head->b, &c->part, KEYS_GROUP, c->name, APPLY_OWN_IDS) != 0) return fail_io(c);
        apply_run(c->rc, &c->args, &res);
    }
    long n = res.status == APPLY_REFUSED ? isolate(c, head, &res) : settle(c, &head->b, &res);
    slot_clear(head);
    c->h = 1 - c->h;
    if (n < 0) return fail_io(c);
    if (c->need_recover || c->need_setup) drop_in_hand(c);
    return n;
}

long consumer_step(consumer *c)
{
    if (!c->solo && c->retry_at && sig_now_ms() < c->retry_at) return 0;
    c->retry_at = 0;
    refresh_conn(c);
    if (c->need_setup || !c->rc || !rconn_connected(c->rc)) {
        if (c->set_up && !c->need_setup) { /* connection lost between steps (e.g. by a periodic task) */
            c->need_recover = 1;
        }
        c->need_setup = 1;
        if (c->cluster) { /* the node may be gone for good: never wait on it, ask the cluster again */
            if (!c->rc || rconn_ensure(c->rc) != 0) {
                rcluster_redirect lost = {.kind = RCLUSTER_LOST};
                rcluster_recover(c->t->cl, &lost, c->redirs < 5 ? c->redirs : 5); /* backs off 20 … 500 ms */
                hold_off(c, 0);
                c->redirs++;
                return 0;
            }
        } else if (rconn_wait(c->rc) != 0) return -1;
        if (consumer_setup(c) != 0) {
            /* not an outage (rconn logs those): e.g. `transactions` is not a stream */
            if (c->solo) sig_sleep_ms(1000);
            else hold_off(c, 1000);
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
    while ((c->ring[0].state != S_EMPTY || c->ring[1].state != S_EMPTY) && !c->need_recover && !c->need_setup) {
        if (c->ring[c->h].state == S_EMPTY) c->h = 1 - c->h;
        long n = consumer_pump(c);
        if (n < 0) break;
        total += n;
    }
    if (c->need_recover && !c->need_setup && c->rc && rconn_connected(c->rc)) {
        long n = consumer_recover(c);
        if (n > 0) total += n;
    }
    return total;
}

long consumer_wait(consumer *c, int block_ms)
{
    slot *head = &c->ring[c->h];
    if (!consumer_ready(c) || head->state != S_EMPTY || c->need_recover || sig_stopping()) return 0;
    if (!slot_cmd(c, head, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >", KEYS_GROUP, c->name,
                  c->batch_size, block_ms > 0 ? block_ms : 1, c->part.stream))
        return fail_io(c);
    long n = slot_parse(c, head);
    if (n > 0) c->last_partial = 0; /* apply it at the next step */
    return n;
}

#ifdef TXAGG_TESTING
long consumer_fetch(consumer *c, int block_ms)
{
    slot *head = &c->ring[c->h];
    redisReply *r = block_ms > 0 ? slot_cmd(c, head, "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >",
                                            KEYS_GROUP, c->name, c->batch_size, block_ms, c->part.stream)
                                 : slot_cmd(c, head, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s >", KEYS_GROUP,
                                            c->name, c->batch_size, c->part.stream);
    if (!r) return fail_io(c);
    return slot_parse(c, head);
}

void consumer_commit(consumer *c, apply_result *res)
{
    slot *head = &c->ring[c->h];
    res->status = APPLY_EREPLY;
    res->count = 0;
    snprintf(res->err, sizeof res->err, "nothing in hand");
    if (head->state != S_FULL) return;
    apply_slot_sync(c, head, res);
}
#endif
