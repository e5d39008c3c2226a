/*
 * txpub — publish deterministic stream entries straight to `transactions`,
 * in the importer's entry format, for the aggregator's end-to-end test and
 * benchmark (no CSV, no importer: it tests the aggregator alone).
 *
 *   txpub [--from I] [--count N] [--seed S] [--days D] [--start YYYY-MM-DD]
 *         [--bad-every K] [--batch B] [--rate R] [--dump FILE]
 *         [--format current|previous]
 *
 * Entry i (from I to I+N-1) depends only on (seed, i), so a run can be split
 * into chunks that together equal one run.  Timestamps fall anywhere in D
 * days from --start, in no order.  With --bad-every K, every K-th entry is
 * malformed (missing cents, cents 0, type refund, a bad timestamp or a bad
 * method, in turn).  --dump appends each entry as a line "ok TS TYPE METHOD
 * CENTS" or "bad KIND" so a test can compute the expected totals
 * independently.  XADDs are sent B at a time (default 1000) as one MULTI …
 * EXEC, settled when its reply times out (tests/tools/settle.h: applied
 * exactly once, never lost nor doubled); --rate
 * caps entries per second (0 = as fast as possible).  Redis from REDIS_HOST /
 * REDIS_PORT.  --format previous writes the entry format of importers
 * before the current one (fields ts, type, method, cents, src), which a
 * rolling upgrade can leave in the stream; the default is the current one
 * (common/txn.h, one field "tx").  Prints "published N" (followed by
 * "unknown=N lost_replies=N resent=N" when a reply timed out) and exits 0,
 * or 1 on an error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "money.h"
#include "redis.h"
#include "signals.h"
#include "timeparse.h"
#include "txn.h"

#include "pubgen.h"
#include "settle.h"

static const char *methods[] = {"visa", "mastercard", "paypal", "apple_pay", "google_pay", "bank_transfer", "crypto",
                                "amex"};
#define NMETHODS (sizeof methods / sizeof methods[0])

/* Entry i of a run: a function of (seed, i) only. */
typedef struct entry {
    char ts[TS_ISO_LEN + 1], cents[24], src[48];
    const char *type, *method;
    int64_t c;
    int bad; /* 0, or 1..5: the kind of malformation (bad_kind) */
} entry;

static const char *bad_kind[] = {"", "missing_cents", "zero_cents", "type", "ts", "method"};

static void make_entry(entry *e, int64_t seed, int64_t i, int64_t day0, int64_t days, int64_t bad_every)
{
    uint64_t h = pubgen_mix((uint64_t)seed * UINT64_C(0x100000001B3) ^ (uint64_t)i);
    uint64_t h2 = pubgen_mix(h);
    int64_t epoch = (day0 + (int64_t)(h % (uint64_t)days)) * 86400 + (int64_t)((h >> 20) % 86400);
    ts_format_iso(epoch, e->ts);
    e->type = (h >> 40) & 1 ? "withdrawal" : "deposit";
    e->method = methods[(h >> 41) % NMETHODS];
    /* mostly everyday amounts, now and then the largest allowed */
    e->c = (h2 % 1000) == 0 ? INT64_C(100000000000) - (int64_t)(h2 % 1000000) : 1 + (int64_t)(h2 % INT64_C(50000000));
    snprintf(e->cents, sizeof e->cents, "%" PRId64, e->c);
    snprintf(e->src, sizeof e->src, "txpub:%" PRId64, i + 1);
    e->bad = bad_every > 0 && i % bad_every == bad_every - 1 ? (int)((i / bad_every) % 5) + 1 : 0;
}

/* One batch: entries [from, to) of the run, appended as XADDs. */
typedef struct batch {
    int64_t from, to, seed, day0, days, bad_every;
    int current; /* the current one-field format, else the previous one */
} batch;

