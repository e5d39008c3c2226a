/*
 * snapshot — the atomic Redis read of a /stats request; see snapshot.h.
 *
 * Invariants: a snapshot comes from exactly one MULTI/EXEC or one script
 * run, never from two; the fast path's result is used only when, inside
 * the same transaction, the tracked days in range, the pending batch ids
 * and each batch's days in range equal the hint's (so it read the same
 * hashes as snapshot.lua would have); records are appended only after that
 * check; the hint changes only when the script ran, and frozen ids taken
 * from it stay valid until the next snapshot_read of the same thread.
 */
#include "snapshot.h"

#include "dynbuf.h"
#include "keys.h"
#include "log.h"
#include "reply_arena.h"
#include "metrics.h"
#include "money.h"
#include "timeparse.h"
#include "txn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hint_batch {
    char *id;
    size_t idlen;
    int32_t *days; /* sorted */
    size_t ndays;
} hint_batch;

typedef struct i32_vec {
    int32_t *v;
    size_t n, cap;
} i32_vec;

struct snap_hint {
    int valid;
    uint64_t gen;  /* bumped at every refresh */
    i32_vec days; /* every tracked day, sorted */
    hint_batch *b;
    size_t nb, capb;
    i32_vec tmp; /* scratch for comparisons */
    /* The MULTI/EXEC pipeline of the last range, formatted once. */
    dynbuf pipe;
    size_t pcmds;
    int32_t pfrom, pto;
    uint64_t pgen;
    reply_arena arena; /* replies of the fast path */
};

static metric *m_fast, *m_lua, *m_redis_failures;

static void register_metrics(void)
{
    m_fast = metrics_counter("txagg_api_snapshots_total", "Redis snapshots of /stats, by how they were read",
                             "path=\"multi\"");
    m_lua = metrics_counter("txagg_api_snapshots_total", "Redis snapshots of /stats, by how they were read",
                            "path=\"script\"");
    m_redis_failures = metrics_counter("txagg_api_redis_failures_total",
                                       "Redis calls of the API that failed (unreachable, timed out, error reply)", NULL);
}

void snapshot_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_metrics);
}

/* ---- small helpers -------------------------------------------------------- */

static int i32_push(i32_vec *a, int32_t x)
{
    if (dynbuf_reserve_array(&a->v, &a->cap, a->n + 1, sizeof *a->v, REC_BUF_MAX)) return -1;
    a->v[a->n++] = x;
    return 0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The slice of sorted v[0..n) inside [from, to]. */
static const int32_t *in_range(const int32_t *v, size_t n, int32_t from, int32_t to, size_t *count)
{
    size_t lo = 0;
    while (lo < n && v[lo] < from) lo++;
    size_t hi = lo;
    while (hi < n && v[hi] <= to) hi++;
    *count = hi - lo;
    return v + lo;
}

static int is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS;
}

static int parse_day(const char *s, size_t n, int32_t *day)
{
    int64_t d;
    if (ts_parse_day(s, n, &d)) return -1;
    *day = (int32_t)d;
    return 0;
}

/* Parse "d1,d2,..." into out (sorted); -1 when a member is not a day. */
static int parse_days_csv(const char *s, size_t len, i32_vec *out)
{
    out->n = 0;
    for (size_t i = 0; i < len;) {
        const char *c = memchr(s + i, ',', len - i);
        size_t n = c ? (size_t)(c - (s + i)) : len - i;
        int32_t d;
        if (n) {
            if (parse_day(s + i, n, &d) || i32_push(out, d)) return -1;
        }
        i += n + 1;
    }
    if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_i32);
    return 0;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v; /* "" = never bumped = 0 */
    return 0;
}

int snapshot_parse_version(const redisReply *r, uint64_t *version)
{
    *version = 0;
    if (r->type == REDIS_REPLY_NIL) return 0;
    return is_str(r) ? parse_u64(r->str, r->len, version) : -1;
}

