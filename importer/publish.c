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
    size_t off, len; /* raw text in the batch's text */
} reject_row;

typedef struct batch {
    batch_row *rows;
    int nrows;
    reject_row *rej;
    int nrej;
    char *text;
    size_t text_len, text_cap;
    int64_t to_rows; /* the checkpoint state it commits to (set when sent) */
    int to_done;
} batch;

struct publisher {
    rconn *rc;
    atomic_int *up;
    int batch_size;
    batch slot[2];
    batch *fill;               /* the batch in hand */
    batch *flight;             /* written, replies not read yet; NULL when none */
    redisContext *flight_ctx;  /* the connection it was written to */

    char ck[128];
    char file[1024];
    size_t file_len;
    char src[256];
    size_t src_len;
    int64_t committed_rows; /* last state known committed (or read at open) */
    int committed_done;

    log_state refused;
    int fault;
};

enum { A_COMMITTED, A_IO, A_NIL, A_REFUSED, A_PARTIAL };           /* outcome of a transaction */
enum { C_SEND, C_ALREADY, C_IO, C_CONFLICT, C_FATAL };            /* outcome of the checkpoint check */

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

static void batch_clear(batch *b)
{
    b->nrows = b->nrej = 0;
    b->text_len = 0;
}

publisher *publish_new(rconn *rc, int batch_size, atomic_int *up)
{
    publisher *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->rc = rc;
    p->up = up;
    p->batch_size = batch_size > 0 ? batch_size : 1;
    for (int i = 0; i < 2; i++) {
        p->slot[i].rows = malloc(sizeof *p->slot[i].rows * (size_t)p->batch_size);
        p->slot[i].rej = malloc(sizeof *p->slot[i].rej * (size_t)p->batch_size);
        if (!p->slot[i].rows || !p->slot[i].rej) {
            publish_free(p);
            return NULL;
        }
    }
    p->fill = &p->slot[0];
    return p;
}

void publish_free(publisher *p)
{
    if (!p) return;
    for (int i = 0; i < 2; i++) {
        free(p->slot[i].rows);
        free(p->slot[i].rej);
        free(p->slot[i].text);
    }
    free(p);
}

void publish_test_fault(publisher *p, int fault) { p->fault = fault; }
int64_t publish_committed_rows(const publisher *p) { return p->committed_rows; }
int publish_pending(const publisher *p) { return p->fill->nrows + p->fill->nrej; }
int publish_accepted(const publisher *p) { return p->fill->nrows; }
int publish_in_flight(const publisher *p) { return p->flight != NULL; }

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
    batch_row *b = &p->fill->rows[p->fill->nrows++];
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
    batch *b = p->fill;
    if (b->text_len + raw_len > b->text_cap) {
        size_t cap = b->text_cap ? b->text_cap : 4096;
        while (cap < b->text_len + raw_len) cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t) return -1;
        b->text = t;
        b->text_cap = cap;
    }
    reject_row *r = &b->rej[b->nrej++];
    r->reason = reason;
    r->line = line;
    r->off = b->text_len;
    r->len = raw_len;
    if (raw_len) memcpy(b->text + b->text_len, raw, raw_len);
    b->text_len += raw_len;
    return 0;
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
    batch_clear(&p->slot[0]);
    batch_clear(&p->slot[1]);
    p->fill = &p->slot[0];
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

