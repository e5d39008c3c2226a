/*
 * publish — batches and checkpoints, exactly once; see publish.h.
 *
 * A commit moves the checkpoint from the state last known committed (rows R,
 * done D) to a new state (R + records in the batch, done D'), which always
 * differs from the old one (a batch holds at least one record, or it is the
 * final one that sets done).  It takes two round trips:
 *
 *   WATCH ck ; HMGET ck rows done          -- still (R, D)?  else: conflict
 *   MULTI ; XADD transactions … (accepted) ; XADD transactions:rejected …
 *         ; HSET ck rows R' done D' file F ; EXEC
 *
 * Every transaction is conditional on the checkpoint not having changed since
 * its WATCH and every transaction changes it, so of two transactions made
 * from the same state at most one commits: whatever the interleaving of
 * processes, connections or retries, each record is published by exactly one
 * transaction.  A nil EXEC means someone else moved the checkpoint.
 *
 * Overlap: publish_commit writes the transaction and returns without reading
 * its replies ("in flight"), so Redis executes batch k while the importer
 * parses batch k+1; the next commit, or publish_sync, reads them.  Two batch
 * slots alternate: the one in flight and the one being filled.  Invariant:
 * while a transaction is in flight nothing else is sent on the connection
 * (the caller syncs before any other Redis command on it — back-pressure,
 * the next file's checkpoint); a context changed since the send counts as a
 * lost connection.
 *
 * When a connection fails after the transaction may have been sent, the
 * outcome is unknown (settle): after reconnecting, the checkpoint is read
 * again — the new state means it committed, the old state means it did not
 * (send it again), anything else is a conflict.  A batch is kept until it is
 * known to be committed.  Redis refusing the transaction (EXECABORT, e.g. OOM
 * under maxmemory) is retried with capped backoff, logged once per change; a
 * transaction that ran only in part (an XADD failing at run time, which MULTI
 * does not roll back) is reported as fatal, never retried.
 *
 * Partitions (publish_new_part): the same two round trips on the keys of
 * one partition, on the connection the tier names for its slot, asked again
 * before every attempt.  The checkpoint state compared is (rows, done) plus,
 * when tagged, "no other stripe recorded".  On a cluster a redirection or
 * refusal (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) of the WATCH/HMGET, of a
 * queued command (EXECABORT) or of the EXEC means nothing ran: A_REDIRECT /
 * C_REDIRECT, then redirect() recovers (cluster.h) and settle starts over by
 * reading the checkpoint where the slot now lives; after ASK the attempt is
 * made on the named node with ASKING before WATCH, HMGET and MULTI.  A node
 * that does not answer makes connect_or_stop refresh the map and back off
 * (never wait for it: a dead primary does not come back at its address).
 *
 * Hot path: rows are stored formatted in fixed arrays allocated once; the
 * batch's XADDs are written as one preformatted block (append_xadds), the
 * other commands with redisAppendCommandArgv; the whole transaction goes out
 * in one write, and its replies are built in an arena (one allocation per
 * batch, not per row).  Per row the importer spends ~5,800 instructions, of
 * which ~3,000 in libcsv.
 */
#include "publish.h"
#include "cluster.h"
#include "dynbuf.h"
#include "keys.h"
#include "reply_arena.h"
#include "log.h"
#include "money.h"
#include "signals.h"
#include "timeparse.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REJECT_TEXT_MAX (1 << 20) /* dead-letter text in a batch before it counts as full */
/* The text's cap: a full batch is committed before the next row, so the
 * text holds less than REJECT_TEXT_MAX plus one record (64 KiB). */
#define REJECT_TEXT_CAP (2 * (size_t)REJECT_TEXT_MAX)
#define REFUSED_BACKOFF_MIN_MS 100
#define REFUSED_BACKOFF_MAX_MS 5000
#define REPLICA_WAIT_MS 1000 /* one WAIT of a durable batch (publish_set_durable) */
#define REPLICA_RETRY_MS 200 /* after a failed ROLE or WAIT */

typedef struct commit_row {
    char head[TXN_ENTRY_HEAD_MAX]; /* the entry's value but for the source (txn_entry_head) */
    unsigned char head_len;
    int64_t line;
} commit_row;

typedef struct reject_row {
    int reason;
    int64_t line;
    size_t off, len; /* raw text in the batch's text */
} reject_row;

/* One transaction's accepted rows and dead letters: a slot of the publisher,
 * filled, then in flight until it is known committed. */
typedef struct commit_batch {
    commit_row *rows;
    int nrows;
    reject_row *rej;
    int nrej;
    char *text;
    size_t text_len, text_cap;
    int64_t to_rows; /* the checkpoint state it commits to (set when sent) */
    int to_done;
    int64_t end; /* publish_set_end: `rows` after this batch (-1: committed rows + its records) */
} commit_batch;

