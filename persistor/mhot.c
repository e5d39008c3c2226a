/*
 * mhot — the Redis side of `persistor migrate`; see mhot.h.
 */
#include "mhot.h"
#include "dynbuf.h"
#include "keys.h"
#include "log.h"
#include "money.h"
#include "pyvalue.h"
#include "signals.h"
#include "timeparse.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const char lua_persistor_migrate_plan[];
extern const char lua_persistor_migrate_hash[];
extern const char lua_persistor_migrate_clock[];
extern const char lua_persistor_migrate_through[];

static rscript plan_script = RSCRIPT_INIT("migrate_plan", lua_persistor_migrate_plan);
static rscript hash_script = RSCRIPT_INIT("migrate_hash", lua_persistor_migrate_hash);
static rscript clock_script = RSCRIPT_INIT("migrate_clock", lua_persistor_migrate_clock);
static rscript through_script = RSCRIPT_INIT("migrate_through", lua_persistor_migrate_through);

#define SCAN_COUNT "1000"
#define RANGE_COUNT 1000
/* Keys listed at once (two agg: hashes per day of years 0000-9999 is 7.3M). */
#define KEYS_MAX ((size_t)1 << 24)

/* ---- key lists ------------------------------------------------------------ */

static int keys_add(mhot_keys *k, const char *s, size_t len)
{
    if (dynbuf_reserve_array(&k->v, &k->cap, k->n + 1, sizeof *k->v, KEYS_MAX * sizeof *k->v)) return -1;
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    k->v[k->n++] = c;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sort and drop duplicates (SCAN may return a key twice). */
static void keys_sort(mhot_keys *k)
{
    if (k->n < 2) return;
    qsort(k->v, k->n, sizeof *k->v, cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < k->n; i++) {
        if (strcmp(k->v[i], k->v[w - 1]) == 0) free(k->v[i]);
        else k->v[w++] = k->v[i];
    }
    k->n = w;
}

void mhot_keys_free(mhot_keys *k)
{
    for (size_t i = 0; i < k->n; i++) free(k->v[i]);
    free(k->v);
    memset(k, 0, sizeof *k);
}

int mhot_keys_has(const mhot_keys *k, const char *key)
{
    return k->n && bsearch(&key, k->v, k->n, sizeof *k->v, cmp_str) != NULL;
}

void mhot_init(mhot *h, persistor *p, mreport *r)
{
    memset(h, 0, sizeof *h);
    h->p = p;
    h->r = r;
}

void mhot_free(mhot *h)
{
    mhot_keys_free(&h->plan);
    mhot_keys_free(&h->refused);
}

/* ---- helpers -------------------------------------------------------------- */

static int redis_failed(mhot *h, const char *what, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR) mreport_fail(h->r, "Redis refused %s: %s", what, r->str);
    else if (r) mreport_fail(h->r, "unexpected reply to %s (type %d)", what, r->type);
    else mreport_fail(h->r, "Redis unreachable during %s: %s", what, rconn_error(h->p->rc));
    return PST_EREDIS;
}

/* agg:{YYYY-MM-DD}:{deposit|withdrawal}: its day into day (TS_DAY_LEN + 1), or -1. */
static int daily_key(const char *key, size_t len, char *day)
{
    size_t plen = strlen(KEYS_AGG_PREFIX);
    int64_t d;
    if (len <= plen + TS_DAY_LEN + 1 || memcmp(key, KEYS_AGG_PREFIX, plen) != 0) return -1;
    const char *s = key + plen;
    if (ts_parse_day(s, TS_DAY_LEN, &d) != 0 || s[TS_DAY_LEN] != ':') return -1;
    const char *type = s + TS_DAY_LEN + 1;
    if (strcmp(type, txn_type_name(TXN_DEPOSIT)) != 0 && strcmp(type, txn_type_name(TXN_WITHDRAWAL)) != 0) return -1;
    memcpy(day, s, TS_DAY_LEN);
    day[TS_DAY_LEN] = '\0';
    return 0;
}

static int has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* Walk the keyspace once: the daily hashes into out (sorted), other agg:*
 * keys counted in *ignored, and whether a key only txagg writes exists. */
