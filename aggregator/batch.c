/*
 * batch — entry parsing and in-memory pre-aggregation; see batch.h.
 *
 * Invariants:
 *  - every entry added is in ids[] exactly once, whatever its fate (valid,
 *    malformed, gone), because the apply script acknowledges exactly ids[];
 *  - a valid entry's cents are in exactly one cell; a malformed entry is in
 *    dead[] and in no cell;
 *  - sums cannot overflow: an entry is at most MONEY_MAX_CENTS (1e11) and a
 *    batch at most 100,000 entries (BATCH_SIZE bound), so a cell stays below
 *    1e16 < INT64_MAX;
 *  - after batch_finish, ids[] is ascending (the script's ownership check
 *    compares them in order with XPENDING) and cells are grouped by
 *    (day, type) in sorted order, so the script's arguments are
 *    deterministic.
 */
#include "batch.h"
#include "money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_INIT_SLOTS 256

int batch_init(batch *b)
{
    memset(b, 0, sizeof *b);
    b->slots = calloc(BATCH_INIT_SLOTS, sizeof *b->slots);
    if (!b->slots) return -1;
    b->cap_slots = BATCH_INIT_SLOTS;
    b->max_epoch = -1;
    return 0;
}

void batch_free(batch *b)
{
    free(b->ids);
    free(b->idlens);
    free(b->cells);
    free(b->slots);
    free(b->groups);
    free(b->dead);
    free(b->text);
    memset(b, 0, sizeof *b);
}

void batch_reset(batch *b)
{
    b->n_ids = b->n_valid = b->n_malformed = b->n_gone = 0;
    b->max_epoch = -1;
    b->unsorted = 0;
    b->last_ms = b->last_seq = 0;
    if (b->n_cells) memset(b->slots, 0, b->cap_slots * sizeof *b->slots);
    b->n_cells = 0;
    b->n_groups = b->n_days = 0;
    b->text_len = 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

int batch_id_parse(const char *s, size_t len, uint64_t *ms, uint64_t *seq)
{
    uint64_t v[2] = {0, 0};
    int part = 0;
    size_t digits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '-' && part == 0 && digits) {
            part = 1;
            digits = 0;
            continue;
        }
        if (c < '0' || c > '9') return -1;
        if (v[part] > (UINT64_MAX - (uint64_t)(c - '0')) / 10) return -1;
        v[part] = v[part] * 10 + (uint64_t)(c - '0');
        digits++;
    }
    if (part != 1 || !digits) return -1;
    *ms = v[0];
    *seq = v[1];
    return 0;
}

/* ---- entry parsing ------------------------------------------------------- */

enum { F_TS, F_TYPE, F_METHOD, F_CENTS, F_N };
static const char *const field_names[F_N] = {"ts", "type", "method", "cents"};

static int field_index(const char *s, size_t len)
{
    for (int f = 0; f < F_N; f++)
        if (strlen(field_names[f]) == len && memcmp(field_names[f], s, len) == 0) return f;
    return -1;
}

int batch_parse_entry(const char *const *fv, const size_t *fl, size_t nfv, batch_txn *out, char *detail,
                      size_t detail_len)
{
    const char *val[F_N] = {0};
    size_t vlen[F_N] = {0};
    if (nfv % 2) {
        snprintf(detail, detail_len, "odd number of field strings");
        return -1;
    }
    for (size_t i = 0; i < nfv; i += 2) {
        int f = field_index(fv[i], fl[i]);
        if (f < 0) continue; /* src and any extra field are informational */
        if (val[f]) {
            snprintf(detail, detail_len, "%s: field given twice", field_names[f]);
            return -1;
        }
        val[f] = fv[i + 1];
        vlen[f] = fl[i + 1];
    }
    for (int f = 0; f < F_N; f++) {
        if (!val[f]) {
            snprintf(detail, detail_len, "%s: missing", field_names[f]);
            return -1;
        }
    }
    if (ts_parse(val[F_TS], vlen[F_TS], &out->epoch) != 0) {
        snprintf(detail, detail_len, "ts: not a UTC ISO timestamp");
        return -1;
    }
    out->day = ts_day_of(out->epoch);
    if (out->day >= ts_days_from_civil(10000, 1, 1)) { /* keep the ISO form 20 characters wide */
        snprintf(detail, detail_len, "ts: after year 9999");
        return -1;
    }
    out->type = txn_type_parse(val[F_TYPE], vlen[F_TYPE]);
    if (out->type < 0) {
        snprintf(detail, detail_len, "type: not deposit or withdrawal");
        return -1;
    }
    out->mlen = txn_method_normalize(val[F_METHOD], vlen[F_METHOD], out->method);
    if (out->mlen < 0) {
        snprintf(detail, detail_len, "method: not [a-z0-9_-]{1,%d}", TXN_METHOD_MAX);
        return -1;
    }
    const char *c = val[F_CENTS];
    size_t clen = vlen[F_CENTS];
    int digits_only = clen > 0;
    for (size_t i = 0; i < clen; i++)
        if (c[i] < '0' || c[i] > '9') digits_only = 0;
    if (!digits_only || money_parse_cents(c, clen, &out->cents) != MONEY_OK || out->cents < MONEY_MIN_CENTS ||
        out->cents > MONEY_MAX_CENTS) {
        snprintf(detail, detail_len, "cents: not an integer %lld..%lld", (long long)MONEY_MIN_CENTS,
                 (long long)MONEY_MAX_CENTS);
        return -1;
    }
    return 0;
}

