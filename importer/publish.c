/*
 * publish — batches and checkpoints, exactly once; see publish.h.
 *
 * A commit moves the checkpoint from the state this process last saw
 * (rows R, done D) to a new state (R + records in the batch, done D'), which
 * always differs from the old one (a batch holds at least one record, or it
 * is the final one that sets done).  One attempt is two round trips:
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
 * When a connection fails after the transaction may have been sent, the
 * outcome is unknown: after reconnecting, the checkpoint is read again —
 * the new state means it committed (done), the old state means it did not
 * (send it again), anything else is a conflict.  The batch is kept until it
 * is known to be committed.  Redis refusing the transaction (EXECABORT, e.g.
 * OOM under maxmemory) is retried with capped backoff, logged once per change;
 * a transaction that ran only in part (an XADD failing at run time, which
 * MULTI does not roll back) is reported as fatal, never retried.
 *
 * Hot path: rows are stored formatted in fixed arrays allocated once, the
 * commands are formatted with redisAppendCommandArgv from stack buffers, the
 * whole transaction goes out in one write.
 */
#include "publish.h"
#include "keys.h"
#include "log.h"
#include "money.h"
#include "signals.h"
#include "timeparse.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REJECT_TEXT_MAX (1 << 20) /* dead-letter text in a batch before it counts as full */
#define REFUSED_BACKOFF_MIN_MS 100
#define REFUSED_BACKOFF_MAX_MS 5000

typedef struct batch_row {
    char ts[TS_ISO_LEN + 1];
    char method[TXN_METHOD_MAX + 1];
    char cents[24];
    unsigned char method_len, cents_len, type;
    int64_t line;
} batch_row;

typedef struct reject_row {
    int reason;
    int64_t line;
    size_t off, len; /* raw text in p->text */
} reject_row;

struct publisher {
    rconn *rc;
    atomic_int *up;
    int batch_size;
    batch_row *rows;
    int nrows;
    reject_row *rej;
    int nrej;
    char *text;
    size_t text_len, text_cap;

    char ck[128];
    char file[1024];
    size_t file_len;
    char src[256];
    size_t src_len;
    int64_t committed_rows;
    int committed_done;

    log_state refused;
    int fault;
};

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

publisher *publish_new(rconn *rc, int batch_size, atomic_int *up)
{
    publisher *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->rc = rc;
    p->up = up;
    p->batch_size = batch_size > 0 ? batch_size : 1;
    p->rows = malloc(sizeof *p->rows * (size_t)p->batch_size);
    p->rej = malloc(sizeof *p->rej * (size_t)p->batch_size);
    if (!p->rows || !p->rej) {
        publish_free(p);
        return NULL;
    }
    return p;
}

void publish_free(publisher *p)
{
    if (!p) return;
    free(p->rows);
    free(p->rej);
    free(p->text);
    free(p);
}

void publish_test_fault(publisher *p, int fault) { p->fault = fault; }
int64_t publish_committed_rows(const publisher *p) { return p->committed_rows; }
int publish_pending(const publisher *p) { return p->nrows + p->nrej; }
int publish_accepted(const publisher *p) { return p->nrows; }

int publish_full(const publisher *p)
{
    return p->nrows + p->nrej >= p->batch_size || p->text_len >= REJECT_TEXT_MAX;
}

static void set_up(publisher *p, int v)
{
    if (p->up) atomic_store(p->up, v);
}

void publish_add_row(publisher *p, const valid_row *row, int64_t line)
{
    batch_row *b = &p->rows[p->nrows++];
    ts_format_iso(row->epoch, b->ts);
    size_t ml = strlen(row->method);
    memcpy(b->method, row->method, ml + 1);
    b->method_len = (unsigned char)ml;
    b->cents_len = (unsigned char)fmt_i64(b->cents, row->cents);
    b->type = (unsigned char)row->type;
    b->line = line;
}

int publish_add_reject(publisher *p, int reason, int64_t line, const char *raw, size_t raw_len)
{
    if (p->text_len + raw_len > p->text_cap) {
        size_t cap = p->text_cap ? p->text_cap : 4096;
        while (cap < p->text_len + raw_len) cap *= 2;
        char *t = realloc(p->text, cap);
        if (!t) return -1;
        p->text = t;
        p->text_cap = cap;
    }
    reject_row *r = &p->rej[p->nrej++];
    r->reason = reason;
    r->line = line;
    r->off = p->text_len;
    r->len = raw_len;
    if (raw_len) memcpy(p->text + p->text_len, raw, raw_len);
    p->text_len += raw_len;
    return 0;
}

static void clear_batch(publisher *p)
{
    p->nrows = p->nrej = 0;
    p->text_len = 0;
}