struct publisher {
    rconn *rc;     /* the connection in use: fixed (publish_new), or the partition's as last asked */
    tier *t;       /* publish_new_part: the tier and the partition; NULL: rc only, untagged names */
    int part;
    int tagged;    /* the checkpoint records `stripe` (t->tagged) */
    int cluster;   /* redirections are possible (t on a Redis Cluster) */
    char stream[KEYS_NAME_MAX], rejected[KEYS_NAME_MAX];
    int64_t stripe;           /* S written with every checkpoint (tagged) */
    int64_t committed_stripe; /* the stripe the checkpoint holds (0: none), as last known */
    int resetting;            /* publish_reset: a recorded stripe may differ */
    rcluster_redirect rd;     /* the last redirection met */
    int asking;               /* the next attempt goes to ask_rc with ASKING */
    rconn *ask_rc;
    int attempt;              /* redirections and losses since the last commit (backoff) */
    atomic_int *up;
    int batch_size;
    commit_batch slot[2];
    commit_batch *fill;               /* the batch in hand */
    commit_batch *flight;             /* written, replies not read yet; NULL when none */
    redisContext *flight_ctx;  /* the connection it was written to */

    char ck[128];
    char file[1024];
    size_t file_len;
    char src[256];
    size_t src_len;
    int64_t committed_rows; /* last state known committed (or read at open) */
    int committed_done;

    log_state refused;
    int durable;          /* publish_set_durable */
    log_state replicas;   /* replicas acknowledging durable batches, logged once per change */
#ifdef TXAGG_TESTING
    int fault; /* publish_test_fault */
#endif
    reply_arena arena; /* the transaction's replies: one allocation per batch, not per row */
    char xadd[64];     /* "XADD transactions * tx" in RESP, without the value (xadd_prefix) */
    size_t xadd_len;
    dynbuf out;        /* the batch's XADDs (append_xadds) */
};

/* outcome of a transaction; A_REDIRECT: the cluster refused it before it ran (p->rd) */
enum { A_COMMITTED, A_IO, A_NIL, A_REFUSED, A_PARTIAL, A_REDIRECT };
/* outcome of the checkpoint check; C_REDIRECT: the cluster answered elsewhere (p->rd) */
enum { C_SEND, C_ALREADY, C_IO, C_CONFLICT, C_FATAL, C_BEHIND, C_REDIRECT };

/* Decimal digits of v into buf (at least 21 bytes); returns the length. */
static size_t fmt_i64(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0) buf[o++] = '-';
    while (n) buf[o++] = tmp[--n];
    buf[o] = '\0';
    return o;
}

static void commit_batch_clear(commit_batch *b)
{
    b->nrows = b->nrej = 0;
    b->text_len = 0;
    b->end = -1;
}

publisher *publish_new(rconn *rc, int batch_size, atomic_int *up)
{
    publisher *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->rc = rc;
    p->up = up;
    reply_arena_init(&p->arena);
    p->batch_size = batch_size > 0 ? batch_size : 1;
    /* a row's XADD is under 64 + TXN_ENTRY_HEAD_MAX + 256 + 48 bytes */
    dynbuf_init(&p->out, (size_t)p->batch_size * 512 + 1);
    for (int i = 0; i < 2; i++) {
        p->slot[i].rows = malloc(sizeof *p->slot[i].rows * (size_t)p->batch_size);
        p->slot[i].rej = malloc(sizeof *p->slot[i].rej * (size_t)p->batch_size);
        if (!p->slot[i].rows || !p->slot[i].rej) {
            publish_free(p);
            return NULL;
        }
    }
    p->fill = &p->slot[0];
    commit_batch_clear(&p->slot[0]);
    commit_batch_clear(&p->slot[1]);
    snprintf(p->stream, sizeof p->stream, "%s", KEYS_STREAM);
    snprintf(p->rejected, sizeof p->rejected, "%s", KEYS_REJECTED);
    return p;
}

publisher *publish_new_part(tier *t, int part, int batch_size, atomic_int *up)
{
    publisher *p = publish_new(NULL, batch_size, up);
    if (!p) return NULL;
    p->t = t;
    p->part = part;
    p->tagged = t->tagged;
    p->cluster = rcluster_is_cluster(t->cl);
    p->stripe = p->batch_size;
    snprintf(p->stream, sizeof p->stream, "%s", t->parts[part].stream);
    snprintf(p->rejected, sizeof p->rejected, "%s", t->parts[part].rejected);
    return p;
}

void publish_set_stripe(publisher *p, int64_t stripe) { p->stripe = stripe > 0 ? stripe : p->batch_size; }
int64_t publish_stripe_found(const publisher *p) { return p->committed_stripe; }
void publish_set_end(publisher *p, int64_t end) { p->fill->end = end; }

void publish_free(publisher *p)
{
    if (!p) return;
    for (int i = 0; i < 2; i++) {
        free(p->slot[i].rows);
        free(p->slot[i].rej);
        free(p->slot[i].text);
    }
    reply_arena_free(&p->arena);
    dynbuf_free(&p->out);
    free(p);
}