/* version and archived-through from their replies (string, or nil/"" = unset). */
static int parse_header(const redisReply *ver, const redisReply *thr, const redisReply *hot, snapshot *s, char *err,
                        size_t errlen)
{
    s->has_through = 0;
    if (snapshot_parse_version(ver, &s->version))
        return log_fail(SNAP_INTERNAL, err, errlen, "corrupt data: %s is not a counter", KEYS_ARCHIVE_VERSION);
    if (snapshot_parse_version(hot, &s->hot_version))
        return log_fail(SNAP_INTERNAL, err, errlen, "corrupt data: %s is not a counter", KEYS_HOT_VERSION);
    if (thr->type != REDIS_REPLY_NIL && (!is_str(thr) || thr->len > 0)) {
        if (!is_str(thr) || parse_day(thr->str, thr->len, &s->through))
            return log_fail(SNAP_INTERNAL, err, errlen, "corrupt data: %s is not a day", KEYS_ARCHIVED_THROUGH);
        s->has_through = 1;
    }
    return SNAP_OK;
}

/* Append the field/value pairs of one hash as records. */
static int add_pairs(redisReply **kv, size_t npairs, int32_t day, int type, const char *batch, size_t blen,
                     rec_vec *hot, frozen_vec *frozen, char *err, size_t errlen)
{
    for (size_t i = 0; i < npairs; i++) {
        const redisReply *f = kv[2 * i], *v = kv[2 * i + 1];
        char day_s[TS_DAY_LEN + 1];
        ts_format_day(day, day_s);
        if (!is_str(f) || !rec_method_ok(f->str, f->len))
            return log_fail(SNAP_INTERNAL, err, errlen, "corrupt data: %s hash of %s %s has a field that is not a payment method",
                        batch ? "a frozen" : "the", day_s, txn_type_name(type));
        int64_t cents;
        if (!is_str(v) || money_parse_cents(v->str, v->len, &cents) != MONEY_OK)
            return log_fail(SNAP_INTERNAL, err, errlen, "corrupt data: %s hash of %s %s: %s is not integer cents",
                        batch ? "a frozen" : "the", day_s, txn_type_name(type), f->str);
        rec *r = batch ? frozen_push(frozen, batch, blen) : rec_push(hot);
        if (!r) return log_fail(SNAP_INTERNAL, err, errlen, "out of memory");
        r->day = day;
        r->type = (uint8_t)type;
        r->mlen = (uint8_t)f->len;
        memcpy(r->method, f->str, f->len + 1);
        r->cents = cents;
    }
    return SNAP_OK;
}