static int scan_keys(mhot *h, mhot_keys *out, int64_t *ignored, int *txagg_keys)
{
    char cursor[32] = "0";
    *ignored = 0;
    *txagg_keys = 0;
    do {
        redisReply *r = rconn_cmd(h->p->rc, "SCAN %s COUNT " SCAN_COUNT, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            int rv = redis_failed(h, "SCAN", r);
            freeReplyObject(r);
            return rv;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *ks = r->element[1];
        for (size_t i = 0; i < ks->elements; i++) {
            const redisReply *k = ks->element[i];
            if (k->type != REDIS_REPLY_STRING) continue;
            char day[TS_DAY_LEN + 1];
            if (daily_key(k->str, k->len, day) == 0) {
                if (keys_add(out, k->str, k->len)) {
                    freeReplyObject(r);
                    mreport_fail(h->r, "out of memory");
                    return PST_EREDIS;
                }
            } else if (has_prefix(k->str, k->len, KEYS_AGG_PREFIX)) {
                (*ignored)++;
            } else if (has_prefix(k->str, k->len, KEYS_CHECKPOINT_PREFIX) ||
                       has_prefix(k->str, k->len, KEYS_FROZEN_PREFIX) ||
                       has_prefix(k->str, k->len, KEYS_BATCH_PREFIX) || !strcmp(k->str, KEYS_PERSISTOR_FENCE) ||
                       !strcmp(k->str, KEYS_ARCHIVE_VERSION) || !strcmp(k->str, KEYS_ARCHIVE_SEQ) ||
                       !strcmp(k->str, KEYS_ARCHIVED_THROUGH) || !strcmp(k->str, KEYS_ARCHIVE_PENDING)) {
                *txagg_keys = 1;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    keys_sort(out);
    return PST_OK;
}

/* HGETALL key.  NULL after a failure (reported); a WRONGTYPE reply is
 * returned for the caller to refuse. */
static redisReply *hgetall(mhot *h, const char *key)
{
    redisReply *r = rconn_cmd(h->p->rc, "HGETALL %s", key);
    if (r && (r->type == REDIS_REPLY_ARRAY || rreply_is_error(r, "WRONGTYPE"))) return r;
    redis_failed(h, "HGETALL", r);
    freeReplyObject(r);
    return NULL;
}

/* In one MULTI: whether key is still planned, and its HGETALL (so a hash
 * another run converted meanwhile is never read as dollars).  The EXEC
 * reply, or NULL after a failure (reported). */
static redisReply *read_planned(mhot *h, const char *key)
{
    redisContext *c = rconn_ensure(h->p->rc) == 0 ? rconn_ctx(h->p->rc) : NULL;
    if (!c) {
        redis_failed(h, "MULTI", NULL);
        return NULL;
    }
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "SISMEMBER %s %s", KEYS_MIGRATION_HASHES, key);
    redisAppendCommand(c, "HGETALL %s", key);
    redisAppendCommand(c, "EXEC");
    redisReply *r = NULL;
    for (int i = 0; i < 4; i++) {
        void *one = NULL;
        if (redisGetReply(c, &one) != REDIS_OK) {
            freeReplyObject(r);
            rconn_drop(h->p->rc);
            redis_failed(h, "MULTI", NULL);
            return NULL;
        }
        if (i < 3) freeReplyObject(one);
        else r = one;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
        (r->element[1]->type == REDIS_REPLY_ARRAY || rreply_is_error(r->element[1], "WRONGTYPE")))
        return r;
    redis_failed(h, "MULTI", r);
    freeReplyObject(r);
    return NULL;
}

/* Leave key out of this run's sums. */
static void refuse_key(mhot *h, const char *key)
{
    if (mhot_keys_has(&h->refused, key)) return;
    keys_add(&h->refused, key, strlen(key));
    keys_sort(&h->refused);
}

/* Sum a hash that should hold integer cents (txagg's form) into sum; a
 * value that is not is refused (named) and the hash left out.  PST_OK. */
static int sum_cents_hash(mhot *h, const char *key, const redisReply *r, mreport_sum *sum)
{
    int64_t total = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        int64_t c;
        if (money_parse_cents(v->str, v->len, &c) != MONEY_OK || __builtin_add_overflow(total, c, &total)) {
            mreport_refuse(h->r, "Redis hash %s field %s = %s: not integer cents, and the hash is not in the "
                           "migration plan (did the Python service run again after the plan was made?)",
                           key, f->str, v->str);
            refuse_key(h, key);
            return PST_OK;
        }
    }
    mreport_add(sum, total);
    return PST_OK;
}

/* ---- the plan ------------------------------------------------------------- */

static int read_plan(mhot *h, int *exists)
{
    redisReply *r = rconn_cmd(h->p->rc, "HEXISTS %s planned", KEYS_MIGRATION);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        int rv = redis_failed(h, "HEXISTS " KEYS_MIGRATION, r);
        freeReplyObject(r);
        return rv;
    }
    *exists = h->plan_stored = r->integer == 1;
    freeReplyObject(r);
    if (!*exists) return PST_OK;
    r = rconn_cmd(h->p->rc, "SMEMBERS %s", KEYS_MIGRATION_HASHES);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        int rv = redis_failed(h, "SMEMBERS " KEYS_MIGRATION_HASHES, r);
        freeReplyObject(r);
        return rv;
    }
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && keys_add(&h->plan, r->element[i]->str, r->element[i]->len)) {
            freeReplyObject(r);
            mreport_fail(h->r, "out of memory");
            return PST_EREDIS;
        }
    freeReplyObject(r);
    keys_sort(&h->plan);
    return PST_OK;
}

