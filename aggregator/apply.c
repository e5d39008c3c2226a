/*
 * apply — arguments and reply of apply.lua; see apply.h and the script's own
 * header for the argument layout.
 *
 * Invariant: the arguments describe the batch exactly — every id once, in
 * ascending order; one block per agg:{day}:{type} key (which is declared in
 * KEYS); every cell's sum; every distinct day; every dead letter — and the
 * counts in ARGV[4..6] match the lists, which the script checks again before
 * it writes anything.
 */
#include "apply.h"
#include "dynbuf.h"
#include "keys.h"
#include "txn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char lua_aggregator_apply[];
static rscript apply_script = RSCRIPT_INIT("apply", lua_aggregator_apply);

#define NUM_MAX 24 /* a formatted integer with its NUL */
#define AGG_KEY_MAX KEYS_NAME_MAX

void apply_args_init(apply_args *a) { memset(a, 0, sizeof *a); }

void apply_args_free(apply_args *a)
{
    free(a->v);
    free(a->l);
    free(a->buf);
    memset(a, 0, sizeof *a);
}

/* Caps: at most 8 arguments per entry of a batch (an id, a cell's method
 * and sum, its hash's key and count, a day, 4 per dead letter) plus the
 * fixed ones, and under 128 bytes of formatted text per entry. */
#define ARGC_MAX ((size_t)BATCH_ENTRIES_MAX * 8 + 16)
#define BUF_MAX ((size_t)BATCH_ENTRIES_MAX * 128)

static int reserve(apply_args *a, size_t argc, size_t bufsz)
{
    if (argc > a->cap) { /* two parallel arrays, one capacity: the smaller */
        size_t cv = a->cap, cl = a->cap;
        if (dynbuf_reserve_array(&a->v, &cv, argc, sizeof *a->v, ARGC_MAX * sizeof *a->v) ||
            dynbuf_reserve_array(&a->l, &cl, argc, sizeof *a->l, ARGC_MAX * sizeof *a->l))
            return -1;
        a->cap = cv < cl ? cv : cl;
    }
    return dynbuf_reserve_array(&a->buf, &a->bufcap, bufsz, 1, BUF_MAX) ? -1 : 0;
}

static void put(apply_args *a, const char *s, size_t len)
{
    a->v[a->argc] = s;
    a->l[a->argc] = len;
    a->argc++;
}

/* Format v into the buffer at *off and add it as an argument. */
static void put_num(apply_args *a, size_t *off, long long v)
{
    char *s = a->buf + *off;
    int n = snprintf(s, NUM_MAX, "%lld", v);
    put(a, s, (size_t)n);
    *off += (size_t)n + 1;
}

#ifdef TXAGG_TESTING
int apply_build(apply_args *a, const batch *b, const char *group, const char *consumer, int own)
{
    return apply_build_part(a, b, NULL, group, consumer, own);
}
#endif

/* The partition's fixed name, or today's untagged one. */
#define PART_KEY(part, field, base) ((part) ? (part)->field : (base))