int snapshot_redis_failure(rconn *rc, const redisReply *r, char *err, size_t errlen)
{
    metrics_inc(m_redis_failures);
    if (!r) return log_fail(SNAP_UNAVAILABLE, err, errlen, "Redis unavailable: %s", rconn_error(rc));
    /* A server that is loading, busy, failing over… is unavailable for now. */
    static const char *const transient[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "OOM"};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (rreply_is_error(r, transient[i])) return log_fail(SNAP_UNAVAILABLE, err, errlen, "Redis unavailable: %s", r->str);
    return log_fail(SNAP_INTERNAL, err, errlen, "Redis error: %s",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
}

/* ---- the hint ---------------------------------------------------------------- */

snap_hint *snap_hint_new(void)
{
    snap_hint *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    reply_arena_init(&h->arena);
    dynbuf_init(&h->pipe, REC_BUF_MAX);
    return h;
}

static void hint_clear_batches(snap_hint *h)
{
    for (size_t i = 0; i < h->nb; i++) {
        free(h->b[i].id);
        free(h->b[i].days);
    }
    h->nb = 0;
}

void snap_hint_free(snap_hint *h)
{
    if (!h) return;
    hint_clear_batches(h);
    free(h->b);
    free(h->days.v);
    free(h->tmp.v);
    dynbuf_free(&h->pipe);
    reply_arena_free(&h->arena);
    free(h);
}

static int hint_add_batch(snap_hint *h, const char *id, size_t idlen, const char *days, size_t dlen)
{
    if (dynbuf_reserve_array(&h->b, &h->capb, h->nb + 1, sizeof *h->b, REC_BUF_MAX)) return -1;
    i32_vec dv = {0};
    if (parse_days_csv(days, dlen, &dv)) {
        free(dv.v);
        return -1;
    }
    hint_batch *b = &h->b[h->nb];
    b->id = malloc(idlen + 1);
    if (!b->id) {
        free(dv.v);
        return -1;
    }
    memcpy(b->id, id, idlen);
    b->id[idlen] = '\0';
    b->idlen = idlen;
    b->days = dv.v;
    b->ndays = dv.n;
    h->nb++;
    return 0;
}

/* ---- the script path ---------------------------------------------------------- */

/* The script's arguments for [from, to] and the partition (NULL: untagged);
 * a and b hold the days' text.  Fills argv[0..SCRIPT_ARGC). */
#define SCRIPT_ARGC 13
static void script_argv(const keys_part *part, int32_t from, int32_t to, char *a, char *b, const char **argv)
{
    ts_format_day(from, a);
    ts_format_day(to, b);
    const char *v[SCRIPT_ARGC] = {part ? part->tracked : KEYS_TRACKED_DAYS,
                                  part ? part->archive_version : KEYS_ARCHIVE_VERSION,
                                  part ? part->archived_through : KEYS_ARCHIVED_THROUGH,
                                  part ? part->archive_pending : KEYS_ARCHIVE_PENDING,
                                  part ? part->hot_version : KEYS_HOT_VERSION,
                                  a,
                                  b,
                                  KEYS_AGG_PREFIX,
                                  KEYS_FROZEN_PREFIX,
                                  KEYS_BATCH_PREFIX,
                                  txn_type_name(TXN_DEPOSIT),
                                  txn_type_name(TXN_WITHDRAWAL),
                                  part ? part->tag : ""};
    memcpy(argv, v, sizeof v);
}

/* The script's reply r (kept in out until snapshot_release) parsed into out,
 * hot and frozen; hint (may be NULL) refreshed from it. */
static int script_parse(redisReply *r, snap_hint *hint, snapshot *out, rec_vec *hot, frozen_vec *frozen, char *err,
                        size_t errlen)
{
    out->reply = r;
    if (hint) {
        hint->valid = 0;
        hint->gen++;
    }
    const char *bad = "unexpected snapshot reply from Redis";
    size_t n = r->elements;
    if (r->type != REDIS_REPLY_ARRAY || n < 5) return log_fail(SNAP_INTERNAL, err, errlen, "%s", bad);
    redisReply **e = r->element;
    int rv = parse_header(e[0], e[1], e[2], out, err, errlen);
    if (rv) return rv;
    if (!is_str(e[3]) || strcmp(e[3]->str, "t") || e[4]->type != REDIS_REPLY_INTEGER || e[4]->integer < 0 ||
        (size_t)e[4]->integer > n - 5)
        return log_fail(SNAP_INTERNAL, err, errlen, "%s", bad);

    /* The layout, for the next request's fast path. */
    int hint_ok = 1;
    size_t i = 5, ntracked = (size_t)e[4]->integer;
    if (hint) {
        hint->days.n = 0;
        hint_clear_batches(hint);
    }
    for (size_t k = 0; k < ntracked; k++, i++) {
        int32_t d;
        if (!is_str(e[i]) || parse_day(e[i]->str, e[i]->len, &d) || (hint && i32_push(&hint->days, d))) hint_ok = 0;
    }
    if (hint && hint->days.n > 1) qsort(hint->days.v, hint->days.n, sizeof *hint->days.v, cmp_i32);

    while (i < n) {
        const redisReply *tag = e[i];
        if (!is_str(tag) || tag->len != 1) return log_fail(SNAP_INTERNAL, err, errlen, "%s", bad);
        char t = tag->str[0];
        if (t == 'x') {
            if (i + 1 >= n || !is_str(e[i + 1])) return log_fail(SNAP_INTERNAL, err, errlen, "%s", bad);
            return log_fail(SNAP_INTERNAL, err, errlen, "corrupt data: archive batch %.60s is pending but %s%.60s is missing",
                        e[i + 1]->str, KEYS_BATCH_PREFIX, e[i + 1]->str);
        }
        if (t == 'p') {
            if (i + 2 >= n || !is_str(e[i + 1]) || !is_str(e[i + 2])) return log_fail(SNAP_INTERNAL, err, errlen, "%s", bad);
            if (hint && hint_add_batch(hint, e[i + 1]->str, e[i + 1]->len, e[i + 2]->str, e[i + 2]->len)) hint_ok = 0;
            i += 3;
            continue;
        }
        if (t != 'h' && t != 'f') return log_fail(SNAP_INTERNAL, err, errlen, "%s", bad);
        size_t k = i + 1;
        const redisReply *batch = t == 'f' ? e[k++] : NULL;
        if (k + 3 > n) return log_fail(SNAP_INTERNAL, err, errlen, "%s", bad);
        const redisReply *dayr = e[k], *typer = e[k + 1], *cntr = e[k + 2];
        if (!is_str(dayr) || typer->type != REDIS_REPLY_INTEGER || cntr->type != REDIS_REPLY_INTEGER ||
            typer->integer < 0 || typer->integer >= TXN_TYPES || cntr->integer < 0 ||
            (size_t)cntr->integer > (n - k - 3) / 2 || (batch && !is_str(batch)))
            return log_fail(SNAP_INTERNAL, err, errlen, "%s", bad);
        int32_t day;
        if (parse_day(dayr->str, dayr->len, &day))
            return log_fail(SNAP_INTERNAL, err, errlen, "corrupt data: %.40s (a tracked or frozen day) is not a day",
                        dayr->str);
        size_t cnt = (size_t)cntr->integer;
        rv = add_pairs(e + k + 3, cnt, day, (int)typer->integer, batch ? batch->str : NULL, batch ? batch->len : 0,
                       hot, frozen, err, errlen);
        if (rv) return rv;
        i = k + 3 + 2 * cnt;
    }
    if (hint) hint->valid = hint_ok;
    return SNAP_OK;
}

static int script_read(rconn *rc, rscript *lua, snap_hint *hint, int32_t from, int32_t to, snapshot *out,
                       rec_vec *hot, frozen_vec *frozen, char *err, size_t errlen)
{
    char a[TS_DAY_LEN + 1], b[TS_DAY_LEN + 1];
    const char *argv[SCRIPT_ARGC];
    script_argv(NULL, from, to, a, b, argv);
    redisReply *r = rscript_run(rc, lua, 5, SCRIPT_ARGC, argv, NULL);
    metrics_inc(m_lua);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        int rv = snapshot_redis_failure(rc, r, err, errlen);
        if (r) freeReplyObject(r);
        return rv;
    }
    return script_parse(r, hint, out, hot, frozen, err, errlen);
}

