/*
 * pubgen — what the deterministic stream publishers (txpub, partpub) share
 * (header-only: the tools link libtxagg alone): the hash their entries are
 * drawn from, their "--name VALUE" arguments and their --rate pacing.
 *
 *   pubgen_mix(x)                          a 64-bit mix (splitmix64's finalizer)
 *   pubgen_args(tool, argc, argv, opts)    0, or 1 with the reason on stderr
 *   pubgen_pace(t0_us, done, rate)         sleep until done entries took done/rate s
 */
#ifndef TXAGG_TESTS_PUBGEN_H
#define TXAGG_TESTS_PUBGEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signals.h"

static inline uint64_t pubgen_mix(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* One option "--name VALUE": a whole number >= 0 into *num, or the string
 * into *str.  A list of them ends with a NULL name. */
typedef struct pubgen_opt {
    const char *name;
    int64_t *num;
    const char **str;
} pubgen_opt;

static inline int pubgen_args(const char *tool, int argc, char **argv, const pubgen_opt *opts)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const pubgen_opt *o = opts;
        while (o->name && strcmp(o->name, a)) o++;
        if (!v || !o->name) {
            fprintf(stderr, "%s: unknown or incomplete argument '%s' (see the header of tests/tools/%s.c)\n", tool, a,
                    tool);
            return 1;
        }
        if (o->str) {
            *o->str = v;
            continue;
        }
        char *end;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || x < 0) {
            fprintf(stderr, "%s: bad value for %s\n", tool, a);
            return 1;
        }
        *o->num = x;
    }
    return 0;
}

static inline void pubgen_pace(int64_t t0_us, int64_t done, int64_t rate)
{
    if (rate <= 0) return; /* as fast as possible */
    int64_t due = t0_us + done * 1000000 / rate, now = sig_now_us();
    if (due > now) sig_sleep_ms((due - now) / 1000);
}

#endif
