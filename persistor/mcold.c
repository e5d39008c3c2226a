/*
 * mcold — the MongoDB side of `persistor migrate`; see mcold.h.
 */
#include "mcold.h"
#include "dynbuf.h"
#include "mongo.h"
#include "pyvalue.h"
#include "timeparse.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_LEN 160
/* Day documents held at once: one per day of years 0000-9999 is 3.65M. */
#define DOCS_MAX 4000000

static int mongo_failed(persistor *p, mreport *r, const char *what, const bson_error_t *e)
{
    mongo_count_error();
    if (e->domain != MONGOC_ERROR_SERVER && e->domain != MONGOC_ERROR_WRITE_CONCERN)
        persistor_mongo_state(p, 0, e->message);
    mreport_fail(r, "MongoDB %s failed: %s", what, e->message);
    return PST_EMONGO;
}

void mcold_docs_free(bson_t **docs, size_t n)
{
    for (size_t i = 0; i < n; i++) bson_destroy(docs[i]);
    free(docs);
}

int mcold_load(persistor *p, mreport *r, bson_t ***docs, size_t *n)
{
    size_t cap = 0;
    *docs = NULL;
    *n = 0;
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "date", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(p->coll, &filter, opts, NULL);
    const bson_t *doc;
    int rv = PST_OK;
    while (rv == PST_OK && mongoc_cursor_next(cur, &doc)) {
        if (dynbuf_reserve_array(docs, &cap, *n + 1, sizeof **docs, DOCS_MAX * sizeof **docs)) {
            mreport_fail(r, "out of memory");
            rv = PST_EMONGO;
            break;
        }
        (*docs)[(*n)++] = bson_copy(doc);
    }
    bson_error_t e;
    if (rv == PST_OK && mongoc_cursor_error(cur, &e)) rv = mongo_failed(p, r, "find", &e);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    if (rv != PST_OK) {
        mcold_docs_free(*docs, *n);
        *docs = NULL;
        *n = 0;
    }
    return rv;
}

/* "date=2026-01-07 _id=65a1…" for reports; *date gets the date or "". */
static void doc_name(const bson_t *doc, char *name, size_t n, char date[TS_DAY_LEN + 1])
{
    bson_iter_t it;
    char id[64] = "?";
    date[0] = '\0';
    if (bson_iter_init_find(&it, doc, "_id")) {
        if (BSON_ITER_HOLDS_OID(&it)) bson_oid_to_string(bson_iter_oid(&it), id);
        else if (BSON_ITER_HOLDS_UTF8(&it)) snprintf(id, sizeof id, "%s", bson_iter_utf8(&it, NULL));
        else if (BSON_ITER_HOLDS_INT(&it)) snprintf(id, sizeof id, "%lld", (long long)bson_iter_as_int64(&it));
    }
    const char *d = "(none)";
    if (bson_iter_init_find(&it, doc, "date") && BSON_ITER_HOLDS_UTF8(&it)) {
        uint32_t len;
        const char *s = bson_iter_utf8(&it, &len);
        int64_t day;
        if (len == TS_DAY_LEN && ts_parse_day(s, len, &day) == 0) memcpy(date, s, TS_DAY_LEN + 1);
        d = s;
    }
    snprintf(name, n, "MongoDB document date=%.40s _id=%s", d, id);
}

/*
 * One side (deposits / withdrawals) of a document: each amount to cents,
 * appended to out as int64 (when out is not NULL).  txagg: the document is
 * in txagg's form (amounts must already be integer cents).  Returns the
 * number of values refused.
 */