int snapshot_cluster_failure(rcluster *cl, const redisReply *r, char *err, size_t errlen)
{
    metrics_inc(m_redis_failures);
    if (!r) return log_fail(SNAP_UNAVAILABLE, err, errlen, "Redis unavailable: %s", rcluster_error(cl));
    /* loading, busy, failing over, still redirected when the retries ran out: unavailable for now */
    static const char *const transient[] = {"LOADING", "BUSY",  "MASTERDOWN", "TRYAGAIN",
                                            "CLUSTERDOWN", "OOM", "MOVED", "ASK", "READONLY"};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        if (rreply_is_error(r, transient[i])) return log_fail(SNAP_UNAVAILABLE, err, errlen, "Redis unavailable: %s", r->str);
    /* The script read a key of its slot that a live resharding already moved
     * (Redis refuses it inside a script rather than redirect), or the cluster
     * went down under it: the partition cannot be read atomically right now. */
    if (r->type == REDIS_REPLY_ERROR && (strstr(r->str, "non local key") || strstr(r->str, "cluster is down")))
        return log_fail(SNAP_UNAVAILABLE, err, errlen, "Redis unavailable (slot moving): %s", r->str);
    return log_fail(SNAP_INTERNAL, err, errlen, "Redis error: %s",
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
}

int snapshot_read_part(rcluster *cl, const keys_part *part, rscript *lua, int32_t from, int32_t to, snapshot *out,
                       rec_vec *hot, frozen_vec *frozen, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char a[TS_DAY_LEN + 1], b[TS_DAY_LEN + 1];
    const char *argv[SCRIPT_ARGC];
    script_argv(part, from, to, a, b, argv);
    redisReply *r = rcluster_script(cl, part->slot, lua, 5, SCRIPT_ARGC, argv, NULL);
    metrics_inc(m_lua);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        int rv = snapshot_cluster_failure(cl, r, err, errlen);
        if (r) freeReplyObject(r);
        return rv;
    }
    return script_parse(r, NULL, out, hot, frozen, err, errlen);
}

/* ---- the fast path -------------------------------------------------------------- */