static int make_plan(mhot *h, const mhot_keys *found)
{
    char now[TS_ISO_LEN + 1];
    ts_format_iso((int64_t)time(NULL), now);
    size_t argc = 1 + found->n;
    const char **argv = malloc((2 + argc) * sizeof *argv);
    if (!argv) {
        mreport_fail(h->r, "out of memory");
        return PST_EREDIS;
    }
    argv[0] = KEYS_MIGRATION;
    argv[1] = KEYS_MIGRATION_HASHES;
    argv[2] = now;
    for (size_t i = 0; i < found->n; i++) argv[3 + i] = found->v[i];
    redisReply *r = rscript_run(h->p->rc, &plan_script, 2, (int)(2 + argc), argv, NULL);
    free(argv);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        int rv = redis_failed(h, "the migration plan", r);
        freeReplyObject(r);
        return rv;
    }
    h->r->planned_now = r->integer == 1;
    freeReplyObject(r);
    return PST_OK;
}

int mhot_plan(mhot *h)
{
    int exists = 0, txagg_keys = 0, rv;
    int64_t ignored = 0;
    mhot_keys found = {0};
    if ((rv = read_plan(h, &exists)) != PST_OK) return rv;
    if ((rv = scan_keys(h, &found, &ignored, &txagg_keys)) != PST_OK) goto out;
    h->r->keys_ignored = ignored;
    if (!exists && txagg_keys) {
        mreport_refuse(h->r, "Redis already holds txagg's own state (archive or lease keys, import checkpoints) "
                             "and no migration plan: its agg: hashes are taken to be txagg's cents and none is "
                             "converted (restore the Python service's backup to migrate it)");
    } else if (!exists) {
        if (!h->r->check) {
            if ((rv = make_plan(h, &found)) != PST_OK) goto out;
            mhot_keys_free(&h->plan);
            if ((rv = read_plan(h, &exists)) != PST_OK) goto out; /* a concurrent run's plan wins */
        } else {
            for (size_t i = 0; i < found.n; i++) keys_add(&h->plan, found.v[i], strlen(found.v[i]));
            keys_sort(&h->plan);
        }
    }
    h->r->hashes_planned = (int64_t)h->plan.n;
    /* txagg's own hashes (outside the plan) count as they are */
    for (size_t i = 0; i < found.n; i++) {
        if (mhot_keys_has(&h->plan, found.v[i])) continue;
        redisReply *r = hgetall(h, found.v[i]);
        if (!r) {
            rv = PST_EREDIS;
            goto out;
        }
        if (r->type == REDIS_REPLY_ARRAY) {
            h->r->hashes_txagg++;
            sum_cents_hash(h, found.v[i], r, &h->r->hot_before);
        }
        freeReplyObject(r);
    }
    rv = PST_OK;
out:
    mhot_keys_free(&found);
    return rv;
}

/* ---- one hash ------------------------------------------------------------- */