int publish_pending(const publisher *p) { return p->fill->nrows + p->fill->nrej; }
int publish_accepted(const publisher *p) { return p->fill->nrows; }

int publish_full(const publisher *p)
{
    return p->fill->nrows + p->fill->nrej >= p->batch_size || p->fill->text_len >= REJECT_TEXT_MAX;
}

static void set_up(publisher *p, int v)
{
    if (p->up) atomic_store(p->up, v);
}

void publish_add_row(publisher *p, const valid_row *row, int64_t line)
{
    commit_row *b = &p->fill->rows[p->fill->nrows++];
    char ts[TS_ISO_LEN + 1];
    ts_format_iso(row->epoch, ts);
    b->head_len = (unsigned char)txn_entry_head(b->head, ts, row->type, row->method, strlen(row->method), row->cents);
    b->line = line;
}

int publish_add_reject(publisher *p, int reason, int64_t line, const char *raw, size_t raw_len)
{
    commit_batch *b = p->fill;
    if (dynbuf_reserve_array(&b->text, &b->text_cap, b->text_len + raw_len, 1, REJECT_TEXT_CAP)) return -1;
    reject_row *r = &b->rej[b->nrej++];
    r->reason = reason;
    r->line = line;
    r->off = b->text_len;
    r->len = raw_len;
    if (raw_len) memcpy(b->text + b->text_len, raw, raw_len);
    b->text_len += raw_len;
    return 0;
}

/* rows / done (/ stripe, 0 when absent or not asked) of an HMGET ck rows
 * done [stripe] reply; 0, or -1 when malformed. */
static int parse_checkpoint(const redisReply *r, int64_t *rows, int *done, int64_t *stripe)
{
    *stripe = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || (r->elements != 2 && r->elements != 3)) return -1;
    if (r->elements == 3) {
        const redisReply *s = r->element[2];
        if (s->type == REDIS_REPLY_STRING) {
            if (money_parse_cents(s->str, s->len, stripe) != MONEY_OK || *stripe <= 0) return -1;
        } else if (s->type != REDIS_REPLY_NIL) {
            return -1;
        }
    }
    const redisReply *a = r->element[0], *b = r->element[1];
    *rows = 0;
    *done = 0;
    if (a->type == REDIS_REPLY_STRING) {
        if (money_parse_cents(a->str, a->len, rows) != MONEY_OK || *rows < 0) return -1;
    } else if (a->type != REDIS_REPLY_NIL) {
        return -1;
    }
    if (b->type == REDIS_REPLY_STRING) *done = b->len == 1 && b->str[0] == '1';
    else if (b->type != REDIS_REPLY_NIL) return -1;
    return 0;
}

/*
 * Connected, or -1 when a stop was requested while Redis is unreachable.  A
 * partition's publisher asks the tier for the connection serving it every
 * time (never trusting one kept across a recovery); on a cluster a node that
 * does not answer makes it refresh the map and back off, since a dead
 * primary never comes back at its address.
 */
static int connect_or_stop(publisher *p)
{
    for (int attempt = 0;; attempt++) {
        rconn *rc = p->t ? tier_conn(p->t, p->part) : p->rc;
        if (rc && rconn_ensure(rc) == 0) {
            p->rc = rc;
            return 0;
        }
        set_up(p, 0);
        if (!p->cluster) {
            p->rc = rc;
            return rconn_wait(p->rc);
        }
        rcluster_redirect rd = {.kind = RCLUSTER_LOST};
        if (rcluster_recover(p->t->cl, &rd, attempt > 8 ? 8 : attempt)) return -1;
    }
}

/* The next attempt after p->rd (a cluster refused or redirected): -1 when
 * stopping.  ASK: the next attempt goes to the named node with ASKING (the
 * slot is migrating); the others recover as cluster.h says. */
static int redirect(publisher *p)
{
    rcluster_redirect *rd = &p->rd;
    int attempt = p->attempt++;
    if (attempt > 8) attempt = 8;
    if (rd->kind == RCLUSTER_ASK) {
        if (!rd->host[0] && p->rc) snprintf(rd->host, sizeof rd->host, "%s", rconn_host(p->rc));
        p->ask_rc = rcluster_node(p->t->cl, rd->host, rd->port);
        p->asking = p->ask_rc != NULL;
        if (attempt < 2) return sig_stopping() ? -1 : 0;
        rcluster_redirect wait = {.kind = RCLUSTER_TRYAGAIN}; /* ASK again and again: back off */
        return rcluster_recover(p->t->cl, &wait, attempt - 2);
    }
    p->asking = 0;
    return rcluster_recover(p->t->cl, rd, attempt);
}

/* A cluster's refusal or redirection (only on a cluster: one Redis never
 * sends one, and its error replies keep today's meaning). */