/* 1 when the in-range members of the reply's set of days equal want[0..nwant). */
static int same_days(snap_hint *h, redisReply **members, size_t n, int32_t from, int32_t to, const int32_t *want,
                     size_t nwant)
{
    h->tmp.n = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t d;
        if (!is_str(members[i]) || parse_day(members[i]->str, members[i]->len, &d)) return 0; /* the script says why */
        if (d >= from && d <= to && i32_push(&h->tmp, d)) return 0;
    }
    if (h->tmp.n != nwant) return 0;
    if (h->tmp.n > 1) qsort(h->tmp.v, h->tmp.n, sizeof *h->tmp.v, cmp_i32);
    return nwant == 0 || !memcmp(h->tmp.v, want, nwant * sizeof *want);
}

/* Append one command, formatted by hiredis, to the cached pipeline. */
static int pipe_add(snap_hint *h, int argc, const char **argv, const size_t *lens)
{
    char *cmd;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0) return -1;
    int rv = dynbuf_add(&h->pipe, cmd, (size_t)n);
    free(cmd);
    if (rv) return -1;
    h->pcmds++;
    return 0;
}

static int pipe_add2(snap_hint *h, const char *a, const char *b, size_t blen)
{
    const char *argv[] = {a, b};
    size_t lens[] = {strlen(a), blen};
    return pipe_add(h, 2, argv, lens);
}

/* MULTI, the layout reads, the HGETALLs the hint calls for over [from, to], EXEC. */
static int pipe_build(snap_hint *h, int32_t from, int32_t to)
{
    dynbuf_reset(&h->pipe);
    h->pcmds = 0;
    h->pgen = h->gen + 1; /* invalid until complete */
    size_t nhot;
    const int32_t *hot_days = in_range(h->days.v, h->days.n, from, to, &nhot);
    char key[256], day_s[TS_DAY_LEN + 1];
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    int bad = pipe_add(h, 1, multi, NULL);
    bad |= pipe_add2(h, "GET", KEYS_ARCHIVE_VERSION, strlen(KEYS_ARCHIVE_VERSION));
    bad |= pipe_add2(h, "GET", KEYS_ARCHIVED_THROUGH, strlen(KEYS_ARCHIVED_THROUGH));
    bad |= pipe_add2(h, "GET", KEYS_HOT_VERSION, strlen(KEYS_HOT_VERSION));
    bad |= pipe_add2(h, "SMEMBERS", KEYS_TRACKED_DAYS, strlen(KEYS_TRACKED_DAYS));
    bad |= pipe_add2(h, "SMEMBERS", KEYS_ARCHIVE_PENDING, strlen(KEYS_ARCHIVE_PENDING));
    for (size_t i = 0; i < h->nb; i++) {
        size_t kl = keys_batch(key, sizeof key, NULL, h->b[i].id);
        const char *argv[] = {"HGET", key, "days"};
        size_t lens[] = {4, kl, 4};
        bad |= !kl || pipe_add(h, 3, argv, lens);
    }
    for (size_t i = 0; i < nhot; i++) {
        ts_format_day(hot_days[i], day_s);
        for (int t = 0; t < TXN_TYPES; t++) {
            size_t kl = keys_agg(key, sizeof key, NULL, day_s, txn_type_name(t));
            bad |= !kl || pipe_add2(h, "HGETALL", key, kl);
        }
    }
    for (size_t i = 0; i < h->nb; i++) {
        size_t nd;
        const int32_t *bd = in_range(h->b[i].days, h->b[i].ndays, from, to, &nd);
        for (size_t k = 0; k < nd; k++) {
            ts_format_day(bd[k], day_s);
            for (int t = 0; t < TXN_TYPES; t++) {
                size_t kl = keys_frozen(key, sizeof key, NULL, h->b[i].id, day_s, txn_type_name(t));
                bad |= !kl || pipe_add2(h, "HGETALL", key, kl);
            }
        }
    }
    bad |= pipe_add(h, 1, exec, NULL);
    if (bad) return -1;
    h->pfrom = from;
    h->pto = to;
    h->pgen = h->gen;
    return 0;
}