int mhot_convert(mhot *h, const char *key)
{
    char day[TS_DAY_LEN + 1];
    if (daily_key(key, strlen(key), day) != 0) {
        mreport_refuse(h->r, "Redis key %s in the migration plan is not agg:{YYYY-MM-DD}:{deposit|withdrawal}", key);
        h->r->hashes_refused++;
        return PST_OK;
    }
    redisReply *both = read_planned(h, key);
    if (!both) return PST_EREDIS;
    const redisReply *r = both->element[1];
    if (r->type == REDIS_REPLY_ERROR) {
        mreport_refuse(h->r, "Redis key %s is not a hash", key);
        h->r->hashes_refused++;
        refuse_key(h, key);
        freeReplyObject(both);
        return PST_OK;
    }
    if (h->plan_stored && both->element[0]->integer == 0) { /* converted by another run since this one read the plan */
        h->r->hashes_elsewhere++;
        sum_cents_hash(h, key, r, &h->r->hot_before);
        freeReplyObject(both);
        return PST_OK;
    }
    size_t n = r->elements / 2;
    char (*cents)[24] = calloc(n ? n : 1, sizeof *cents);
    const char **argv = malloc((6 + 3 * n) * sizeof *argv);
    if (!cents || !argv) {
        free(cents);
        free(argv);
        freeReplyObject(both);
        mreport_fail(h->r, "out of memory");
        return PST_EREDIS;
    }
    int bad = 0;
    int64_t total = 0;
    char nbuf[24];
    snprintf(nbuf, sizeof nbuf, "%zu", n);
    argv[0] = key;
    argv[1] = KEYS_MIGRATION_HASHES;
    argv[2] = KEYS_TRACKED_DAYS;
    argv[3] = KEYS_HOT_VERSION;
    argv[4] = day;
    argv[5] = nbuf;
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = r->element[2 * i], *v = r->element[2 * i + 1];
        int64_t c = 0;
        int rc = pyvalue_text_cents(v->str, v->len, &c);
        if (!pyvalue_method_ok(f->str, f->len)) {
            mreport_refuse(h->r, "Redis hash %s field %s: not a payment method txagg accepts (lower-case "
                           "[a-z0-9_-]{1,32})", key, f->str);
            bad = 1;
        } else if (rc != PYVALUE_OK) {
            mreport_refuse(h->r, "Redis hash %s field %s = %s %s", key, f->str, v->str, pyvalue_strerror(rc));
            bad = 1;
        }
        if (!bad && __builtin_add_overflow(total, c, &total)) {
            mreport_refuse(h->r, "Redis hash %s: the sum of its amounts overflows int64 cents", key);
            bad = 1;
        }
        snprintf(cents[i], sizeof cents[i], "%lld", (long long)c);
        argv[6 + 3 * i] = f->str;
        argv[7 + 3 * i] = v->str;
        argv[8 + 3 * i] = cents[i];
    }
    int rv = PST_OK;
    if (bad) {
        h->r->hashes_refused++;
        refuse_key(h, key);
    } else if (h->r->check) {
        h->r->hashes_converted++;
        h->r->fields_converted += (int64_t)n;
        mreport_add(&h->r->hot_before, total);
    } else {
        redisReply *s = rscript_run(h->p->rc, &hash_script, 4, (int)(6 + 3 * n), argv, NULL);
        const char *res = s && s->type == REDIS_REPLY_STRING ? s->str : "";
        if (!strcmp(res, "ok")) {
            h->r->hashes_converted++;
            h->r->fields_converted += (int64_t)n;
            mreport_add(&h->r->hot_before, total);
        } else if (!strcmp(res, "done")) {
            h->r->hashes_elsewhere++;
            mreport_add(&h->r->hot_before, total);
        } else if (!strcmp(res, "gone")) {
            log_warn("planned hash vanished before its conversion", "key=%s", key);
        } else if (!strcmp(res, "changed")) {
            mreport_refuse(h->r, "Redis hash %s changed while it was being converted (is the Python service "
                           "stopped?); nothing of it written", key);
            h->r->hashes_refused++;
            refuse_key(h, key);
        } else {
            rv = redis_failed(h, "migrate_hash", s);
        }
        freeReplyObject(s);
    }
    free(cents);
    free(argv);
    freeReplyObject(both);
    return rv;
}

/* ---- the clock ------------------------------------------------------------ */