static int redirected(const publisher *p, const redisReply *r, rcluster_redirect *rd)
{
    rcluster_kind k = p->cluster ? rcluster_classify(r, rd) : RCLUSTER_REPLY;
    rcluster_count(k);
    return k != RCLUSTER_REPLY;
}

static void drop(publisher *p)
{
    rconn_drop(p->rc);
    set_up(p, 0);
}

int publish_open_file(publisher *p, const char *file_id, const char *file, const char *src, int64_t *rows,
                      int *done)
{
    if (p->flight) publish_sync(p, NULL); /* the caller syncs at the end of a file; be safe */
    p->flight = NULL;
    commit_batch_clear(&p->slot[0]);
    commit_batch_clear(&p->slot[1]);
    p->fill = &p->slot[0];
    keys_checkpoint(p->ck, sizeof p->ck, p->t ? &p->t->parts[p->part] : NULL, file_id);
    snprintf(p->file, sizeof p->file, "%s", file);
    p->file_len = strlen(p->file);
    snprintf(p->src, sizeof p->src, "%s", src);
    p->src_len = strlen(p->src);
    p->asking = 0;
    p->attempt = 0;
    int64_t stripe = 0;
    for (int attempt = 0;; attempt++) {
        redisReply *r;
        if (p->cluster) { /* redirections followed by the cluster layer */
            r = rcluster_cmd(p->t->cl, p->t->parts[p->part].slot, "HMGET %s rows done stripe", p->ck);
            if (!r || rcluster_classify(r, NULL) != RCLUSTER_REPLY) { /* counted by the cluster layer */
                if (r) freeReplyObject(r);
                set_up(p, 0);
                rcluster_redirect rd = {.kind = RCLUSTER_LOST};
                if (rcluster_recover(p->t->cl, &rd, attempt > 8 ? 8 : attempt)) return PUBLISH_STOPPED;
                continue;
            }
        } else {
            if (connect_or_stop(p)) return PUBLISH_STOPPED;
            r = p->tagged ? rconn_cmd(p->rc, "HMGET %s rows done stripe", p->ck)
                          : rconn_cmd(p->rc, "HMGET %s rows done", p->ck);
            if (!r) continue;
        }
        set_up(p, 1);
        int bad = parse_checkpoint(r, rows, done, &stripe);
        if (bad) {
            char q[300];
            log_error("unreadable checkpoint", "key=%s reply=%s", p->ck,
                      log_q(q, sizeof q, r->type == REDIS_REPLY_ERROR ? r->str : "malformed"));
        }
        freeReplyObject(r);
        if (bad) return PUBLISH_FATAL;
        p->committed_rows = *rows;
        p->committed_done = *done;
        p->committed_stripe = stripe;
        return PUBLISH_OK;
    }
}