static int judge_side(mreport *r, const char *name, const char *side, bson_iter_t *it, int txagg, bson_t *out,
                      int64_t *total)
{
    bson_iter_t sub;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &sub)) {
        mreport_refuse(r, "%s: %s is not a document", name, side);
        return 1;
    }
    int bad = 0;
    while (bson_iter_next(&sub)) {
        const char *m = bson_iter_key(&sub);
        char text[PYVALUE_TEXT_MAX] = "";
        int64_t c = 0;
        int rc;
        if (BSON_ITER_HOLDS_DOUBLE(&sub)) {
            pyvalue_double_text(bson_iter_double(&sub), text, sizeof text);
            rc = txagg ? PYVALUE_ESYNTAX : pyvalue_double_cents(bson_iter_double(&sub), &c);
        } else if (BSON_ITER_HOLDS_INT32(&sub) || BSON_ITER_HOLDS_INT64(&sub)) {
            int64_t v = bson_iter_as_int64(&sub);
            snprintf(text, sizeof text, "%lld", (long long)v);
            if (txagg) {
                c = v;
                rc = PYVALUE_OK;
            } else {
                rc = pyvalue_int_cents(v, &c);
            }
        } else {
            snprintf(text, sizeof text, "(a BSON %s)", bson_iter_type(&sub) == BSON_TYPE_DECIMAL128 ? "decimal128" : "non-number");
            rc = PYVALUE_ESYNTAX;
        }
        if (!pyvalue_method_ok(m, strlen(m))) {
            mreport_refuse(r, "%s: field %s.%s: not a payment method txagg accepts (lower-case [a-z0-9_-]{1,32})",
                           name, side, m);
            bad++;
        } else if (rc != PYVALUE_OK) {
            if (txagg)
                mreport_refuse(r, "%s: field %s.%s = %s is not integer cents, in a document already in txagg's form "
                               "(batches present)", name, side, m, text);
            else
                mreport_refuse(r, "%s: field %s.%s = %s %s", name, side, m, text, pyvalue_strerror(rc));
            bad++;
        } else {
            if (__builtin_add_overflow(*total, c, total)) {
                mreport_refuse(r, "%s: the sum of its amounts overflows int64 cents", name);
                bad++;
            }
            if (out) BSON_APPEND_INT64(out, m, c);
        }
    }
    return bad;
}

/* Convert a judged document: one update guarded by the old form and values. */
static int write_doc(persistor *p, mreport *r, const char *name, const bson_t *doc, bson_t *neu[TXN_TYPES])
{
    bson_iter_t it;
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, unset, child, opts = BSON_INITIALIZER;
    if (bson_iter_init_find(&it, doc, "_id")) bson_append_iter(&filter, "_id", 3, &it);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "batches", &child);
    BSON_APPEND_BOOL(&child, "$exists", false);
    bson_append_document_end(&filter, &child);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    for (int t = 0; t < TXN_TYPES; t++) {
        const char *side = txn_type_plural(t);
        if (bson_iter_init_find(&it, doc, side)) {
            bson_append_iter(&filter, side, -1, &it);
            BSON_APPEND_DOCUMENT(&set, side, neu[t]);
        } else {
            BSON_APPEND_DOCUMENT_BEGIN(&filter, side, &child);
            BSON_APPEND_BOOL(&child, "$exists", false);
            bson_append_document_end(&filter, &child);
        }
    }
    BSON_APPEND_ARRAY_BEGIN(&set, "batches", &child);
    bson_append_array_end(&set, &child);
    BSON_APPEND_DATE_TIME(&set, "updated_at", (int64_t)time(NULL) * 1000);
    bson_append_document_end(&update, &set);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
    BSON_APPEND_UTF8(&unset, "last_updated", "");
    bson_append_document_end(&update, &unset);
    mongoc_write_concern_append(p->wc, &opts);

    bson_t reply;
    bson_error_t e;
    int rv = PST_OK;
    if (!mongoc_collection_update_one(p->coll, &filter, &update, &opts, &reply, &e)) {
        rv = mongo_failed(p, r, "update", &e);
    } else {
        int64_t matched = 0;
        if (bson_iter_init_find(&it, &reply, "matchedCount")) matched = bson_iter_as_int64(&it);
        if (matched == 1) {
            r->docs_converted++;
        } else {
            /* not the old form with the values read any more: who changed it? */
            bson_t idf = BSON_INITIALIZER;
            if (bson_iter_init_find(&it, doc, "_id")) bson_append_iter(&idf, "_id", 3, &it);
            mongoc_cursor_t *cur = mongoc_collection_find_with_opts(p->coll, &idf, NULL, NULL);
            const bson_t *now;
            int converted = 0;
            if (mongoc_cursor_next(cur, &now)) converted = bson_has_field(now, "batches");
            if (mongoc_cursor_error(cur, &e)) rv = mongo_failed(p, r, "find", &e);
            else if (converted) r->docs_elsewhere++;
            else {
                r->docs_refused++;
                mreport_refuse(r, "%s changed while it was being converted (is the Python service stopped?); "
                               "nothing of it written", name);
            }
            mongoc_cursor_destroy(cur);
            bson_destroy(&idf);
        }
    }
    bson_destroy(&reply);
    bson_destroy(&opts);
    bson_destroy(&update);
    bson_destroy(&filter);
    return rv;
}

