/*
 * txpub — publish deterministic stream entries straight to `transactions`,
 * in the importer's entry format, for the aggregator's end-to-end test and
 * benchmark (no CSV, no importer: it tests the aggregator alone).
 *
 *   txpub [--from I] [--count N] [--seed S] [--days D] [--start YYYY-MM-DD]
 *         [--bad-every K] [--batch B] [--rate R] [--dump FILE]
 *
 * Entry i (from I to I+N-1) depends only on (seed, i), so a run can be split
 * into chunks that together equal one run.  Timestamps fall anywhere in D
 * days from --start, in no order.  With --bad-every K, every K-th entry is
 * malformed (missing cents, cents 0, type refund, a bad timestamp or a bad
 * method, in turn).  --dump appends each entry as a line "ok TS TYPE METHOD
 * CENTS" or "bad KIND" so a test can compute the expected totals
 * independently.  XADDs are pipelined B at a time (default 1000); --rate
 * caps entries per second (0 = as fast as possible).  Redis from REDIS_HOST /
 * REDIS_PORT.  Prints "published N" and exits 0, or 1 on an error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "redis.h"
#include "signals.h"
#include "timeparse.h"

static const char *methods[] = {"visa", "mastercard", "paypal", "apple_pay", "google_pay", "bank_transfer", "crypto",
                                "amex"};
#define NMETHODS (sizeof methods / sizeof methods[0])

static uint64_t mix(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

static int arg_i64(const char *s, int64_t *v)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || x < 0) return -1;
    *v = x;
    return 0;
}

int main(int argc, char **argv)
{
    int64_t from = 0, count = 1000, seed = 1, days = 10, bad_every = 0, batch = 1000, rate = 0;
    const char *start = "2026-01-01", *dump_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t *dst = !strcmp(a, "--from")        ? &from
                       : !strcmp(a, "--count")     ? &count
                       : !strcmp(a, "--seed")      ? &seed
                       : !strcmp(a, "--days")      ? &days
                       : !strcmp(a, "--bad-every") ? &bad_every
                       : !strcmp(a, "--batch")     ? &batch
                       : !strcmp(a, "--rate")      ? &rate
                                                   : NULL;
        if (v && dst) {
            if (arg_i64(v, dst)) {
                fprintf(stderr, "txpub: bad value for %s\n", a);
                return 1;
            }
        } else if (v && !strcmp(a, "--start")) {
            start = v;
        } else if (v && !strcmp(a, "--dump")) {
            dump_path = v;
        } else {
            fprintf(stderr, "txpub: unknown or incomplete argument '%s' (see the header of tests/tools/txpub.c)\n", a);
            return 1;
        }
        i++;
    }
    int64_t day0;
    if (ts_parse_day(start, strlen(start), &day0) || days < 1 || batch < 1) {
        fprintf(stderr, "txpub: bad --start, --days or --batch\n");
        return 1;
    }
    txagg_config cfg;
    char err[512];
    if (config_load(&cfg, CFG_ALL, err, sizeof err)) {
        fprintf(stderr, "txpub: %s\n", err);
        return 1;
    }
    log_init("txpub", cfg.log_level);
    rconn *rc = rconn_new(&cfg, "txpub");
    if (!rc || rconn_ensure(rc) != 0) {
        fprintf(stderr, "txpub: cannot reach redis at %s:%d\n", cfg.redis_host, cfg.redis_port);
        return 1;
    }
    FILE *dump = dump_path ? fopen(dump_path, "a") : NULL;
    if (dump_path && !dump) {
        perror(dump_path);
        return 1;
    }
    int64_t t0 = sig_now_us(), done = 0;
    int rv = 0;
    for (int64_t i = from; i < from + count && rv == 0;) {
        int64_t n = 0;
        for (; n < batch && i < from + count; n++, i++) {
            uint64_t h = mix((uint64_t)seed * UINT64_C(0x100000001B3) ^ (uint64_t)i);
            uint64_t h2 = mix(h);
            int64_t epoch = (day0 + (int64_t)(h % (uint64_t)days)) * 86400 + (int64_t)((h >> 20) % 86400);
            char ts[TS_ISO_LEN + 1], cents[24], src[48];
            ts_format_iso(epoch, ts);
            const char *type = (h >> 40) & 1 ? "withdrawal" : "deposit";
            const char *method = methods[(h >> 41) % NMETHODS];
            /* mostly everyday amounts, now and then the largest allowed */
            int64_t c = (h2 % 1000) == 0 ? INT64_C(100000000000) - (int64_t)(h2 % 1000000)
                                         : 1 + (int64_t)(h2 % INT64_C(50000000));
            snprintf(cents, sizeof cents, "%" PRId64, c);
            snprintf(src, sizeof src, "txpub:%" PRId64, i + 1);
            int bad = bad_every > 0 && i % bad_every == bad_every - 1 ? (int)((i / bad_every) % 5) + 1 : 0;
            static const char *bad_kind[] = {"", "missing_cents", "zero_cents", "type", "ts", "method"};
            switch (bad) {
            case 1:
                redisAppendCommand(rconn_ctx(rc), "XADD %s * ts %s type %s method %s src %s", KEYS_STREAM, ts, type,
                                   method, src);
                break;
            case 2:
                redisAppendCommand(rconn_ctx(rc), "XADD %s * ts %s type %s method %s cents 0 src %s", KEYS_STREAM, ts,
                                   type, method, src);
                break;
            case 3:
                redisAppendCommand(rconn_ctx(rc), "XADD %s * ts %s type refund method %s cents %s src %s", KEYS_STREAM,
                                   ts, method, cents, src);
                break;
            case 4:
                redisAppendCommand(rconn_ctx(rc), "XADD %s * ts 2026-13-01T00:00:00Z type %s method %s cents %s src %s",
                                   KEYS_STREAM, type, method, cents, src);
                break;
            case 5:
                redisAppendCommand(rconn_ctx(rc), "XADD %s * ts %s type %s method b@d cents %s src %s", KEYS_STREAM, ts,
                                   type, cents, src);
                break;
            default:
                redisAppendCommand(rconn_ctx(rc), "XADD %s * ts %s type %s method %s cents %s src %s", KEYS_STREAM, ts,
                                   type, method, cents, src);
            }
            if (dump) {
                if (bad) fprintf(dump, "bad %s\n", bad_kind[bad]);
                else fprintf(dump, "ok %s %s %s %s\n", ts, type, method, cents);
            }
        }
        for (int64_t k = 0; k < n; k++) {
            void *r = NULL;
            if (redisGetReply(rconn_ctx(rc), &r) != REDIS_OK) {
                fprintf(stderr, "txpub: redis: %s\n", rconn_ctx(rc)->errstr);
                rv = 1;
                break;
            }
            if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "txpub: XADD: %s\n", ((redisReply *)r)->str);
                rv = 1;
            }
            freeReplyObject(r);
        }
        if (rv) break;
        done += n;
        if (rate > 0) { /* pace: done entries take done/rate seconds */
            int64_t due = t0 + done * 1000000 / rate, now = sig_now_us();
            if (due > now) sig_sleep_ms((due - now) / 1000);
        }
    }
    if (dump) fclose(dump);
    rconn_free(rc);
    printf("published %" PRId64 "\n", done);
    return rv;
}
