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
#include "dynbuf.h"
#include "money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_INIT_SLOTS 256
/* The dead letters' text: at most BATCH_RAW_MAX bytes of raw text and a
 * short detail per entry. */
#define TEXT_MAX ((size_t)BATCH_ENTRIES_MAX * (BATCH_RAW_MAX + 256))

int batch_init(batch *b)
{
    memset(b, 0, sizeof *b);
    b->slots = calloc(BATCH_INIT_SLOTS, sizeof *b->slots);
    if (!b->slots) return -1;
    b->cap_slots = BATCH_INIT_SLOTS;
    b->max_epoch = -1;
    dynbuf_init(&b->text, TEXT_MAX);
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
    dynbuf_free(&b->text);
    memset(b, 0, sizeof *b);
}

void batch_reset(batch *b)
{
    b->n_ids = b->n_valid = b->n_malformed = b->n_refused = b->n_gone = 0;
    b->max_epoch = -1;
    b->unsorted = 0;
    b->last_ms = b->last_seq = 0;
    if (b->n_cells) memset(b->slots, 0, b->cap_slots * sizeof *b->slots);
    b->n_cells = 0;
    b->n_groups = b->n_days = 0;
    dynbuf_reset(&b->text);
}

/* Room for need elements of elem bytes in *arrp (a T ** of per-entry data). */
static int grow(void *arrp, size_t *cap, size_t need, size_t elem)
{
    return dynbuf_reserve_array(arrp, cap, need, elem, (size_t)BATCH_ENTRIES_MAX * elem) ? -1 : 0;
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

/*
 * Three entry formats are read (docs/ARCHITECTURE.md "The stream entry"), the
 * current one first, so the common path pays for nothing else:
 *   - current: one field TXN_ENTRY_FIELD (common/txn.h),
 *     "<ts> <type> <method> <amount> <src>";
 *   - previous: fields ts, type, method, cents (an integer), src — what
 *     importers before the one-field entry wrote; a rolling upgrade drains it;
 *   - the Python service's: fields timestamp, type, payment_method, amount,
 *     sleep_ms — left in the stream at the switch-over (see below).
 * All are held to the same rules; src and sleep_ms are informational.
 */

/* The previous format's fields. */
enum { F_TS, F_TYPE, F_METHOD, F_CENTS, F_N };
static const char *const field_names[F_N] = {"ts", "type", "method", "cents"};

/* Find each of names[0..n) once among the entry's fields; others are
 * informational (src, sleep_ms…).  0, or -1 with the reason in detail. */
static int collect_fields(const char *const *fv, const size_t *fl, size_t nfv, const char *const *names, int n,
                          const char **val, size_t *vlen, char *detail, size_t detail_len)
{
    if (nfv % 2) {
        snprintf(detail, detail_len, "odd number of field strings");
        return -1;
    }
    for (int f = 0; f < n; f++) val[f] = NULL;
    for (size_t i = 0; i < nfv; i += 2) {
        int f = 0;
        while (f < n && !(strlen(names[f]) == fl[i] && memcmp(names[f], fv[i], fl[i]) == 0)) f++;
        if (f == n) continue;
        if (val[f]) {
            snprintf(detail, detail_len, "%s: field given twice", names[f]);
            return -1;
        }
        val[f] = fv[i + 1];
        vlen[f] = fl[i + 1];
    }
    for (int f = 0; f < n; f++) {
        if (!val[f]) {
            snprintf(detail, detail_len, "%s: missing", names[f]);
            return -1;
        }
    }
    return 0;
}

/* Timestamp, type and method by the input rules (timeparse, txn), in that
 * order; names[] are how the entry calls them (for the reason). */
static int parse_when_what(const char *const *val, const size_t *vlen, const char *const *names, batch_txn *out,
                           char *detail, size_t detail_len)
{
    if (ts_parse(val[0], vlen[0], &out->epoch) != 0) {
        snprintf(detail, detail_len, "%s: not a UTC ISO timestamp", names[0]);
        return -1;
    }
    out->day = ts_day_of(out->epoch);
    if (out->day >= ts_days_from_civil(10000, 1, 1)) { /* keep the ISO form 20 characters wide */
        snprintf(detail, detail_len, "%s: after year 9999", names[0]);
        return -1;
    }
    out->type = txn_type_parse(val[1], vlen[1]);
    if (out->type < 0) {
        snprintf(detail, detail_len, "%s: not deposit or withdrawal", names[1]);
        return -1;
    }
    out->mlen = txn_method_normalize(val[2], vlen[2], out->method);
    if (out->mlen < 0) {
        snprintf(detail, detail_len, "%s: not [a-z0-9_-]{1,%d}", names[2], TXN_METHOD_MAX);
        return -1;
    }
    return 0;
}

/* An amount by the CSV rule (money_parse: 0.01 ... 1e9, at most two
 * decimals, never through a float). */
static int parse_amount(const char *s, size_t len, const char *name, batch_txn *out, char *detail, size_t detail_len)
{
    if (money_parse(s, len, &out->cents) == MONEY_OK) return 0;
    snprintf(detail, detail_len, "%s: not digits[.d or .dd] in 0.01..1000000000.00", name);
    return -1;
}

/* The current entry: one field, five words. */
static int parse_current_entry(const char *v, size_t len, batch_txn *out, char *detail, size_t detail_len)
{
    static const char *const names[4] = {"ts", "type", "method", "amount"};
    txn_entry_words w;
    if (txn_entry_split(v, len, &w) != 0) {
        snprintf(detail, detail_len, TXN_ENTRY_FIELD ": not \"<ts> <type> <method> <amount> <src>\"");
        return -1;
    }
    if (parse_when_what(w.w, w.len, names, out, detail, detail_len)) return -1;
    return parse_amount(w.w[3], w.len[3], "amount", out, detail, detail_len);
}

/* The previous entry: the amount as integer cents. */
static int parse_previous_entry(const char *const *val, const size_t *vlen, batch_txn *out, char *detail,
                                size_t detail_len)
{
    if (parse_when_what(val, vlen, field_names, out, detail, detail_len)) return -1;
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

/*
 * An entry of the Python service (txagg's predecessor), left in the stream
 * undelivered or pending at the switch-over: fields timestamp, type,
 * payment_method, amount (dollars, at most two decimals) and sleep_ms
 * (ignored: pacing happened at publish time).  Read by the CSV input rules —
 * the amount exactly as money_parse reads a CSV amount — so it counts exactly
 * like the row it came from; what the rules reject is malformed.  The bound on
 * timestamps after the import's wall clock (MAX_FUTURE_DAYS) is the
 * importer's and is not applied here.  Self-contained on purpose: txagg's own
 * entry format may change, this one must keep being read as it is.
 */
enum { PY_TS, PY_TYPE, PY_METHOD, PY_AMOUNT, PY_N };
static const char *const py_names[PY_N] = {"timestamp", "type", "payment_method", "amount"};

static int is_python_entry(const char *const *fv, const size_t *fl, size_t nfv)
{
    int own = 0, py = 0;
    for (size_t i = 0; i + 1 < nfv; i += 2) {
        for (int f = 0; f < F_N; f++)
            if (strlen(field_names[f]) == fl[i] && memcmp(field_names[f], fv[i], fl[i]) == 0 && f != F_TYPE) own = 1;
        for (int f = 0; f < PY_N; f++)
            if (strlen(py_names[f]) == fl[i] && memcmp(py_names[f], fv[i], fl[i]) == 0 && f != PY_TYPE) py = 1;
    }
    return py && !own;
}

static int parse_python_entry(const char *const *fv, const size_t *fl, size_t nfv, batch_txn *out, char *detail,
                              size_t detail_len)
{
    const char *val[PY_N];
    size_t vlen[PY_N];
    if (collect_fields(fv, fl, nfv, py_names, PY_N, val, vlen, detail, detail_len) ||
        parse_when_what(val, vlen, py_names, out, detail, detail_len))
        return -1;
    return parse_amount(val[PY_AMOUNT], vlen[PY_AMOUNT], "amount", out, detail, detail_len);
}

int batch_parse_entry(const char *const *fv, const size_t *fl, size_t nfv, batch_txn *out, char *detail,
                      size_t detail_len)
{
    if (nfv == 2 && fl[0] == sizeof TXN_ENTRY_FIELD - 1 && !memcmp(fv[0], TXN_ENTRY_FIELD, fl[0]))
        return parse_current_entry(fv[1], fl[1], out, detail, detail_len);
    const char *val[F_N];
    size_t vlen[F_N];
    if (collect_fields(fv, fl, nfv, field_names, F_N, val, vlen, detail, detail_len)) {
        if (is_python_entry(fv, fl, nfv)) return parse_python_entry(fv, fl, nfv, out, detail, detail_len);
        return -1;
    }
    return parse_previous_entry(val, vlen, out, detail, detail_len);
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
    if (grow(&b->cells, &b->cap_cells, b->n_cells + 1, sizeof *b->cells)) return -1;
    batch_cell *c = &b->cells[b->n_cells++];
    c->day = t->day;
    c->type = t->type;
    c->mlen = t->mlen;
    memcpy(c->method, t->method, (size_t)t->mlen + 1);
    c->cents = t->cents;
    b->slots[j] = (uint32_t)b->n_cells;
    return 0;
}

/* "name=value name=value" of an entry, cut at BATCH_RAW_MAX bytes. */
static int add_dead(batch *b, const char *reason, const char *id, size_t idlen, const char *const *fv,
                    const size_t *fl, size_t nfv, const char *detail)
{
    if (grow(&b->dead, &b->n_dead_cap, batch_n_dead(b) + 1, sizeof *b->dead)) return -1;
    batch_dead *d = &b->dead[batch_n_dead(b)];
    d->reason = reason;
    d->id = id;
    d->idlen = idlen;
    dynbuf *t = &b->text;
    d->raw_off = dynbuf_len(t);
    if (dynbuf_add(t, "", 0)) return -1; /* the raw text is NUL-terminated even when empty */
    size_t budget = BATCH_RAW_MAX;
    for (size_t i = 0; i < nfv && budget; i++) {
        const char *sep = i == 0 ? "" : (i % 2 ? "=" : " ");
        size_t n = fl[i] < budget ? fl[i] : budget;
        if (dynbuf_add(t, sep, strlen(sep)) || dynbuf_add(t, fv[i], n)) return -1;
        budget -= n;
    }
    d->raw_len = dynbuf_len(t) - d->raw_off;
    if (dynbuf_add(t, "", 1)) return -1; /* the raw text's NUL, kept */
    d->detail_off = dynbuf_len(t);
    if (dynbuf_add(t, detail, strlen(detail) + 1)) return -1; /* with its NUL */
    d->detail_len = dynbuf_len(t) - 1 - d->detail_off;
    if (!strcmp(reason, BATCH_REASON_REFUSED)) b->n_refused++;
    else b->n_malformed++;
    return 0;
}

/* Record the id (every entry added is acknowledged with the batch). */
static int add_id(batch *b, const char *id, size_t idlen)
{
    uint64_t ms, seq;
    if (batch_id_parse(id, idlen, &ms, &seq)) return -1;
    if (b->n_ids && (ms < b->last_ms || (ms == b->last_ms && seq <= b->last_seq))) b->unsorted = 1;
    b->last_ms = ms;
    b->last_seq = seq;
    if (b->n_ids == b->cap_ids) { /* two parallel arrays, one capacity: the smaller */
        size_t ci = b->cap_ids, cl = b->cap_ids;
        if (grow(&b->ids, &ci, b->n_ids + 1, sizeof *b->ids) || grow(&b->idlens, &cl, b->n_ids + 1, sizeof *b->idlens))
            return -1;
        b->cap_ids = ci < cl ? ci : cl;
    }
    b->ids[b->n_ids] = id;
    b->idlens[b->n_ids] = idlen;
    b->n_ids++;
    return 0;
}

int batch_add(batch *b, const char *id, size_t idlen, const char *const *fv, const size_t *fl, size_t nfv)
{
    if (add_id(b, id, idlen)) return -1;
    if (!fv) {
        b->n_gone++;
        return 0;
    }
    batch_txn t;
    char detail[96];
    if (batch_parse_entry(fv, fl, nfv, &t, detail, sizeof detail) != 0)
        return add_dead(b, BATCH_REASON_MALFORMED, id, idlen, fv, fl, nfv, detail);
    if (add_cell(b, &t)) return -1;
    if (t.epoch > b->max_epoch) b->max_epoch = t.epoch;
    b->n_valid++;
    return 0;
}

int batch_add_refused(batch *b, const char *id, size_t idlen, const char *const *fv, const size_t *fl, size_t nfv,
                      const char *detail)
{
    if (add_id(b, id, idlen)) return -1;
    return add_dead(b, BATCH_REASON_REFUSED, id, idlen, fv, fl, fv ? nfv : 0, detail);
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
        if (grow(&b->groups, &b->cap_groups, b->n_groups + 1, sizeof *b->groups)) {
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