static int append_argv(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    return redisAppendCommandArgv(c, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

/*
 * The batch's XADDs, written as one preformatted block: hiredis's formatters
 * print every argument's header with sprintf or sdscatfmt, which was 40% of
 * the importer's CPU per row.  The constant part — "XADD transactions * tx"
 * — is formatted once by hiredis (xadd_prefix); per row only the value's
 * bulk string ("$<len>\r\n<value>\r\n") is written here, and the block goes
 * to hiredis's output buffer with redisAppendFormattedCommand.
 */
static int xadd_prefix(publisher *p)
{
    if (p->xadd_len) return 0;
    const char *argv[5] = {"XADD", p->stream, "*", TXN_ENTRY_FIELD, ""};
    size_t lens[5] = {4, strlen(p->stream), 1, sizeof TXN_ENTRY_FIELD - 1, 0};
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, 5, argv, lens);
    /* ends with the empty value's bulk string "$0\r\n\r\n": cut it */
    if (len < 6 || (size_t)len - 6 >= sizeof p->xadd || memcmp(cmd + len - 6, "$0\r\n\r\n", 6) != 0) {
        free(cmd);
        return -1;
    }
    p->xadd_len = (size_t)len - 6;
    memcpy(p->xadd, cmd, p->xadd_len);
    free(cmd);
    return 0;
}

static int append_xadds(publisher *p, redisContext *c, const commit_batch *b)
{
    dynbuf_reset(&p->out);
    char row[64 + TXN_ENTRY_HEAD_MAX + sizeof p->src + 48];
    for (int i = 0; i < b->nrows; i++) {
        const commit_row *r = &b->rows[i];
        char line[24];
        size_t ll = fmt_i64(line, r->line);
        size_t vlen = r->head_len + p->src_len + 1 + ll;
        char *w = row;
        memcpy(w, p->xadd, p->xadd_len);
        w += p->xadd_len;
        *w++ = '$';
        w += fmt_i64(w, (int64_t)vlen);
        *w++ = '\r';
        *w++ = '\n';
        memcpy(w, r->head, r->head_len);
        w += r->head_len;
        memcpy(w, p->src, p->src_len);
        w += p->src_len;
        *w++ = ':';
        memcpy(w, line, ll);
        w += ll;
        *w++ = '\r';
        *w++ = '\n';
        if (dynbuf_add(&p->out, row, (size_t)(w - row))) return -1;
    }
    return redisAppendFormattedCommand(c, dynbuf_ptr(&p->out), dynbuf_len(&p->out)) == REDIS_OK ? 0 : -1;
}

/* Append [ASKING,] MULTI, the entries, the checkpoint HSET (and EXEC unless
 * no_exec).  ASKING before MULTI lasts until EXEC. */
static int append_transaction(publisher *p, redisContext *c, const commit_batch *b, int no_exec, int asking)
{
    const char *multi[] = {"MULTI"}, *ask[] = {"ASKING"};
    if (asking && append_argv(c, 1, ask, NULL)) return -1;
    if (append_argv(c, 1, multi, NULL)) return -1;
    if (b->nrows && (xadd_prefix(p) || append_xadds(p, c, b))) return -1;
    for (int i = 0; i < b->nrej; i++) {
        const reject_row *r = &b->rej[i];
        char line[24];
        size_t ll = fmt_i64(line, r->line);
        const char *reason = validate_reason_name(r->reason);
        const char *argv[11] = {"XADD", p->rejected, "*", "reason", reason, "file", p->file,
                                "line", line, "raw", b->text ? b->text + r->off : ""};
        size_t lens[11] = {4, strlen(p->rejected), 1, 6, strlen(reason), 4, p->file_len, 4, ll, 3, r->len};
        if (append_argv(c, 11, argv, lens)) return -1;
    }
    char nrows[24];
    size_t nl = fmt_i64(nrows, b->to_rows);
    char stripe[24];
    size_t sl = fmt_i64(stripe, p->stripe);
    const char *hset[] = {"HSET", p->ck, "rows", nrows, "done", b->to_done ? "1" : "0", "file", p->file, "stripe", stripe};
    size_t hlens[] = {4, strlen(p->ck), 4, nl, 4, 1, 4, p->file_len, 6, sl};
    if (append_argv(c, p->tagged ? 10 : 8, hset, hlens)) return -1; /* untagged: today's checkpoint */
    if (no_exec) return 0;
    const char *exec[] = {"EXEC"};
    return append_argv(c, 1, exec, NULL);
}

/* Write the whole output buffer (blocking); 0 or -1. */
static int flush_output(redisContext *c)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK) return -1;
    return 0;
}

/* Write the transaction of b; 0, or -1 (I/O: part of it may have gone out). */
static int send_transaction(publisher *p, redisContext *c, const commit_batch *b, int asking)
{
    if (append_transaction(p, c, b, 0, asking)) return -1;
    return flush_output(c);
}

/*
 * Read the replies of b's transaction ([ASKING's OK,] MULTI's, the QUEUED,
 * EXEC's).  On a cluster a redirection while queuing (EXECABORT follows) or
 * at EXEC means the transaction was discarded before it ran: A_REDIRECT,
 * with p->rd saying where to go.
 */
static int read_transaction(publisher *p, redisContext *c, const commit_batch *b, int asking, char *why,
                            size_t whylen)
{
    int nqueued = b->nrows + b->nrej + 1 + (asking ? 1 : 0);
    int result = A_COMMITTED;
    char queued[256] = "";
    rcluster_redirect qrd = {.kind = RCLUSTER_REPLY};
    reply_arena_reset(&p->arena);
    for (int i = 0; i < nqueued + 2; i++) {
        redisReply *r = NULL;
        if (reply_arena_get_reply(c, &p->arena, &r) != REDIS_OK) return A_IO;
        if (i < nqueued + 1) { /* MULTI's OK, then one QUEUED (or error) per command */
            if (r->type == REDIS_REPLY_ERROR && !queued[0]) {
                snprintf(queued, sizeof queued, "%s", r->str);
                if (!redirected(p, r, &qrd)) qrd.kind = RCLUSTER_REPLY;
            }
        } else if (r->type == REDIS_REPLY_NIL) {
            result = A_NIL;
        } else if (redirected(p, r, &p->rd)) { /* at EXEC: discarded */
            snprintf(why, whylen, "%.200s", r->str);
            result = A_REDIRECT;
        } else if (r->type == REDIS_REPLY_ERROR && qrd.kind != RCLUSTER_REPLY && rreply_is_error(r, "EXECABORT")) {
            p->rd = qrd; /* a command refused while queuing: nothing ran */
            snprintf(why, whylen, "%.200s", queued);
            result = A_REDIRECT;
        } else if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "%.200s%s%s", r->str, queued[0] ? ": " : "", queued);
            result = A_REFUSED;
        } else if (r->type == REDIS_REPLY_ARRAY) {
            for (size_t k = 0; k < r->elements; k++) {
                if (r->element[k]->type == REDIS_REPLY_ERROR) {
                    snprintf(why, whylen, "%s", r->element[k]->str);
                    result = A_PARTIAL;
                    break;
                }
            }
        } else {
            snprintf(why, whylen, "unexpected EXEC reply type %d", r->type);
            result = A_PARTIAL;
        }
    }
    return result;
}