int mhot_clock(mhot *h)
{
    mreport *rep = h->r;
    redisReply *r = rconn_cmd(h->p->rc, "GET %s", KEYS_VIRTUAL_CLOCK);
    if (!r) return redis_failed(h, "GET " KEYS_VIRTUAL_CLOCK, r);
    if (r->type == REDIS_REPLY_NIL) {
        rep->clock_state = MREPORT_CLOCK_ABSENT;
        freeReplyObject(r);
        return PST_OK;
    }
    if (r->type != REDIS_REPLY_STRING) {
        rep->clock_state = MREPORT_CLOCK_REFUSED;
        snprintf(rep->clock_old, sizeof rep->clock_old, "(not a string)");
        mreport_refuse(rep, "Redis key %s is not a string", KEYS_VIRTUAL_CLOCK);
        freeReplyObject(r);
        return PST_OK;
    }
    snprintf(rep->clock_old, sizeof rep->clock_old, "%s", r->str);
    if (pyvalue_clock(r->str, r->len, rep->clock_new) != 0) {
        rep->clock_state = MREPORT_CLOCK_REFUSED;
        mreport_refuse(rep, "Redis key %s = %s is not a timestamp", KEYS_VIRTUAL_CLOCK, r->str);
        freeReplyObject(r);
        return PST_OK;
    }
    int same = strcmp(rep->clock_new, r->str) == 0;
    freeReplyObject(r);
    rep->clock_state = same ? MREPORT_CLOCK_KEPT : MREPORT_CLOCK_REWRITTEN;
    if (same || rep->check) return PST_OK;
    const char *argv[3] = {KEYS_VIRTUAL_CLOCK, rep->clock_old, rep->clock_new};
    r = rscript_run(h->p->rc, &clock_script, 1, 3, argv, NULL);
    int rv = PST_OK;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        if (r->integer == 0) rep->clock_state = MREPORT_CLOCK_KEPT;
    } else if (rreply_is_error(r, "CHANGED")) {
        rep->clock_state = MREPORT_CLOCK_REFUSED;
        mreport_refuse(rep, "Redis key %s changed while it was being rewritten", KEYS_VIRTUAL_CLOCK);
    } else {
        rv = redis_failed(h, "migrate_clock", r);
    }
    freeReplyObject(r);
    return rv;
}

/* ---- archived_through ----------------------------------------------------- */

int mhot_through(mhot *h)
{
    mreport *rep = h->r;
    if (rep->check) {
        redisReply *r = rconn_cmd(h->p->rc, "GET %s", KEYS_ARCHIVED_THROUGH);
        if (!r || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING)) {
            int rv = redis_failed(h, "GET " KEYS_ARCHIVED_THROUGH, r);
            freeReplyObject(r);
            return rv;
        }
        rep->through_raised = rep->newest_day[0] && (r->type == REDIS_REPLY_NIL || strcmp(r->str, rep->newest_day) < 0);
        freeReplyObject(r);
        return PST_OK;
    }
    const char *argv[4] = {KEYS_ARCHIVED_THROUGH, KEYS_ARCHIVE_VERSION, rep->newest_day,
                           rep->docs_converted > 0 ? "1" : "0"};
    redisReply *r = rscript_run(h->p->rc, &through_script, 2, 4, argv, NULL);
    int rv = PST_OK;
    if (r && r->type == REDIS_REPLY_INTEGER) rep->through_raised = r->integer == 1;
    else rv = redis_failed(h, "migrate_through", r);
    freeReplyObject(r);
    return rv;
}

/* ---- the stream ----------------------------------------------------------- */

/* Field/value array → which format the entry is in. */
static void classify(mreport *rep, const redisReply *fv)
{
    int amount = 0, cents = 0;
    for (size_t i = 0; fv && fv->type == REDIS_REPLY_ARRAY && i + 1 < fv->elements; i += 2) {
        const redisReply *f = fv->element[i];
        if (f->type != REDIS_REPLY_STRING) continue;
        if (!strcmp(f->str, "amount")) amount = 1;
        if (!strcmp(f->str, "cents")) cents = 1;
    }
    if (cents) rep->undelivered_txagg++;
    else if (amount) rep->undelivered_python++;
    else rep->undelivered_other++;
}

/* The group's last-delivered-id into last (or "" without the group). */
static int group_info(mhot *h, char *last, size_t n)
{
    last[0] = '\0';
    redisReply *r = rconn_cmd(h->p->rc, "XINFO GROUPS %s", KEYS_STREAM);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        int rv = redis_failed(h, "XINFO GROUPS", r);
        freeReplyObject(r);
        return rv;
    }
    for (size_t g = 0; g < r->elements; g++) {
        const redisReply *e = r->element[g];
        const char *name = NULL, *ldi = NULL;
        for (size_t i = 0; e->type == REDIS_REPLY_ARRAY && i + 1 < e->elements; i += 2) {
            const redisReply *k = e->element[i], *v = e->element[i + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
            if (!strcmp(k->str, "name")) name = v->str;
            if (!strcmp(k->str, "last-delivered-id")) ldi = v->str;
        }
        if (name && ldi && !strcmp(name, KEYS_GROUP)) {
            h->r->group_exists = 1;
            snprintf(last, n, "%s", ldi);
        }
    }
    freeReplyObject(r);
    return PST_OK;
}