/* rows / done of an HMGET ck rows done reply; 0, or -1 when malformed. */
static int parse_checkpoint(const redisReply *r, int64_t *rows, int *done)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return -1;
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

/* Connected, or -1 when a stop was requested while Redis is unreachable. */
static int connect_or_stop(publisher *p)
{
    if (rconn_ensure(p->rc) == 0) return 0;
    set_up(p, 0);
    return rconn_wait(p->rc);
}

int publish_open_file(publisher *p, const char *file_id, const char *file, const char *src, int64_t *rows,
                      int *done)
{
    clear_batch(p);
    keys_checkpoint(p->ck, sizeof p->ck, file_id);
    snprintf(p->file, sizeof p->file, "%s", file);
    p->file_len = strlen(p->file);
    snprintf(p->src, sizeof p->src, "%s", src);
    p->src_len = strlen(p->src);
    for (;;) {
        if (connect_or_stop(p)) return PUBLISH_STOPPED;
        redisReply *r = rconn_cmd(p->rc, "HMGET %s rows done", p->ck);
        if (!r) continue;
        set_up(p, 1);
        int bad = parse_checkpoint(r, rows, done);
        if (bad) {
            char q[300];
            log_error("unreadable checkpoint", "key=%s reply=%s", p->ck,
                      log_q(q, sizeof q, r->type == REDIS_REPLY_ERROR ? r->str : "malformed"));
        }
        freeReplyObject(r);
        if (bad) return PUBLISH_FATAL;
        p->committed_rows = *rows;
        p->committed_done = *done;
        return PUBLISH_OK;
    }
}

enum attempt_result { A_COMMITTED, A_IO, A_NIL, A_REFUSED, A_PARTIAL };

static int append_argv(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    return redisAppendCommandArgv(c, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

/* Append MULTI, the entries, the checkpoint HSET (and EXEC unless no_exec). */
static int append_transaction(publisher *p, redisContext *c, int64_t rows, int done, int no_exec)
{
    const char *multi[] = {"MULTI"};
    if (append_argv(c, 1, multi, NULL)) return -1;
    char src[sizeof p->src + 24];
    memcpy(src, p->src, p->src_len);
    src[p->src_len] = ':';
    for (int i = 0; i < p->nrows; i++) {
        const batch_row *b = &p->rows[i];
        size_t srclen = p->src_len + 1 + fmt_i64(src + p->src_len + 1, b->line);
        const char *type = txn_type_name(b->type);
        const char *argv[13] = {"XADD", KEYS_STREAM, "*",      "ts",     b->ts, "type", type,
                                "method", b->method, "cents", b->cents, "src", src};
        size_t lens[13] = {4, sizeof KEYS_STREAM - 1, 1, 2, TS_ISO_LEN, 4, strlen(type), 6, b->method_len, 5,
                           b->cents_len, 3, srclen};
        if (append_argv(c, 13, argv, lens)) return -1;
    }
    for (int i = 0; i < p->nrej; i++) {
        const reject_row *r = &p->rej[i];
        char line[24];
        size_t ll = fmt_i64(line, r->line);
        const char *reason = validate_reason_name(r->reason);
        const char *argv[11] = {"XADD", KEYS_REJECTED, "*", "reason", reason, "file", p->file,
                                "line", line, "raw", p->text ? p->text + r->off : ""};
        size_t lens[11] = {4, sizeof KEYS_REJECTED - 1, 1, 6, strlen(reason), 4, p->file_len, 4, ll, 3, r->len};
        if (append_argv(c, 11, argv, lens)) return -1;
    }
    char nrows[24];
    size_t nl = fmt_i64(nrows, rows);
    const char *hset[] = {"HSET", p->ck, "rows", nrows, "done", done ? "1" : "0", "file", p->file};
    size_t hlens[] = {4, strlen(p->ck), 4, nl, 4, 1, 4, p->file_len};
    if (append_argv(c, 8, hset, hlens)) return -1;
    if (no_exec) return 0;
    const char *exec[] = {"EXEC"};
    return append_argv(c, 1, exec, NULL);
}

/* Write the output buffer out (for the fault hooks). */
static void flush_output(redisContext *c)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK) return;
}

/* Send the transaction and read its replies. */
static int attempt(publisher *p, redisContext *c, int64_t rows, int done, char *why, size_t whylen)
{
    int nqueued = p->nrows + p->nrej + 1;
    if (append_transaction(p, c, rows, done, 0)) return A_IO;
    int result = A_COMMITTED;
    char queued[256] = "";
    for (int i = 0; i < nqueued + 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) return A_IO;
        if (i < nqueued + 1) { /* MULTI's OK, then one QUEUED (or error) per command */
            if (r->type == REDIS_REPLY_ERROR && !queued[0]) snprintf(queued, sizeof queued, "%s", r->str);
        } else if (r->type == REDIS_REPLY_NIL) {
            result = A_NIL;
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
        freeReplyObject(r);
    }
    return result;
}