/* SNAP_OK with *used = 1 when the hint held; *used = 0: fall back to the script. */
static int multi_read(rconn *rc, snap_hint *h, int32_t from, int32_t to, snapshot *out, rec_vec *hot,
                      frozen_vec *frozen, int *used, char *err, size_t errlen)
{
    *used = 0;
    if (h->pgen != h->gen || h->pfrom != from || h->pto != to) {
        if (pipe_build(h, from, to)) return SNAP_OK; /* key too long or out of memory: the script path */
    }
    if (rconn_ensure(rc) != 0) return snapshot_redis_failure(rc, NULL, err, errlen);
    redisContext *c = rconn_ctx(rc);
    size_t nhot;
    const int32_t *hot_days = in_range(h->days.v, h->days.n, from, to, &nhot);
    size_t ncmd = h->pcmds;
    if (redisAppendFormattedCommand(c, dynbuf_ptr(&h->pipe), dynbuf_len(&h->pipe)) != REDIS_OK) {
        rconn_drop(rc);
        return snapshot_redis_failure(rc, NULL, err, errlen);
    }
    /* ncmd replies: +OK, +QUEUED each, then EXEC's array — built in the arena. */
    reply_arena_reset(&h->arena);
    redisReply *r = NULL, *first_err = NULL;
    for (size_t i = 0; i < ncmd; i++) {
        redisReply *x;
        if (reply_arena_get_reply(c, &h->arena, &x) != REDIS_OK) {
            rconn_drop(rc); /* with the arena functions: the reader's leftovers are not freed one by one */
            return snapshot_redis_failure(rc, NULL, err, errlen);
        }
        if (i + 1 == ncmd) r = x;
        else if (x->type == REDIS_REPLY_ERROR && !first_err) first_err = x;
    }
    metrics_inc(m_fast);
    if (r->type != REDIS_REPLY_ARRAY) return snapshot_redis_failure(rc, first_err ? first_err : r, err, errlen);
    redisReply **e = r->element;
    size_t n = r->elements;
    if (n != ncmd - 2 || n < 5) return log_fail(SNAP_INTERNAL, err, errlen, "unexpected transaction reply from Redis");
    for (size_t i = 0; i < n; i++)
        if (e[i]->type == REDIS_REPLY_ERROR) return snapshot_redis_failure(rc, e[i], err, errlen);

    /* Does the hint still describe the layout over [from, to]? */
    if (e[3]->type != REDIS_REPLY_ARRAY || e[4]->type != REDIS_REPLY_ARRAY) return SNAP_OK;
    if (!same_days(h, e[3]->element, e[3]->elements, from, to, hot_days, nhot)) return SNAP_OK;
    if (e[4]->elements != h->nb) return SNAP_OK;
    for (size_t i = 0; i < h->nb; i++) {
        const redisReply *m = e[4]->element[i];
        int found = 0;
        for (size_t k = 0; k < h->nb && !found; k++)
            found = is_str(m) && m->len == h->b[k].idlen && !memcmp(m->str, h->b[k].id, m->len);
        if (!found) return SNAP_OK;
    }
    for (size_t i = 0; i < h->nb; i++) {
        const redisReply *dr = e[5 + i];
        size_t nd;
        const int32_t *bd = in_range(h->b[i].days, h->b[i].ndays, from, to, &nd);
        if (!is_str(dr) || parse_days_csv(dr->str, dr->len, &h->tmp)) return SNAP_OK;
        size_t got;
        const int32_t *gd = in_range(h->tmp.v, h->tmp.n, from, to, &got);
        if (got != nd || (nd && memcmp(gd, bd, nd * sizeof *bd))) return SNAP_OK;
    }

    /* It does: this transaction read exactly what the script would have. */
    int rv = parse_header(e[0], e[1], e[2], out, err, errlen);
    if (rv) return rv;
    size_t k = 5 + h->nb;
    for (size_t i = 0; i < nhot; i++)
        for (int t = 0; t < TXN_TYPES; t++, k++) {
            if (e[k]->type != REDIS_REPLY_ARRAY || e[k]->elements % 2)
                return log_fail(SNAP_INTERNAL, err, errlen, "unexpected transaction reply from Redis");
            rv = add_pairs(e[k]->element, e[k]->elements / 2, hot_days[i], t, NULL, 0, hot, frozen, err, errlen);
            if (rv) return rv;
        }
    for (size_t i = 0; i < h->nb; i++) {
        size_t nd;
        const int32_t *bd = in_range(h->b[i].days, h->b[i].ndays, from, to, &nd);
        for (size_t d = 0; d < nd; d++)
            for (int t = 0; t < TXN_TYPES; t++, k++) {
                if (e[k]->type != REDIS_REPLY_ARRAY || e[k]->elements % 2)
                    return log_fail(SNAP_INTERNAL, err, errlen, "unexpected transaction reply from Redis");
                rv = add_pairs(e[k]->element, e[k]->elements / 2, bd[d], t, h->b[i].id, h->b[i].idlen, hot, frozen,
                               err, errlen);
                if (rv) return rv;
            }
    }
    *used = 1;
    return SNAP_OK;
}