static int pending_summary(mhot *h)
{
    redisReply *r = rconn_cmd(h->p->rc, "XPENDING %s %s", KEYS_STREAM, KEYS_GROUP);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element[0]->type != REDIS_REPLY_INTEGER) {
        int rv = redis_failed(h, "XPENDING", r);
        freeReplyObject(r);
        return rv;
    }
    h->r->pending = r->element[0]->integer;
    const redisReply *cs = r->element[3];
    for (size_t i = 0; cs->type == REDIS_REPLY_ARRAY && i < cs->elements; i++) {
        const redisReply *c = cs->element[i];
        if (c->type != REDIS_REPLY_ARRAY || c->elements != 2 || c->element[0]->type != REDIS_REPLY_STRING ||
            c->element[1]->type != REDIS_REPLY_STRING)
            continue;
        if (h->r->n_consumers < MREPORT_MAX_CONSUMERS) {
            snprintf(h->r->consumers[h->r->n_consumers].name, sizeof h->r->consumers[0].name, "%s",
                     c->element[0]->str);
            h->r->consumers[h->r->n_consumers].pending = strtoll(c->element[1]->str, NULL, 10);
            h->r->n_consumers++;
        }
    }
    freeReplyObject(r);
    return PST_OK;
}

int mhot_stream(mhot *h)
{
    mreport *rep = h->r;
    redisReply *r = rconn_cmd(h->p->rc, "TYPE %s", KEYS_STREAM);
    if (!r || r->type != REDIS_REPLY_STATUS) {
        int rv = redis_failed(h, "TYPE " KEYS_STREAM, r);
        freeReplyObject(r);
        return rv;
    }
    rep->stream_exists = !strcmp(r->str, "stream");
    if (!rep->stream_exists && strcmp(r->str, "none") != 0)
        mreport_refuse(rep, "Redis key %s is a %s, not a stream: txagg's aggregators cannot read it", KEYS_STREAM,
                       r->str);
    freeReplyObject(r);
    if (!rep->stream_exists) return PST_OK;
    r = rconn_cmd(h->p->rc, "XLEN %s", KEYS_STREAM);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        int rv = redis_failed(h, "XLEN", r);
        freeReplyObject(r);
        return rv;
    }
    rep->stream_len = r->integer;
    freeReplyObject(r);

    char last[64], start[80];
    int rv = group_info(h, last, sizeof last);
    if (rv == PST_OK && rep->group_exists) rv = pending_summary(h);
    if (rv != PST_OK) return rv;
    /* undelivered: every entry after the group's last-delivered-id */
    if (rep->group_exists) snprintf(start, sizeof start, "(%s", last);
    else snprintf(start, sizeof start, "-");
    for (;;) {
        r = rconn_cmd(h->p->rc, "XRANGE %s %s + COUNT %d", KEYS_STREAM, start, RANGE_COUNT);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            rv = redis_failed(h, "XRANGE", r);
            freeReplyObject(r);
            return rv;
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
            rep->undelivered++;
            classify(rep, e->element[1]);
            if (i == n - 1 && e->element[0]->type == REDIS_REPLY_STRING)
                snprintf(start, sizeof start, "(%s", e->element[0]->str);
        }
        freeReplyObject(r);
        if (n < RANGE_COUNT) break;
    }
    return PST_OK;
}

/* ---- totals after --------------------------------------------------------- */

int mhot_total(mhot *h)
{
    mhot_keys all = {0};
    int64_t ignored;
    int txagg_keys;
    int rv = scan_keys(h, &all, &ignored, &txagg_keys);
    for (size_t i = 0; rv == PST_OK && i < all.n; i++) {
        if (mhot_keys_has(&h->refused, all.v[i])) continue;
        redisReply *r = hgetall(h, all.v[i]);
        if (!r) {
            rv = PST_EREDIS;
            break;
        }
        if (r->type == REDIS_REPLY_ARRAY) sum_cents_hash(h, all.v[i], r, &h->r->hot_after);
        freeReplyObject(r);
    }
    mhot_keys_free(&all);
    return rv;
}
