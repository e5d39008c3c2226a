/*
 * fuzz_query — libFuzzer target for the /stats query parser (api/query.c),
 * the one piece of the API that reads raw client bytes before anything else.
 * Built and run by scripts/fuzz.sh (`make fuzz`) with ASan and UBSan.
 *
 * Input: byte 0 picks MAX_RANGE_DAYS (1 + b * 16), byte 1 the size of the
 * error buffer, the rest is the query string (not NUL-terminated, may hold
 * any byte).  Besides crashes, it traps on a broken promise of query.h: an
 * accepted range is ordered and within the limit; a refusal has a non-empty,
 * NUL-terminated, printable reason that fits the buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int max_range = 1 + data[0] * 16;
    size_t errlen = 1 + data[1] % 300;
    size_t n = size - 2;
    /* An exact-size heap copy: ASan sees any read past the end. */
    char *q = malloc(n ? n : 1);
    if (!q) return 0;
    if (n) memcpy(q, data + 2, n);
    char *err = malloc(errlen);
    if (!err) {
        free(q);
        return 0;
    }
    memset(err, 'X', errlen);
    query_range r = {-1, -2};
    int rv = query_parse_stats(q, n, max_range, &r, err, errlen);
    if (rv == 0) {
        if (r.from_day < 0 || r.from_day > r.to_day || r.to_day - r.from_day + 1 > max_range) __builtin_trap();
        if (n > QUERY_MAX_LEN) __builtin_trap();
    } else {
        if (rv != -1 || !memchr(err, '\0', errlen)) __builtin_trap();
        if (errlen > 1 && err[0] == '\0') __builtin_trap();
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) __builtin_trap();
    }
    free(err);
    free(q);
    return 0;
}
