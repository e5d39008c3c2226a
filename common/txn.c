/*
 * txn — transaction field rules; see txn.h.
 */
#include "txn.h"

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