static void unwatch(publisher *p)
{
    redisReply *r = rconn_cmd(p->rc, "UNWATCH");
    if (r) freeReplyObject(r);
}

/*
 * Move the checkpoint from (committed_rows, committed_done) to (rows, done)
 * together with the batch in hand.
 */
static int transact(publisher *p, int64_t rows, int done)
{
    if (rows == p->committed_rows && done == p->committed_done && p->nrows + p->nrej == 0) return PUBLISH_OK;
    int unknown = 0; /* an earlier attempt may have committed */
    int64_t backoff = REFUSED_BACKOFF_MIN_MS;
    char why[512];
    for (;;) {
        if (connect_or_stop(p)) return PUBLISH_STOPPED;
        redisContext *c = rconn_ctx(p->rc);

        /* Round trip 1: watch the checkpoint and read it. */
        redisReply *w = NULL, *h = NULL;
        redisAppendCommand(c, "WATCH %s", p->ck);
        redisAppendCommand(c, "HMGET %s rows done", p->ck);
        if (redisGetReply(c, (void **)&w) != REDIS_OK || redisGetReply(c, (void **)&h) != REDIS_OK) {
            if (w) freeReplyObject(w);
            rconn_drop(p->rc);
            set_up(p, 0);
            continue;
        }
        set_up(p, 1);
        int64_t cur_rows;
        int cur_done;
        int bad = w->type == REDIS_REPLY_ERROR || parse_checkpoint(h, &cur_rows, &cur_done) != 0;
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
            return PUBLISH_FATAL;
        }
        if (unknown && cur_rows == rows && cur_done == done) break; /* the earlier attempt committed */
        if (cur_rows != p->committed_rows || cur_done != p->committed_done) {
            unwatch(p);
            char q[1100];
            log_error("checkpoint moved by another importer; leaving this file to it", "file=%s key=%s "
                      "expected_rows=%lld found_rows=%lld found_done=%d",
                      log_q(q, sizeof q, p->file), p->ck, (long long)p->committed_rows, (long long)cur_rows,
                      cur_done);
            return PUBLISH_CONFLICT;
        }

        /* Round trip 2: the transaction. */
        if (p->fault == 1) { /* test: the connection dies before EXEC is sent */
            p->fault = 0;
            append_transaction(p, c, rows, done, 1);
            flush_output(c);
            rconn_drop(p->rc);
            unknown = 1;
            continue;
        }
        int res = attempt(p, c, rows, done, why, sizeof why);
        unknown = 1;
        if (res == A_COMMITTED && p->fault == 2) { /* test: the EXEC reply is lost */
            p->fault = 0;
            res = A_IO;
        }
        switch (res) {
        case A_COMMITTED:
            goto committed;
        case A_IO:
            rconn_drop(p->rc);
            set_up(p, 0);
            continue;
        case A_NIL:
            /* The checkpoint changed under WATCH: an earlier attempt of ours
             * committing late, or another importer.  Reading it tells. */
            continue;
        case A_REFUSED:
            log_state_report(&p->refused, "redis (transaction refused)", 0, why);
            if (sig_sleep_ms(backoff)) return PUBLISH_STOPPED;
            backoff = backoff * 2 > REFUSED_BACKOFF_MAX_MS ? REFUSED_BACKOFF_MAX_MS : backoff * 2;
            continue;
        default:
        {
            char q[1100], qw[600];
            log_error("transaction ran only in part; stream and checkpoint may disagree", "file=%s key=%s err=%s",
                      log_q(q, sizeof q, p->file), p->ck, log_q(qw, sizeof qw, why));
        }
            return PUBLISH_FATAL;
        }
    }
committed:
    if (p->refused.known && !p->refused.up) log_state_report(&p->refused, "redis (transaction refused)", 1, NULL);
    p->committed_rows = rows;
    p->committed_done = done;
    return PUBLISH_OK;
}

int publish_commit(publisher *p, int done, import_counts *counts)
{
    int64_t rows = p->committed_rows + p->nrows + p->nrej;
    int st = transact(p, rows, done ? 1 : 0);
    if (st != PUBLISH_OK) return st;
    if (counts) {
        counts->published += p->nrows;
        for (int i = 0; i < p->nrej; i++) counts->rejected[p->rej[i].reason]++;
        counts->batches++;
    }
    clear_batch(p);
    return PUBLISH_OK;
}

int publish_reset(publisher *p)
{
    clear_batch(p);
    return transact(p, 0, 0);
}