/* ---- pre-aggregation ----------------------------------------------------- */

static uint32_t cell_hash(int64_t day, int type, const char *m, int mlen)
{
    uint32_t h = 2166136261u;
    uint64_t d = (uint64_t)day;
    for (int i = 0; i < 8; i++) h = (h ^ (uint8_t)(d >> (8 * i))) * 16777619u;
    h = (h ^ (uint8_t)type) * 16777619u;
    for (int i = 0; i < mlen; i++) h = (h ^ (uint8_t)m[i]) * 16777619u;
    return h;
}

static int rehash(batch *b, size_t cap)
{
    uint32_t *s = calloc(cap, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < b->n_cells; i++) {
        const batch_cell *c = &b->cells[i];
        size_t j = cell_hash(c->day, c->type, c->method, c->mlen) & (cap - 1);
        while (s[j]) j = (j + 1) & (cap - 1);
        s[j] = (uint32_t)(i + 1);
    }
    free(b->slots);
    b->slots = s;
    b->cap_slots = cap;
    return 0;
}

static int add_cell(batch *b, const batch_txn *t)
{
    if ((b->n_cells + 1) * 2 > b->cap_slots && rehash(b, b->cap_slots * 2)) return -1;
    size_t mask = b->cap_slots - 1;
    size_t j = cell_hash(t->day, t->type, t->method, t->mlen) & mask;
    for (; b->slots[j]; j = (j + 1) & mask) {
        batch_cell *c = &b->cells[b->slots[j] - 1];
        if (c->day == t->day && c->type == t->type && c->mlen == t->mlen &&
            memcmp(c->method, t->method, (size_t)t->mlen) == 0) {
            c->cents += t->cents;
            return 0;
        }
    }
    if (grow((void **)&b->cells, &b->cap_cells, b->n_cells + 1, sizeof *b->cells)) return -1;
    batch_cell *c = &b->cells[b->n_cells++];
    c->day = t->day;
    c->type = t->type;
    c->mlen = t->mlen;
    memcpy(c->method, t->method, (size_t)t->mlen + 1);
    c->cents = t->cents;
    b->slots[j] = (uint32_t)b->n_cells;
    return 0;
}

static int text_put(batch *b, const char *s, size_t n)
{
    if (grow((void **)&b->text, &b->text_cap, b->text_len + n + 1, 1)) return -1;
    memcpy(b->text + b->text_len, s, n);
    b->text_len += n;
    b->text[b->text_len] = '\0';
    return 0;
}

/* "name=value name=value" of an entry, cut at BATCH_RAW_MAX bytes. */
static int add_dead(batch *b, const char *id, size_t idlen, const char *const *fv, const size_t *fl, size_t nfv,
                    const char *detail)
{
    if (grow((void **)&b->dead, &b->n_dead_cap, b->n_malformed + 1, sizeof *b->dead)) return -1;
    batch_dead *d = &b->dead[b->n_malformed];
    d->id = id;
    d->idlen = idlen;
    d->raw_off = b->text_len;
    if (text_put(b, "", 0)) return -1; /* the raw text is NUL-terminated even when empty */
    size_t budget = BATCH_RAW_MAX;
    for (size_t i = 0; i < nfv && budget; i++) {
        const char *sep = i == 0 ? "" : (i % 2 ? "=" : " ");
        size_t n = fl[i] < budget ? fl[i] : budget;
        if (text_put(b, sep, strlen(sep)) || text_put(b, fv[i], n)) return -1;
        budget -= n;
    }
    d->raw_len = b->text_len - d->raw_off;
    b->text_len++; /* step over the raw text's NUL */
    d->detail_off = b->text_len;
    if (text_put(b, detail, strlen(detail))) return -1;
    d->detail_len = b->text_len - d->detail_off;
    b->text_len++;
    b->n_malformed++;
    return 0;
}