static int append_argv(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    return redisAppendCommandArgv(c, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

/* Append MULTI, the entries, the checkpoint HSET (and EXEC unless no_exec). */
static int append_transaction(publisher *p, redisContext *c, const batch *b, int no_exec)
{
    const char *multi[] = {"MULTI"};
    if (append_argv(c, 1, multi, NULL)) return -1;
    char src[sizeof p->src + 24];
    memcpy(src, p->src, p->src_len);
    src[p->src_len] = ':';
    for (int i = 0; i < b->nrows; i++) {
        const batch_row *r = &b->rows[i];
        size_t srclen = p->src_len + 1 + fmt_i64(src + p->src_len + 1, r->line);
        const char *type = txn_type_name(r->type);
        const char *argv[13] = {"XADD", KEYS_STREAM, "*",      "ts",     r->ts, "type", type,
                                "method", r->method, "cents", r->cents, "src", src};
        size_t lens[13] = {4, sizeof KEYS_STREAM - 1, 1, 2, TS_ISO_LEN, 4, strlen(type), 6, r->method_len, 5,
                           r->cents_len, 3, srclen};
        if (append_argv(c, 13, argv, lens)) return -1;
    }
    for (int i = 0; i < b->nrej; i++) {
        const reject_row *r = &b->rej[i];
        char line[24];
        size_t ll = fmt_i64(line, r->line);
        const char *reason = validate_reason_name(r->reason);
        const char *argv[11] = {"XADD", KEYS_REJECTED, "*", "reason", reason, "file", p->file,
                                "line", line, "raw", b->text ? b->text + r->off : ""};
        size_t lens[11] = {4, sizeof KEYS_REJECTED - 1, 1, 6, strlen(reason), 4, p->file_len, 4, ll, 3, r->len};
        if (append_argv(c, 11, argv, lens)) return -1;
    }
    char nrows[24];
    size_t nl = fmt_i64(nrows, b->to_rows);
    const char *hset[] = {"HSET", p->ck, "rows", nrows, "done", b->to_done ? "1" : "0", "file", p->file};
    size_t hlens[] = {4, strlen(p->ck), 4, nl, 4, 1, 4, p->file_len};
    if (append_argv(c, 8, hset, hlens)) return -1;
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
static int send_transaction(publisher *p, redisContext *c, const batch *b)
{
    if (append_transaction(p, c, b, 0)) return -1;
    return flush_output(c);
}

/* Read the replies of b's transaction. */
static int read_transaction(redisContext *c, const batch *b, char *why, size_t whylen)
{
    int nqueued = b->nrows + b->nrej + 1;
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
 * Round trip 1: WATCH the checkpoint and read it.  C_SEND: it is still the
 * committed state (watched); C_ALREADY: unknown is set and it is b's target
 * (an earlier attempt committed); C_CONFLICT / C_FATAL: logged, unwatched.
 */
static int check_checkpoint(publisher *p, redisContext *c, const batch *b, int unknown)
{
    redisReply *w = NULL, *h = NULL;
    redisAppendCommand(c, "WATCH %s", p->ck);
    redisAppendCommand(c, "HMGET %s rows done", p->ck);
    if (redisGetReply(c, (void **)&w) != REDIS_OK || redisGetReply(c, (void **)&h) != REDIS_OK) {
        if (w) freeReplyObject(w);
        return C_IO;
    }
    set_up(p, 1);
    int64_t rows;
    int done;
    int bad = w->type == REDIS_REPLY_ERROR || parse_checkpoint(h, &rows, &done) != 0;
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
    if (unknown && rows == b->to_rows && done == b->to_done) {
        unwatch(p);
        return C_ALREADY;
    }
    if (rows != p->committed_rows || done != p->committed_done) {
        unwatch(p);
        char q[1100];
        log_error("checkpoint moved by another importer; leaving this file to it",
                  "file=%s key=%s expected_rows=%lld found_rows=%lld found_done=%d", log_q(q, sizeof q, p->file),
                  p->ck, (long long)p->committed_rows, (long long)rows, done);
        return C_CONFLICT;
    }
    return C_SEND;
}

static void log_partial(publisher *p, const char *why)
{
    char q[1100], qw[600];
    log_error("transaction ran only in part; stream and checkpoint may disagree", "file=%s key=%s err=%s",
              log_q(q, sizeof q, p->file), p->ck, log_q(qw, sizeof qw, why));
}

/* Fault 1 (set only by tests, through publish_test_fault): the transaction
 * is sent without its EXEC and the connection dies, so Redis discards it.
 * Returns 1 when it fired. */
static int fault_cut_before_exec(publisher *p, redisContext *c, batch *b)
{
    if (p->fault != 1) return 0;
    p->fault = 0;
    append_transaction(p, c, b, 1);
    flush_output(c);
    drop(p);
    return 1;
}

/*
 * Commit b synchronously, whatever it takes: reconnect, re-read the
 * checkpoint, send again only if it did not commit.  unknown: an earlier
 * attempt may have committed.
 */
static int settle(publisher *p, batch *b, int unknown)
{
    int64_t backoff = REFUSED_BACKOFF_MIN_MS;
    char why[512];
    for (;;) {
        if (connect_or_stop(p)) return PUBLISH_STOPPED;
        redisContext *c = rconn_ctx(p->rc);
        switch (check_checkpoint(p, c, b, unknown)) {
        case C_ALREADY: return PUBLISH_OK;
        case C_IO: drop(p); continue;
        case C_CONFLICT: return PUBLISH_CONFLICT;
        case C_FATAL: return PUBLISH_FATAL;
        default: break;
        }
        if (fault_cut_before_exec(p, c, b)) {
            unknown = 1;
            continue;
        }
        unknown = 1;
        int res = send_transaction(p, c, b) == 0 ? read_transaction(c, b, why, sizeof why) : A_IO;
        if (res == A_COMMITTED && p->fault == 2) { /* test: the EXEC reply is lost */
            p->fault = 0;
            res = A_IO;
        }
        switch (res) {
        case A_COMMITTED: return PUBLISH_OK;
        case A_IO: drop(p); continue;
        case A_NIL: continue; /* the checkpoint changed under WATCH: reading it tells by whom */
        case A_REFUSED:
            log_state_report(&p->refused, "redis (transaction refused)", 0, why);
            if (sig_sleep_ms(backoff)) return PUBLISH_STOPPED;
            backoff = backoff * 2 > REFUSED_BACKOFF_MAX_MS ? REFUSED_BACKOFF_MAX_MS : backoff * 2;
            continue;
        default: log_partial(p, why); return PUBLISH_FATAL;
        }
    }
}

/* b is known to be committed. */
static void committed(publisher *p, batch *b, import_counts *counts)
{
    if (p->refused.known && !p->refused.up) log_state_report(&p->refused, "redis (transaction refused)", 1, NULL);
    p->committed_rows = b->to_rows;
    p->committed_done = b->to_done;
    if (counts) {
        counts->published += b->nrows;
        for (int i = 0; i < b->nrej; i++) counts->rejected[b->rej[i].reason]++;
        counts->batches++;
    }
    batch_clear(b);
}

int publish_sync(publisher *p, import_counts *counts)
{
    batch *b = p->flight;
    if (!b) return PUBLISH_OK;
    p->flight = NULL;
    char why[512];
    redisContext *c = rconn_ctx(p->rc);
    int res = c && c == p->flight_ctx ? read_transaction(c, b, why, sizeof why) : A_IO;
    if (res == A_COMMITTED && p->fault == 2) { /* test: the EXEC reply is lost */
        p->fault = 0;
        res = A_IO;
    }
    int st = PUBLISH_OK;
    switch (res) {
    case A_COMMITTED: break;
    case A_PARTIAL: log_partial(p, why); return PUBLISH_FATAL;
    case A_REFUSED: log_state_report(&p->refused, "redis (transaction refused)", 0, why); /* fall through */
    case A_IO:
    case A_NIL:
    default:
        if (res == A_IO) drop(p);
        st = settle(p, b, 1);
        break;
    }
    if (st == PUBLISH_OK) committed(p, b, counts);
    return st;
}

int publish_commit(publisher *p, int done, import_counts *counts)
{
    int st = publish_sync(p, counts);
    if (st != PUBLISH_OK) return st;
    batch *b = p->fill;
    b->to_rows = p->committed_rows + b->nrows + b->nrej;
    b->to_done = done ? 1 : 0;
    if (b->to_rows == p->committed_rows && b->to_done == p->committed_done) return PUBLISH_OK; /* nothing to do */

    if (connect_or_stop(p)) return PUBLISH_STOPPED;
    redisContext *c = rconn_ctx(p->rc);
    int unknown = 0;
    switch (check_checkpoint(p, c, b, 0)) {
    case C_SEND:
        if (fault_cut_before_exec(p, c, b)) {
            unknown = 1;
            break;
        }
        if (send_transaction(p, c, b) == 0) { /* in flight: read by the next commit or sync */
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
    case C_FATAL: return PUBLISH_FATAL;
    default: break;
    }
    st = settle(p, b, unknown);
    if (st == PUBLISH_OK) committed(p, b, counts);
    return st;
}

int publish_reset(publisher *p)
{
    int st = publish_sync(p, NULL);
    if (st != PUBLISH_OK) return st;
    batch *b = p->fill;
    batch_clear(b);
    b->to_rows = 0;
    b->to_done = 0;
    if (p->committed_rows == 0 && p->committed_done == 0) return PUBLISH_OK;
    st = settle(p, b, 0);
    if (st == PUBLISH_OK) committed(p, b, NULL);
    return st;
}