static void unwatch(publisher *p)
{
    redisReply *r = rconn_cmd(p->rc, "UNWATCH");
    if (r) freeReplyObject(r);
}

/* The reply of an ASKING sent before a command: 0, or -1 (I/O). */
static int skip_asking(redisContext *c)
{
    redisReply *a = NULL;
    if (redisGetReply(c, (void **)&a) != REDIS_OK) return -1;
    freeReplyObject(a);
    return 0;
}

/*
 * Round trip 1: WATCH the checkpoint and read it.  C_SEND: it is still the
 * committed state (watched); C_ALREADY: unknown is set and it is b's target
 * (an earlier attempt committed); C_CONFLICT / C_FATAL: logged, unwatched;
 * C_REDIRECT: a cluster answered with a redirection (p->rd), nothing watched.
 * asking: each command goes after an ASKING (the slot is migrating).
 */
static int check_checkpoint(publisher *p, redisContext *c, const commit_batch *b, int unknown, int asking)
{
    redisReply *w = NULL, *h = NULL;
    if (asking) redisAppendCommand(c, "ASKING");
    redisAppendCommand(c, "WATCH %s", p->ck);
    if (asking) redisAppendCommand(c, "ASKING");
    if (p->tagged) redisAppendCommand(c, "HMGET %s rows done stripe", p->ck);
    else redisAppendCommand(c, "HMGET %s rows done", p->ck);
    if ((asking && skip_asking(c)) || redisGetReply(c, (void **)&w) != REDIS_OK ||
        (asking && skip_asking(c)) || redisGetReply(c, (void **)&h) != REDIS_OK) {
        if (w) freeReplyObject(w);
        return C_IO;
    }
    set_up(p, 1);
    if (redirected(p, w, &p->rd) || redirected(p, h, &p->rd)) {
        freeReplyObject(w);
        freeReplyObject(h);
        unwatch(p);
        return C_REDIRECT;
    }
    int64_t rows, stripe;
    int done;
    int bad = w->type == REDIS_REPLY_ERROR || parse_checkpoint(h, &rows, &done, &stripe) != 0;
    if (bad) {
        char q[300];
        const redisReply *e = w->type == REDIS_REPLY_ERROR ? w : h;
        log_error("unreadable checkpoint", "key=%s reply=%s", p->ck,
                  log_q(q, sizeof q, e->type == REDIS_REPLY_ERROR ? e->str : "malformed"));
    }
    freeReplyObject(w);
    freeReplyObject(h);
    if (bad) {
        unwatch(p);
        return C_FATAL;
    }
    /* Another stripe size recorded: another importer began the file with
     * another BATCH_SIZE (a reset by --force may change it) */
    int other_stripe = p->tagged && stripe && stripe != p->stripe && !p->resetting;
    if (unknown && rows == b->to_rows && done == b->to_done && !other_stripe) {
        unwatch(p);
        return C_ALREADY;
    }
    if (rows == p->committed_rows && done == p->committed_done && !other_stripe) return C_SEND;
    /* Behind what was committed: a Redis failover to a replica that lacked
     * the last transactions (replication is asynchronous), or a --force reset
     * by another importer.  The stream lost those entries with the checkpoint
     * (one transaction), so importing again from the checkpoint found is
     * exact: every later transaction is still conditional on the state it
     * starts from.  Ahead of it, or elsewhere: another importer has it. */
    int behind = !other_stripe && (rows < p->committed_rows || (rows == p->committed_rows && done < p->committed_done));
    unwatch(p);
    char q[1100];
    log_q(q, sizeof q, p->file);
    if (behind) {
        log_warn("checkpoint went back (Redis failover?); importing the file again from it",
                 "file=%s key=%s committed_rows=%lld found_rows=%lld found_done=%d", q, p->ck,
                 (long long)p->committed_rows, (long long)rows, done);
    } else if (other_stripe) {
        log_error("checkpoint moved by another importer; leaving this file to it",
                  "file=%s key=%s stripe=%lld found_stripe=%lld found_rows=%lld found_done=%d", q, p->ck,
                  (long long)p->stripe, (long long)stripe, (long long)rows, done);
    } else {
        log_error("checkpoint moved by another importer; leaving this file to it",
                  "file=%s key=%s expected_rows=%lld found_rows=%lld found_done=%d", q, p->ck,
                  (long long)p->committed_rows, (long long)rows, done);
    }
    return behind ? C_BEHIND : C_CONFLICT;
}

static void report_partial(publisher *p, const char *why)
{
    char q[1100], qw[600];
    log_error("transaction ran only in part; stream and checkpoint may disagree", "file=%s key=%s err=%s",
              log_q(q, sizeof q, p->file), p->ck, log_q(qw, sizeof qw, why));
}