int snapshot_read(rconn *rc, rscript *lua, snap_hint *hint, int32_t from, int32_t to, snapshot *out,
                  rec_vec *hot, frozen_vec *frozen, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (hint->valid) {
        int used;
        int rv = multi_read(rc, hint, from, to, out, hot, frozen, &used, err, errlen);
        if (rv != SNAP_OK || used) return rv;
        hot->n = 0; /* stale hint: the script reads it all and refreshes the hint */
        frozen->n = 0;
    }
    return script_read(rc, lua, hint, from, to, out, hot, frozen, err, errlen);
}

void snapshot_release(snapshot *s)
{
    if (s->reply) freeReplyObject(s->reply);
    s->reply = NULL;
}

/* ---- every partition of a tagged tier, pipelined ------------------------------ */

int snapshot_read_parts(tier *t, rscript *lua, int32_t from, int32_t to, snapshot *outs, rec_vec *hot,
                        frozen_vec *frozen, int *failed, char *err, size_t errlen)
{
    int n = t->n;
    for (int p = 0; p < n; p++) memset(&outs[p], 0, sizeof outs[p]);
    *failed = -1;
    redisReply **r = calloc((size_t)n, sizeof *r);
    rconn **sent = calloc((size_t)n, sizeof *sent), **dead = calloc((size_t)n, sizeof *dead);
    int ndead = 0;
    if (!r || !sent || !dead) {
        free(r);
        free(sent);
        free(dead);
        *failed = 0;
        return log_fail(SNAP_INTERNAL, err, errlen, "out of memory");
    }
    char a[TS_DAY_LEN + 1], b[TS_DAY_LEN + 1];
    const char *argv[SCRIPT_ARGC];
    /* 1. one EVALSHA per partition appended to the connection serving it (the
     *    script's SHA known: after the first read of the thread) */
    for (int p = 0; p < n && lua->sha[0]; p++) {
        rconn *rc = tier_conn(t, p);
        if (!rc || rconn_ensure(rc) != 0) continue;
        script_argv(&t->parts[p], from, to, a, b, argv);
        if (rscript_append(rc, lua, 5, SCRIPT_ARGC, argv, NULL) == 0) sent[p] = rc;
    }
    /* 2. the replies, in the order they were appended on each connection; a
     *    connection that breaks is dropped and its later partitions read again */
    for (int p = 0; p < n; p++) {
        rconn *rc = sent[p];
        if (!rc) continue;
        int broken = 0;
        for (int i = 0; i < ndead; i++) broken |= dead[i] == rc;
        if (broken) continue;
        redisContext *c = rconn_ctx(rc);
        void *x = NULL;
        if (!c || redisGetReply(c, &x) != REDIS_OK) {
            rconn_drop(rc);
            dead[ndead++] = rc;
            continue;
        }
        r[p] = x;
        metrics_inc(m_lua);
    }
    /* 3. each partition from its reply, or alone through the cluster layer (not
     *    sent, connection broken, or any error reply: MOVED, ASK, TRYAGAIN,
     *    CLUSTERDOWN, NOSCRIPT… — it follows them, or says why it cannot) */
    int rv = SNAP_OK;
    for (int p = 0; p < n; p++) {
        if (rv != SNAP_OK) {
            if (r[p]) freeReplyObject(r[p]);
            continue;
        }
        if (r[p] && r[p]->type != REDIS_REPLY_ERROR) {
            rv = script_parse(r[p], NULL, &outs[p], hot, frozen, err, errlen);
        } else {
            if (r[p]) freeReplyObject(r[p]);
            rv = snapshot_read_part(t->cl, &t->parts[p], lua, from, to, &outs[p], hot, frozen, err, errlen);
        }
        if (rv != SNAP_OK) *failed = p;
    }
    free(r);
    free(sent);
    free(dead);
    return rv;
}
