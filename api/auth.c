/*
 * auth — bearer token check; see auth.h.
 *
 * Invariant: auth_equal_ct reads every byte of the expected token exactly
 * once and folds differences with OR into one accumulator; the only branch
 * depends on the guess's length, which the client knows anyway.
 */
#include "auth.h"

#include <string.h>
#include <strings.h>

int auth_equal_ct(const char *expected, size_t elen, const char *given, size_t glen)
{
    volatile unsigned char diff = (unsigned char)(elen != glen);
    for (size_t i = 0; i < elen; i++) {
        unsigned char g = i < glen ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)((unsigned char)expected[i] ^ g);
    }
    return diff == 0;
}

int auth_bearer_ok(const char *token, size_t token_len, const char *authorization)
{
    if (token_len == 0) return 1;
    if (!authorization) return 0;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t') p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t')) return 0;
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    return auth_equal_ct(token, token_len, p, n);
}