#ifdef TXAGG_TESTING
void publish_test_fault(publisher *p, int fault) { p->fault = fault; }
int publish_in_flight(const publisher *p) { return p->flight != NULL; }

/* Fault 1: the transaction is sent without its EXEC and the connection
 * dies, so Redis discards it.  Returns 1 when it fired. */
static int fault_cut_before_exec(publisher *p, redisContext *c, commit_batch *b)
{
    if (p->fault != 1) return 0;
    p->fault = 0;
    append_transaction(p, c, b, 1, 0);
    flush_output(c);
    drop(p);
    return 1;
}

/* Fault 2: the reply of a transaction that committed is lost. */
static int fault_reply_lost(publisher *p, int res)
{
    if (res != A_COMMITTED || p->fault != 2) return res;
    p->fault = 0;
    return A_IO;
}
#else
#define fault_cut_before_exec(p, c, b) 0
#define fault_reply_lost(p, res) (res)
#endif

/*
 * Commit b synchronously, whatever it takes: reconnect, re-read the
 * checkpoint, send again only if it did not commit.  unknown: an earlier
 * attempt may have committed.
 */
static int settle(publisher *p, commit_batch *b, int unknown)
{
    int64_t backoff = REFUSED_BACKOFF_MIN_MS;
    char why[512];
    for (;;) {
        /* an ASK holds for this attempt only */
        int asking = p->asking;
        p->asking = 0;
        if (asking && rconn_ensure(p->ask_rc) == 0) p->rc = p->ask_rc;
        else if ((asking = 0, connect_or_stop(p))) return PUBLISH_STOPPED;
        redisContext *c = rconn_ctx(p->rc);
        switch (check_checkpoint(p, c, b, unknown, asking)) {
        case C_ALREADY: return PUBLISH_OK;
        case C_IO: drop(p); continue;
        case C_CONFLICT: return PUBLISH_CONFLICT;
        case C_BEHIND: return PUBLISH_ROLLED_BACK;
        case C_FATAL: return PUBLISH_FATAL;
        case C_REDIRECT:
            if (redirect(p)) return PUBLISH_STOPPED;
            continue;
        default: break;
        }
        if (fault_cut_before_exec(p, c, b)) {
            unknown = 1;
            continue;
        }
        int was_unknown = unknown;
        unknown = 1;
        int res = send_transaction(p, c, b, asking) == 0 ? read_transaction(p, c, b, asking, why, sizeof why) : A_IO;
        res = fault_reply_lost(p, res);
        switch (res) {
        case A_COMMITTED: return PUBLISH_OK;
        case A_IO: drop(p); continue;
        case A_NIL: continue; /* the checkpoint changed under WATCH: reading it tells by whom */
        case A_REDIRECT: /* discarded before it ran */
            unknown = was_unknown;
            if (redirect(p)) return PUBLISH_STOPPED;
            continue;
        case A_REFUSED:
            log_state_report(&p->refused, "redis (transaction refused)", 0, why);
            if (sig_sleep_ms(backoff)) return PUBLISH_STOPPED;
            backoff = backoff * 2 > REFUSED_BACKOFF_MAX_MS ? REFUSED_BACKOFF_MAX_MS : backoff * 2;
            continue;
        default: report_partial(p, why); return PUBLISH_FATAL;
        }
    }
}

void publish_set_durable(publisher *p, int durable) { p->durable = durable != 0; }

/*
 * Durable mode: b is committed on the server the connection leads to; wait
 * until every replica it lists holds it too.  The WAIT covers the
 * connection's last write — b's EXEC, or after settle (possibly a new
 * connection that found b already there) a rewrite of the checkpoint's
 * `file` field, which replicates after b.  A lost connection makes b's fate
 * unknown again (a failover may have dropped it): settle finds it or sends
 * it again, then the wait starts over on that server.
 */