static int append_batch(redisContext *ctx, void *arg)
{
    const batch *b = arg;
    for (int64_t i = b->from; i < b->to; i++) {
        entry e;
        make_entry(&e, b->seed, i, b->day0, b->days, b->bad_every);
        const char *ts = e.ts, *type = e.type, *method = e.method, *cents = e.cents, *src = e.src;
        if (b->current) { /* the same kinds, in the one-field form */
            char v[TXN_ENTRY_HEAD_MAX + 64], amount[MONEY_FMT_MAX];
            money_format(e.c, amount, sizeof amount);
            switch (e.bad) {
            case 1: snprintf(v, sizeof v, "%s %s %s", ts, type, method); break;
            case 2: snprintf(v, sizeof v, "%s %s %s 0.00 %s", ts, type, method, src); break;
            case 3: snprintf(v, sizeof v, "%s refund %s %s %s", ts, method, amount, src); break;
            case 4: snprintf(v, sizeof v, "2026-13-01T00:00:00Z %s %s %s %s", type, method, amount, src); break;
            case 5: snprintf(v, sizeof v, "%s %s b@d %s %s", ts, type, amount, src); break;
            default: snprintf(v, sizeof v, "%s %s %s %s %s", ts, type, method, amount, src);
            }
            redisAppendCommand(ctx, "XADD %s * %s %s", KEYS_STREAM, TXN_ENTRY_FIELD, v);
        } else switch (e.bad) {
        case 1:
            redisAppendCommand(ctx, "XADD %s * ts %s type %s method %s src %s", KEYS_STREAM, ts, type, method, src);
            break;
        case 2:
            redisAppendCommand(ctx, "XADD %s * ts %s type %s method %s cents 0 src %s", KEYS_STREAM, ts, type, method,
                               src);
            break;
        case 3:
            redisAppendCommand(ctx, "XADD %s * ts %s type refund method %s cents %s src %s", KEYS_STREAM, ts, method,
                               cents, src);
            break;
        case 4:
            redisAppendCommand(ctx, "XADD %s * ts 2026-13-01T00:00:00Z type %s method %s cents %s src %s", KEYS_STREAM,
                               type, method, cents, src);
            break;
        case 5:
            redisAppendCommand(ctx, "XADD %s * ts %s type %s method b@d cents %s src %s", KEYS_STREAM, ts, type, cents,
                               src);
            break;
        default:
            redisAppendCommand(ctx, "XADD %s * ts %s type %s method %s cents %s src %s", KEYS_STREAM, ts, type, method,
                               cents, src);
        }
    }
    return (int)(b->to - b->from);
}

int main(int argc, char **argv)
{
    int64_t from = 0, count = 1000, seed = 1, days = 10, bad_every = 0, batch_n = 1000, rate = 0;
    const char *start = "2026-01-01", *dump_path = NULL, *format = "current";
    const pubgen_opt opts[] = {
        {"--from", &from, NULL}, {"--count", &count, NULL}, {"--seed", &seed, NULL}, {"--days", &days, NULL},
        {"--bad-every", &bad_every, NULL}, {"--batch", &batch_n, NULL}, {"--rate", &rate, NULL},
        {"--start", NULL, &start}, {"--dump", NULL, &dump_path}, {"--format", NULL, &format}, {NULL, NULL, NULL}};
    if (pubgen_args("txpub", argc, argv, opts)) return 1;
    if (strcmp(format, "current") && strcmp(format, "previous")) {
        fprintf(stderr, "txpub: --format is current or previous, not '%s'\n", format);
        return 1;
    }
    int64_t day0;
    if (ts_parse_day(start, strlen(start), &day0) || days < 1 || batch_n < 1) {
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
    settle st;
    settle_init(&st, rc, "txpub");
    int64_t t0 = sig_now_us(), done = 0;
    int rv = 0;
    for (int64_t i = from; i < from + count;) {
        batch b = {i, i + batch_n < from + count ? i + batch_n : from + count, seed, day0, days, bad_every,
                   !strcmp(format, "current")};
        redisReply *r = NULL;
        if (settle_exec(&st, append_batch, &b, &r) != 0) {
            fprintf(stderr, "txpub: redis: %s\n", st.err);
            rv = 1;
            break;
        }
        for (size_t k = 0; r && k < r->elements; k++) /* r is NULL when its reply was lost */
            if (r->element[k]->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "txpub: XADD: %s\n", r->element[k]->str);
                rv = 1;
            }
        if (r) freeReplyObject(r);
        for (int64_t k = b.from; dump && k < b.to; k++) { /* only what Redis holds, once */
            entry e;
            make_entry(&e, seed, k, day0, days, bad_every);
            if (e.bad) fprintf(dump, "bad %s\n", bad_kind[e.bad]);
            else fprintf(dump, "ok %s %s %s %s\n", e.ts, e.type, e.method, e.cents);
        }
        if (rv) break;
        done += b.to - b.from;
        i = b.to;
        pubgen_pace(t0, done, rate);
    }
    if (dump) fclose(dump);
    rconn_free(rc);
    if (st.unknown) /* batches whose reply timed out, settled (tests/tools/settle.h) */
        printf("published %" PRId64 " unknown=%ld lost_replies=%ld resent=%ld\n", done, st.unknown, st.lost_replies,
               st.resent);
    else printf("published %" PRId64 "\n", done);
    return rv;
}
