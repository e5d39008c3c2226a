/*
 * validate — the header and the per-row input rules; see validate.h.
 *
 * The checks run in the fixed order of enum reject_reason and stop at the
 * first failure, so a row has exactly one reason.  Each check is the shared
 * rule of common/ (ts_parse, txn_type_parse, txn_method_normalize,
 * money_parse); only the future limit, the field count and sleep_ms live
 * here.  Fields arrive trimmed (csv_reader).  A record cut off as too long
 * cannot be split into the header's fields: field_count.
 */
#include "validate.h"
#include "money.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const reason_names[REJECT_NREASONS] = {
    "none", "field_count", "timestamp", "type", "payment_method", "amount", "sleep_ms",
};

const char *validate_reason_name(int reason)
{
    return reason > 0 && reason < REJECT_NREASONS ? reason_names[reason] : "none";
}

static int name_is(const csv_record *rec, int i, const char *name)
{
    return rec->len[i] == strlen(name) && strncasecmp(rec->field[i], name, rec->len[i]) == 0;
}

int validate_header(const csv_record *rec, header_map *h, char *err, size_t errlen)
{
    static const char *const names[] = {"timestamp", "type", "payment_method", "amount", "sleep_ms"};
    int *slot[] = {&h->ts, &h->type, &h->method, &h->amount, &h->sleep_ms};
    enum { NCOLS = 5, NREQUIRED = 4 };

    if (rec->too_long) {
        snprintf(err, errlen, "header longer than %d bytes", CSV_RECORD_MAX);
        return -1;
    }
    h->nfields = rec->nfields;
    for (int k = 0; k < NCOLS; k++) *slot[k] = -1;
    for (int i = 0; i < rec->nfields; i++) {
        for (int k = 0; k < NCOLS; k++) {
            if (!name_is(rec, i, names[k])) continue;
            if (*slot[k] >= 0) {
                snprintf(err, errlen, "header names column '%s' twice", names[k]);
                return -1;
            }
            *slot[k] = i;
        }
    }
    for (int k = 0; k < NREQUIRED; k++) {
        if (*slot[k] < 0) {
            snprintf(err, errlen, "header has no '%s' column (required: timestamp, type, payment_method, amount)",
                     names[k]);
            return -1;
        }
    }
    return 0;
}

int validate_sleep_ms(const char *s, size_t len, int64_t *ms)
{
    int64_t v = 0;
    if (len == 0) {
        *ms = 0;
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
        if (v > SLEEP_MS_MAX) return -1;
    }
    *ms = v;
    return 0;
}

int validate_row(const header_map *h, const csv_record *rec, int64_t now, int max_future_days, valid_row *out,
                 int64_t *sleep_ms)
{
    *sleep_ms = 0;
    if (rec->too_long || rec->nfields != h->nfields) return REJECT_FIELD_COUNT;

    int64_t sleep = 0;
    int sleep_ok = h->sleep_ms < 0 || validate_sleep_ms(rec->field[h->sleep_ms], rec->len[h->sleep_ms], &sleep) == 0;
    if (sleep_ok) *sleep_ms = sleep;

    int64_t epoch;
    if (ts_parse(rec->field[h->ts], rec->len[h->ts], &epoch) != 0) return REJECT_TIMESTAMP;
    if (epoch - now > (int64_t)max_future_days * 86400) return REJECT_TIMESTAMP;

    int type = txn_type_parse(rec->field[h->type], rec->len[h->type]);
    if (type < 0) return REJECT_TYPE;

    char method[TXN_METHOD_MAX + 1];
    if (txn_method_normalize(rec->field[h->method], rec->len[h->method], method) < 0) return REJECT_PAYMENT_METHOD;

    int64_t cents;
    if (money_parse(rec->field[h->amount], rec->len[h->amount], &cents) != MONEY_OK) return REJECT_AMOUNT;

    if (!sleep_ok) return REJECT_SLEEP_MS;

    out->epoch = epoch;
    out->type = type;
    memcpy(out->method, method, sizeof method);
    out->cents = cents;
    return REJECT_NONE;
}