int batch_add(batch *b, const char *id, size_t idlen, const char *const *fv, const size_t *fl, size_t nfv)
{
    uint64_t ms, seq;
    if (batch_id_parse(id, idlen, &ms, &seq)) return -1;
    if (b->n_ids && (ms < b->last_ms || (ms == b->last_ms && seq <= b->last_seq))) b->unsorted = 1;
    b->last_ms = ms;
    b->last_seq = seq;
    if (b->n_ids == b->cap_ids) {
        size_t cap = b->cap_ids ? b->cap_ids * 2 : 1024;
        const char **ids = realloc(b->ids, cap * sizeof *ids);
        if (!ids) return -1;
        b->ids = ids;
        size_t *lens = realloc(b->idlens, cap * sizeof *lens);
        if (!lens) return -1;
        b->idlens = lens;
        b->cap_ids = cap;
    }
    b->ids[b->n_ids] = id;
    b->idlens[b->n_ids] = idlen;
    b->n_ids++;

    if (!fv) {
        b->n_gone++;
        return 0;
    }
    batch_txn t;
    char detail[96];
    if (batch_parse_entry(fv, fl, nfv, &t, detail, sizeof detail) != 0)
        return add_dead(b, id, idlen, fv, fl, nfv, detail);
    if (add_cell(b, &t)) return -1;
    if (t.epoch > b->max_epoch) b->max_epoch = t.epoch;
    b->n_valid++;
    return 0;
}

static int cell_cmp(const void *a, const void *b)
{
    const batch_cell *x = a, *y = b;
    if (x->day != y->day) return x->day < y->day ? -1 : 1;
    if (x->type != y->type) return x->type < y->type ? -1 : 1;
    return strcmp(x->method, y->method);
}

/* Ids are compared numerically (ms, then seq); each parsed once more here,
 * only on the rare unsorted path. */
typedef struct id_ref {
    uint64_t ms, seq;
    const char *id;
    size_t len;
} id_ref;

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    if (x->ms != y->ms) return x->ms < y->ms ? -1 : 1;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return 0;
}

static int sort_ids(batch *b)
{
    id_ref *r = malloc(b->n_ids * sizeof *r);
    if (!r) return -1;
    for (size_t i = 0; i < b->n_ids; i++) {
        batch_id_parse(b->ids[i], b->idlens[i], &r[i].ms, &r[i].seq);
        r[i].id = b->ids[i];
        r[i].len = b->idlens[i];
    }
    qsort(r, b->n_ids, sizeof *r, id_ref_cmp);
    for (size_t i = 0; i < b->n_ids; i++) {
        b->ids[i] = r[i].id;
        b->idlens[i] = r[i].len;
    }
    free(r);
    return 0;
}

int batch_finish(batch *b)
{
    if (b->unsorted && sort_ids(b)) return -1;
    b->unsorted = 0;
    if (b->n_cells > 1) qsort(b->cells, b->n_cells, sizeof *b->cells, cell_cmp);
    /* the hash slots point at pre-sort positions: the batch takes no more adds */
    b->n_groups = b->n_days = 0;
    for (size_t i = 0; i < b->n_cells; i++) {
        const batch_cell *c = &b->cells[i];
        batch_group *g = b->n_groups ? &b->groups[b->n_groups - 1] : NULL;
        if (g && g->day == c->day && g->type == c->type) {
            g->n++;
            continue;
        }
        if (!g || g->day != c->day) b->n_days++;
        if (grow((void **)&b->groups, &b->cap_groups, b->n_groups + 1, sizeof *b->groups)) {
            b->n_groups = 0;
            return -1;
        }
        g = &b->groups[b->n_groups++];
        g->day = c->day;
        g->type = c->type;
        ts_format_day(c->day, g->daystr);
        g->first = i;
        g->n = 1;
    }
    return 0;
}

void batch_max_ts(const batch *b, char *buf)
{
    if (b->max_epoch < 0) buf[0] = '\0';
    else ts_format_iso(b->max_epoch, buf);
}
