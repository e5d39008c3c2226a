/*
 * partpub — publish deterministic stream entries straight to the partition
 * streams of the hot tier (REDIS_PARTITIONS, REDIS_CLUSTER; common/tier.h),
 * in the importer's entry format (common/txn.h, one field "tx"), for the
 * aggregator's partition tests (no CSV, no importer: the aggregator alone).
 *
 *   partpub [--count N] [--seed S] [--days D] [--start YYYY-MM-DD]
 *           [--bad-every K] [--stripe B] [--rate R] [--dump FILE]
 *
 * Entries are cut in stripes of B (default 500): stripe k goes to partition
 * k mod N as one MULTI … EXEC of B XADDs (hand-off 1 of the contract, without
 * the checkpoint).  On a cluster each stripe is followed by a WAIT for the
 * shard's replicas (rconn_replica_wait), so a later failover cannot lose a
 * published entry: the dump stays exactly what Redis holds.  Entry i depends
 * only on (seed, i); every K-th entry is malformed (an unknown type).
 * --dump appends "ok TS TYPE METHOD CENTS" or "bad type" per entry, so the
 * test computes the expected totals independently.  An outcome that stays
 * unknown (a reply lost) is an error: exit 1 — the dump would be uncertain.
 * --rate caps entries per second (0, the default: as fast as possible).
 * Prints "published N" and exits 0.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "money.h"
#include "redis.h"
#include "signals.h"
#include "tier.h"
#include "timeparse.h"
#include "txn.h"

#include "pubgen.h"

static const char *methods[] = {"visa", "mastercard", "paypal", "apple_pay", "google_pay", "bank_transfer"};
#define NMETHODS (sizeof methods / sizeof methods[0])

typedef struct entry {
    char ts[TS_ISO_LEN + 1];
    const char *type, *method;
    int64_t cents;
    int bad;
} entry;

static void make_entry(entry *e, int64_t seed, int64_t i, int64_t day0, int64_t days, int64_t bad_every)
{
    uint64_t h = pubgen_mix((uint64_t)seed * UINT64_C(0x100000001B3) ^ (uint64_t)i), h2 = pubgen_mix(h);
    ts_format_iso((day0 + (int64_t)(h % (uint64_t)days)) * 86400 + (int64_t)((h >> 20) % 86400), e->ts);
    e->type = (h >> 40) & 1 ? "withdrawal" : "deposit";
    e->method = methods[(h >> 41) % NMETHODS];
    e->cents = 1 + (int64_t)(h2 % INT64_C(50000000));
    e->bad = bad_every > 0 && i % bad_every == bad_every - 1;
}

int main(int argc, char **argv)
{
    int64_t count = 1000, seed = 1, days = 10, bad_every = 0, stripe = 500, rate = 0;
    const char *start = "2026-01-01", *dump_path = NULL;
    const pubgen_opt opts[] = {
        {"--count", &count, NULL}, {"--seed", &seed, NULL}, {"--days", &days, NULL},
        {"--bad-every", &bad_every, NULL}, {"--stripe", &stripe, NULL}, {"--rate", &rate, NULL},
        {"--start", NULL, &start}, {"--dump", NULL, &dump_path}, {NULL, NULL, NULL}};
    if (pubgen_args("partpub", argc, argv, opts)) return 1;
    int64_t day0;
    if (ts_parse_day(start, strlen(start), &day0) || days < 1 || stripe < 1 || stripe > 10000) {
        fprintf(stderr, "partpub: bad --start, --days or --stripe\n");
        return 1;
    }
    txagg_config cfg;
    char err[512];
    if (config_load(&cfg, CFG_ALL, err, sizeof err)) {
        fprintf(stderr, "partpub: %s\n", err);
        return 1;
    }
    log_init("partpub", cfg.log_level);
    tier t;
    if (tier_init(&t, &cfg, "partpub", err, sizeof err)) {
        fprintf(stderr, "partpub: %s\n", err);
        return 1;
    }
    FILE *dump = dump_path ? fopen(dump_path, "a") : NULL;
    if (dump_path && !dump) {
        perror(dump_path);
        return 1;
    }
    size_t nc = (size_t)stripe;
    rcluster_argv *cmds = calloc(nc, sizeof *cmds);
    const char **args = calloc(nc * 5, sizeof *args);
    char(*vals)[TXN_ENTRY_HEAD_MAX + 64] = calloc(nc, sizeof *vals);
    if (!cmds || !args || !vals) return 1;
    int rv = 0;
    int64_t done = 0, t0 = sig_now_us();
    for (int64_t k = 0; k * stripe < count && !rv; k++) {
        int p = (int)(k % t.n);
        int64_t from = k * stripe, to = from + stripe < count ? from + stripe : count;
        int n = (int)(to - from);
        for (int j = 0; j < n; j++) {
            entry e;
            make_entry(&e, seed, from + j, day0, days, bad_every);
            char amount[MONEY_FMT_MAX];
            money_format(e.cents, amount, sizeof amount);
            snprintf(vals[j], sizeof vals[j], "%s %s %s %s partpub:%" PRId64, e.ts, e.bad ? "refund" : e.type,
                     e.method, amount, from + j + 1);
            const char **a = &args[j * 5];
            a[0] = "XADD";
            a[1] = t.parts[p].stream;
            a[2] = "*";
            a[3] = TXN_ENTRY_FIELD;
            a[4] = vals[j];
            cmds[j].argc = 5;
            cmds[j].argv = a;
            cmds[j].lens = NULL;
        }
        redisReply *r = rcluster_multi(t.cl, t.parts[p].slot, n, cmds);
        if (!r || r->type != REDIS_REPLY_ARRAY || (int)r->elements != n) {
            fprintf(stderr, "partpub: stripe %" PRId64 " to partition %d: %s\n", k, p,
                    r && r->type == REDIS_REPLY_ERROR ? r->str : rcluster_error(t.cl));
            rv = 1;
        }
        if (r) freeReplyObject(r);
        if (!rv && rcluster_is_cluster(t.cl)) {
            int replicas = 0, acked = 0;
            if (rconn_replica_wait(rcluster_last_conn(t.cl), 5000, &replicas, &acked, err, sizeof err) != 0 ||
                acked < replicas) {
                fprintf(stderr, "partpub: stripe %" PRId64 ": replicas did not acknowledge (%d of %d) %s\n", k,
                        acked, replicas, err);
                rv = 1;
            }
        }
        for (int64_t i = from; dump && !rv && i < to; i++) {
            entry e;
            make_entry(&e, seed, i, day0, days, bad_every);
            if (e.bad) fprintf(dump, "bad type\n");
            else fprintf(dump, "ok %s %s %s %" PRId64 "\n", e.ts, e.type, e.method, e.cents);
        }
        if (!rv) done += n;
        pubgen_pace(t0, done, rate);
    }
    if (dump) fclose(dump);
    free(cmds);
    free(args);
    free(vals);
    tier_free(&t);
    printf("published %" PRId64 "\n", done);
    return rv;
}