int mcold_convert(persistor *p, mreport *r, const bson_t *doc)
{
    char name[NAME_MAX_LEN], date[TS_DAY_LEN + 1];
    doc_name(doc, name, sizeof name, date);
    r->docs_seen++;
    if (date[0] && strcmp(date, r->newest_day) > 0) memcpy(r->newest_day, date, sizeof date);
    int txagg = bson_has_field(doc, "batches");
    int bad = 0;
    if (!date[0]) {
        mreport_refuse(r, "%s: no date YYYY-MM-DD", name);
        bad++;
    }
    bson_t *neu[TXN_TYPES] = {0};
    int64_t total = 0;
    bson_iter_t it;
    for (int t = 0; t < TXN_TYPES; t++) {
        const char *side = txn_type_plural(t);
        if (!bson_iter_init_find(&it, doc, side)) continue;
        if (!txagg) neu[t] = bson_new();
        bad += judge_side(r, name, side, &it, txagg, neu[t], &total);
    }
    int rv = PST_OK;
    if (bad) {
        r->docs_refused++;
    } else if (txagg) {
        r->docs_txagg++;
        mreport_add(&r->cold_before, total);
    } else if (r->check) {
        r->docs_converted++;
        mreport_add(&r->cold_before, total);
    } else {
        int64_t refused = r->docs_refused;
        rv = write_doc(p, r, name, doc, neu);
        if (rv == PST_OK && r->docs_refused == refused) mreport_add(&r->cold_before, total);
    }
    for (int t = 0; t < TXN_TYPES; t++)
        if (neu[t]) bson_destroy(neu[t]);
    return rv;
}

int mcold_total(persistor *p, mreport *r)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("projection", "{", "deposits", BCON_INT32(1), "withdrawals", BCON_INT32(1), "batches",
                            BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(p->coll, &filter, opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        if (!bson_has_field(doc, "batches")) continue; /* still the Python service's: refused */
        bson_iter_t it, sub;
        int64_t total = 0;
        int whole = 1; /* a document holding anything but integer cents was refused */
        for (int t = 0; t < TXN_TYPES; t++) {
            if (!bson_iter_init_find(&it, doc, txn_type_plural(t)) || !bson_iter_recurse(&it, &sub)) continue;
            while (bson_iter_next(&sub)) {
                if (!BSON_ITER_HOLDS_INT32(&sub) && !BSON_ITER_HOLDS_INT64(&sub)) whole = 0;
                else if (__builtin_add_overflow(total, bson_iter_as_int64(&sub), &total)) whole = 0;
            }
        }
        if (whole) mreport_add(&r->cold_after, total);
    }
    bson_error_t e;
    int rv = PST_OK;
    if (mongoc_cursor_error(cur, &e)) rv = mongo_failed(p, r, "find", &e);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return rv;
}
