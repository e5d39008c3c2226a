/*
 * txn — transaction field rules; see txn.h.
 */
#include "txn.h"
#include "money.h"

#include <string.h>
#include <strings.h>

static const char *const type_names[TXN_TYPES] = {"deposit", "withdrawal"};
static const char *const type_plurals[TXN_TYPES] = {"deposits", "withdrawals"};

int txn_type_parse(const char *s, size_t len)
{
    for (int t = 0; t < TXN_TYPES; t++) {
        size_t n = t == TXN_DEPOSIT ? 7 : 10;
        if (len == n && strncasecmp(s, type_names[t], n) == 0) return t;
    }
    return -1;
}

const char *txn_type_name(int type)
{
    return type >= 0 && type < TXN_TYPES ? type_names[type] : "?";
}

const char *txn_type_plural(int type)
{
    return type >= 0 && type < TXN_TYPES ? type_plurals[type] : "?";
}

int txn_method_normalize(const char *s, size_t len, char *out)
{
    if (len < 1 || len > TXN_METHOD_MAX) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return -1;
        out[i] = (char)c;
    }
    out[len] = '\0';
    return (int)len;
}

size_t txn_entry_head(char *buf, const char *ts, int type, const char *method, size_t mlen, int64_t cents)
{
    size_t n = strlen(ts);
    memcpy(buf, ts, n);
    buf[n++] = ' ';
    const char *t = txn_type_name(type);
    size_t tl = strlen(t);
    memcpy(buf + n, t, tl);
    n += tl;
    buf[n++] = ' ';
    memcpy(buf + n, method, mlen);
    n += mlen;
    buf[n++] = ' ';
    n += money_format(cents, buf + n, MONEY_FMT_MAX);
    buf[n++] = ' ';
    return n;
}

int txn_entry_split(const char *v, size_t len, txn_entry_words *out)
{
    const char *s = v, *end = v + len;
    for (int i = 0; i < 4; i++) {
        const char *sp = memchr(s, ' ', (size_t)(end - s));
        if (!sp) return -1;
        out->w[i] = s;
        out->len[i] = (size_t)(sp - s);
        s = sp + 1;
    }
    out->w[4] = s;
    out->len[4] = (size_t)(end - s);
    return 0;
}
