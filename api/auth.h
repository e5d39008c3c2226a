/*
 * auth — the bearer token of API_TOKEN.
 *
 * When API_TOKEN is set, /stats, /metrics, /openapi.json and /docs need
 * `Authorization: Bearer <token>` (routes.c decides which routes); /health,
 * /ready and the dashboard page stay open.  The comparison takes a time that
 * depends only on the expected token's length, never on how many leading
 * bytes of a guess are right.  Pure: no I/O, no allocation.
 */
#ifndef TXAGG_API_AUTH_H
#define TXAGG_API_AUTH_H

#include <stddef.h>

/* 1 when given[0..glen) equals expected[0..elen), in time independent of
 * where they differ. */
int auth_equal_ct(const char *expected, size_t elen, const char *given, size_t glen);

/*
 * 1 when a request with this Authorization header value (NULL = absent) may
 * pass: the token is empty (API open), or the header is "Bearer <token>"
 * (scheme case-insensitive, RFC 6750) with the right token.
 */
int auth_bearer_ok(const char *token, size_t token_len, const char *authorization);

#endif