static int replicated(publisher *p, commit_batch *b, int fresh)
{
    char err[300];
    for (;;) {
        int replicas = 0, acked = 0, rv = 0;
        if (fresh) {
            redisReply *r = rconn_cmd(p->rc, "HSET %s file %b", p->ck, p->file, p->file_len);
            rv = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
            if (rv)
                snprintf(err, sizeof err, "HSET: %s",
                         !r ? rconn_error(p->rc) : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            if (r) freeReplyObject(r);
        }
        if (!rv) rv = rconn_replica_wait(p->rc, REPLICA_WAIT_MS, &replicas, &acked, err, sizeof err);
        if (!rv && acked >= replicas) {
            if (p->replicas.known && !p->replicas.up)
                log_state_report(&p->replicas, "redis replicas (import batch)", 1, NULL);
            return PUBLISH_OK;
        }
        if (!rv) {
            snprintf(err, sizeof err, "%d of %d replicas acknowledged the batch within %d ms", acked, replicas,
                     REPLICA_WAIT_MS);
            fresh = 0; /* the same connection: WAIT again covers b */
        }
        /* logged once per change: the input waits, nothing is lost */
        log_state_report(&p->replicas, "redis replicas (import batch)", 0, err);
        if (sig_stopping()) return PUBLISH_STOPPED;
        if (rv) { /* no answer, or not a primary (yet): again after a pause, not in a tight loop */
            if (sig_sleep_ms(REPLICA_RETRY_MS)) return PUBLISH_STOPPED;
            drop(p);
            int st = settle(p, b, 1);
            if (st != PUBLISH_OK) return st;
            fresh = 1;
        }
    }
}

/* b is known to be committed. */
static void committed(publisher *p, commit_batch *b, import_counts *counts)
{
    if (p->refused.known && !p->refused.up) log_state_report(&p->refused, "redis (transaction refused)", 1, NULL);
    p->committed_rows = b->to_rows;
    p->committed_done = b->to_done;
    if (p->tagged) p->committed_stripe = p->stripe;
    p->attempt = 0;
    if (counts) {
        counts->published += b->nrows;
        for (int i = 0; i < b->nrej; i++) counts->rejected[b->rej[i].reason]++;
        if (!p->tagged || b->nrows + b->nrej) counts->batches++; /* a partition's done mark is no batch */
    }
    commit_batch_clear(b);
}

int publish_sync(publisher *p, import_counts *counts)
{
    commit_batch *b = p->flight;
    if (!b) return PUBLISH_OK;
    p->flight = NULL;
    char why[512];
    redisContext *c = rconn_ctx(p->rc);
    int res = c && c == p->flight_ctx ? read_transaction(p, c, b, 0, why, sizeof why) : A_IO;
    res = fault_reply_lost(p, res);
    int st = PUBLISH_OK;
    switch (res) {
    case A_COMMITTED: break;
    case A_PARTIAL: report_partial(p, why); return PUBLISH_FATAL;
    case A_REDIRECT: /* discarded before it ran: send it where the slot is now */
        if (redirect(p)) return PUBLISH_STOPPED;
        st = settle(p, b, 0);
        break;
    case A_REFUSED: log_state_report(&p->refused, "redis (transaction refused)", 0, why); /* fall through */
    case A_IO:
    case A_NIL:
    default:
        if (res == A_IO) drop(p);
        st = settle(p, b, 1);
        break;
    }
    if (st == PUBLISH_OK && p->durable) st = replicated(p, b, res != A_COMMITTED);
    if (st == PUBLISH_OK) committed(p, b, counts);
    return st;
}

int publish_commit(publisher *p, int done, import_counts *counts)
{
    int st = publish_sync(p, counts);
    if (st != PUBLISH_OK) return st;
    commit_batch *b = p->fill;
    b->to_rows = b->end >= 0 ? b->end : p->committed_rows + b->nrows + b->nrej;
    b->to_done = done ? 1 : 0;
    if (b->to_rows == p->committed_rows && b->to_done == p->committed_done) return PUBLISH_OK; /* nothing to do */

    if (connect_or_stop(p)) return PUBLISH_STOPPED;
    redisContext *c = rconn_ctx(p->rc);
    int unknown = 0;
    switch (check_checkpoint(p, c, b, 0, 0)) {
    case C_SEND:
        if (fault_cut_before_exec(p, c, b)) {
            unknown = 1;
            break;
        }
        if (send_transaction(p, c, b, 0) == 0) { /* in flight: read by the next commit or sync */
            p->flight = b;
            p->flight_ctx = c;
            p->fill = b == &p->slot[0] ? &p->slot[1] : &p->slot[0];
            return PUBLISH_OK;
        }
        drop(p);
        unknown = 1;
        break;
    case C_IO: drop(p); break;
    case C_CONFLICT: return PUBLISH_CONFLICT;
    case C_BEHIND: return PUBLISH_ROLLED_BACK;
    case C_FATAL: return PUBLISH_FATAL;
    case C_REDIRECT:
        if (redirect(p)) return PUBLISH_STOPPED;
        break;
    default: break;
    }
    st = settle(p, b, unknown);
    if (st == PUBLISH_OK && p->durable) st = replicated(p, b, 1);
    if (st == PUBLISH_OK) committed(p, b, counts);
    return st;
}

int publish_reset(publisher *p)
{
    int st = publish_sync(p, NULL);
    if (st != PUBLISH_OK) return st;
    commit_batch *b = p->fill;
    commit_batch_clear(b);
    b->to_rows = 0;
    b->to_done = 0;
    int other_stripe = p->tagged && p->committed_stripe && p->committed_stripe != p->stripe;
    if (p->committed_rows == 0 && p->committed_done == 0 && !other_stripe) return PUBLISH_OK;
    p->resetting = 1; /* the reset records this run's stripe over the old one */
    st = settle(p, b, 0);
    p->resetting = 0;
    if (st == PUBLISH_OK) committed(p, b, NULL);
    return st;
}