int apply_build_part(apply_args *a, const batch *b, const keys_part *part, const char *group, const char *consumer,
                     int own)
{
    if (b->n_ids == 0) return -1;
    size_t argc = 5 + b->n_groups + 7 + (own == APPLY_OWN_ALL ? 0 : b->n_ids) + b->n_groups + 2 * b->n_cells + b->n_days + 4 * batch_n_dead(b);
    size_t bufsz = TS_ISO_LEN + 1 + NUM_MAX * (4 + b->n_groups + b->n_cells) + AGG_KEY_MAX * b->n_groups;
    if (reserve(a, argc, bufsz)) return -1;
    a->argc = 0;
    size_t off = 0;

    const char *fixed[5] = {PART_KEY(part, stream, KEYS_STREAM), PART_KEY(part, tracked, KEYS_TRACKED_DAYS),
                            PART_KEY(part, clock, KEYS_VIRTUAL_CLOCK), PART_KEY(part, rejected, KEYS_REJECTED),
                            PART_KEY(part, hot_version, KEYS_HOT_VERSION)};
    for (int k = 0; k < 5; k++) put(a, fixed[k], strlen(fixed[k]));
    for (size_t g = 0; g < b->n_groups; g++) {
        char *k = a->buf + off;
        size_t n = keys_agg(k, AGG_KEY_MAX, part, b->groups[g].daystr, txn_type_name(b->groups[g].type));
        if (n == 0) return -1;
        put(a, k, n);
        off += n + 1;
    }
    a->nkeys = (int)a->argc;

    put(a, group, strlen(group));
    put(a, consumer, strlen(consumer));
    char *ts = a->buf + off;
    batch_max_ts(b, ts);
    put(a, ts, strlen(ts));
    off += TS_ISO_LEN + 1;
    put_num(a, &off, (long long)b->n_ids);
    put_num(a, &off, (long long)b->n_days);
    put_num(a, &off, (long long)batch_n_dead(b));
    if (own == APPLY_OWN_ALL) put(a, "all", 3);
    else put(a, "ids", 3);
    if (own != APPLY_OWN_ALL)
        for (size_t i = 0; i < b->n_ids; i++) put(a, b->ids[i], b->idlens[i]);
    for (size_t g = 0; g < b->n_groups; g++) {
        const batch_group *gr = &b->groups[g];
        put_num(a, &off, (long long)gr->n);
        for (size_t c = gr->first; c < gr->first + gr->n; c++) {
            put(a, b->cells[c].method, (size_t)b->cells[c].mlen);
            put_num(a, &off, (long long)b->cells[c].cents);
        }
    }
    for (size_t g = 0; g < b->n_groups; g++)
        if (g == 0 || b->groups[g].day != b->groups[g - 1].day) put(a, b->groups[g].daystr, TS_DAY_LEN);
    for (size_t d = 0; d < batch_n_dead(b); d++) {
        const batch_dead *dl = &b->dead[d];
        put(a, dl->reason, strlen(dl->reason));
        put(a, dl->id, dl->idlen);
        put(a, batch_dead_raw(b, dl), dl->raw_len);
        put(a, batch_dead_detail(b, dl), dl->detail_len);
    }
    return a->argc == argc ? 0 : -1;
}

int apply_load(rconn *rc) { return rscript_load(rc, &apply_script); }

int apply_send(rconn *rc, const apply_args *a)
{
    return rscript_append(rc, &apply_script, a->nkeys, (int)a->argc, a->v, a->l);
}

void apply_parse_reply(const redisReply *r, apply_result *res)
{
    res->count = 0;
    res->err[0] = '\0';
    rcluster_kind k = rcluster_classify(r, &res->rd);
    if (!r) {
        res->status = APPLY_EIO;
        snprintf(res->err, sizeof res->err, "connection lost");
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(res->err, sizeof res->err, "%s", r->str);
        if (k != RCLUSTER_REPLY && k != RCLUSTER_LOST) res->status = APPLY_REDIRECT;
        else if (rreply_is_error(r, "NOSCRIPT")) res->status = APPLY_NOSCRIPT;
        else if (rreply_is_error(r, "REFUSED ")) res->status = APPLY_REFUSED;
        /* XPENDING on a missing key or group, inside the script */
        else if (strstr(r->str, "NOGROUP") || strstr(r->str, "no such key")) res->status = APPLY_NOGROUP;
        else res->status = APPLY_EREPLY;
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
        res->count = r->element[1]->integer;
        if (!strcmp(r->element[0]->str, "ok")) {
            res->status = APPLY_OK;
            return;
        }
        if (!strcmp(r->element[0]->str, "stale")) {
            res->status = APPLY_STALE;
            return;
        }
    }
    res->status = APPLY_EREPLY;
    snprintf(res->err, sizeof res->err, "unexpected reply of the apply script (type %d)", r->type);
}

void apply_run(rconn *rc, const apply_args *a, apply_result *res)
{
    redisReply *r = rscript_run(rc, &apply_script, a->nkeys, (int)a->argc, a->v, a->l);
    apply_parse_reply(r, res);
    if (r) freeReplyObject(r);
}
