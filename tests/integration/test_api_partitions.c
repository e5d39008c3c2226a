/* /stats over a partitioned hot tier (api/stats.c stats_answer_tier), against
 * real servers: REDIS_PARTITIONS=4 on the harness's one Redis, then 4
 * partitions on a real Redis Cluster (3 primaries + 3 replicas) — each with
 * the harness's MongoDB-wire server.
 *
 * The test seeds each partition's keys directly (names from common/keys,
 * commands through the cluster layer to the partition's slot) and MongoDB
 * documents, and keeps its own ledger of every amount it seeded: the
 * expected body is printed from that ledger, never from what the api read.
 * A freeze or a MongoDB write moves money between tiers but never changes
 * the ledger, so every answer must equal it exactly:
 *   - the sum over the 4 partitions' hot hashes, frozen batches not yet in
 *     the document and the documents;
 *   - a frozen batch the document already lists counted once;
 *   - an archive version moving in one partition during the MongoDB read:
 *     retried, never double counted;
 *   - the answer cache: a change in any one partition (its hot or archive
 *     version) is seen;
 *   - Redis unreachable: 503 naming the partition, never a partial sum;
 *   - on the cluster: kill -9 of the primary serving a partition while
 *     /stats is read in a loop: every answer exact or unavailable, and exact
 *     again once the replica is promoted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "keys.h"
#include "metrics.h"
#include "money.h"
#include "mongo.h"
#include "signals.h"
#include "testcluster.h"
#include "testenv.h"
#include "tier.h"
#include "timeparse.h"

#include "../../api/answer_cache.h"
#include "../../api/cold_cache.h"
#include "../../api/stats.h"

#define NPARTS 4

static txagg_config cfg;
static tier T;
static mongoc_client_t *mc;
static mongoc_collection_t *coll;
static mongoc_client_pool_t *pool;
static cold_cache *cache;
static stats_env env;
static stats_scratch scratch;
static char cdir[1024]; /* the cluster's directory (group 2) */

/* ---- the ledger: what was seeded, summed independently ---------------------- */

#define LEDGER_MAX 256
typedef struct cell {
    char day[11];
    int type; /* 0 deposit, 1 withdrawal */
    char method[32];
    int64_t cents;
} cell;
static cell ledger[LEDGER_MAX];
static int nledger;

static void ledger_add(const char *day, int type, const char *method, int64_t cents)
{
    for (int i = 0; i < nledger; i++)
        if (!strcmp(ledger[i].day, day) && ledger[i].type == type && !strcmp(ledger[i].method, method)) {
            ledger[i].cents += cents;
            return;
        }
    assert_true(nledger < LEDGER_MAX);
    cell *c = &ledger[nledger++];
    snprintf(c->day, sizeof c->day, "%s", day);
    c->type = type;
    snprintf(c->method, sizeof c->method, "%s", method);
    c->cents = cents;
}

static int cmp_cell(const void *a, const void *b)
{
    const cell *x = a, *y = b;
    int d = strcmp(x->day, y->day);
    if (d) return d;
    if (x->type != y->type) return x->type - y->type;
    return strcmp(x->method, y->method);
}

/* The body the api must print for [from, to] (the contract's shape). */
static void expected(const char *from, const char *to, char *out, size_t n)
{
    cell v[LEDGER_MAX];
    int m = 0;
    for (int i = 0; i < nledger; i++)
        if (strcmp(ledger[i].day, from) >= 0 && strcmp(ledger[i].day, to) <= 0) v[m++] = ledger[i];
    qsort(v, (size_t)m, sizeof *v, cmp_cell);
    size_t w = (size_t)snprintf(out, n, "{\"data\":{");
    for (int i = 0; i < m;) {
        const char *day = v[i].day;
        w += (size_t)snprintf(out + w, n - w, "%s\"%s\":{", i ? "," : "", day);
        for (int type = 0; type < 2; type++) {
            w += (size_t)snprintf(out + w, n - w, "\"%s\":{", type ? "withdrawals" : "deposits");
            for (int first = 1; i < m && !strcmp(v[i].day, day) && v[i].type == type; i++, first = 0) {
                char amt[MONEY_FMT_MAX];
                size_t alen = money_format(v[i].cents, amt, sizeof amt);
                w += (size_t)snprintf(out + w, n - w, "%s\"%s\":%.*s", first ? "" : ",", v[i].method, (int)alen, amt);
            }
            w += (size_t)snprintf(out + w, n - w, type ? "}" : "},");
        }
        w += (size_t)snprintf(out + w, n - w, "}");
    }
    snprintf(out + w, n - w, "}}");
}

/* ---- seeding, through the cluster layer to each partition's slot ------------ */

static void pcmd(int p, const char *fmt, ...)
{
    /* rcluster_cmd has no va_list form: format the few commands used here as argv */
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    const char *argv[16];
    int argc = 0;
    for (char *s = strtok(buf, " "); s && argc < 16; s = strtok(NULL, " ")) argv[argc++] = s;
    redisReply *r = rcluster_cmd_argv(T.cl, T.parts[p].slot, argc, argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR)
        fail_msg("partition %d: %s: %s", p, argv[0], r ? r->str : rcluster_error(T.cl));
    freeReplyObject(r);
}

static const char *type_name(int type) { return type ? "withdrawal" : "deposit"; }

/* A hot amount in partition p, as the aggregator applies it (hot version bumped). */
static void hot(int p, const char *day, int type, const char *method, long long cents)
{
    char k[KEYS_NAME_MAX + 32];
    keys_agg(k, sizeof k, &T.parts[p], day, type_name(type));
    pcmd(p, "HINCRBY %s %s %lld", k, method, cents);
    pcmd(p, "SADD %s %s", T.parts[p].tracked, day);
    pcmd(p, "INCR %s", T.parts[p].hot_version);
    ledger_add(day, type, method, cents);
}

/* Partition p's freeze of day's hashes into batch b (the persistor's step 1,
 * one transaction in p's slot); archived_through raised to day. */
static void freeze(int p, const char *b, const char *day)
{
    const keys_part *k = &T.parts[p];
    char from0[96], from1[96], to0[128], to1[128], bk[96];
    keys_agg(from0, sizeof from0, k, day, "deposit");
    keys_agg(from1, sizeof from1, k, day, "withdrawal");
    keys_frozen(to0, sizeof to0, k, b, day, "deposit");
    keys_frozen(to1, sizeof to1, k, b, day, "withdrawal");
    keys_batch(bk, sizeof bk, k, b);
    /* RENAME of a missing key fails: rename only what exists */
    char lua[] = "for i = 1, 2 do if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[i + 2]) end end "
                 "redis.call('SREM', KEYS[5], ARGV[1]) "
                 "redis.call('HSET', KEYS[6], 'days', ARGV[1], 'fence', '1', 'state', 'frozen', 'created', '0') "
                 "redis.call('SADD', KEYS[7], ARGV[2]) redis.call('INCR', KEYS[8]) "
                 "local t = redis.call('GET', KEYS[9]) if not t or t < ARGV[1] then redis.call('SET', KEYS[9], ARGV[1]) end "
                 "return 1";
    const char *argv[] = {"EVAL", lua, "9", from0, from1, to0, to1, k->tracked, bk, k->archive_pending,
                          k->archive_version, k->archived_through, day, b};
    redisReply *r = rcluster_cmd_argv(T.cl, k->slot, (int)(sizeof argv / sizeof argv[0]), argv, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR) fail_msg("freeze in %d: %s", p, r ? r->str : rcluster_error(T.cl));
    freeReplyObject(r);
}

/* The persistor's clean-up of partition p's batch b (after MongoDB took it). */
static void clean(int p, const char *b, const char *day)
{
    const keys_part *k = &T.parts[p];
    char f0[128], f1[128], bk[96];
    keys_frozen(f0, sizeof f0, k, b, day, "deposit");
    keys_frozen(f1, sizeof f1, k, b, day, "withdrawal");
    keys_batch(bk, sizeof bk, k, b);
    pcmd(p, "DEL %s %s %s", f0, f1, bk);
    pcmd(p, "SREM %s %s", k->archive_pending, b);
    pcmd(p, "INCR %s", k->archive_version);
}

/* The persistor's guarded MongoDB write of one day of batch b: no ledger
 * change (the money only moves tier).  type/method/cents: what the frozen
 * hashes hold. */
static void doc_apply(const char *day, const char *side_method, long long cents, const char *batch)
{
    bson_t *f = BCON_NEW("date", BCON_UTF8(day));
    bson_t *u = BCON_NEW("$inc", "{", side_method, BCON_INT64(cents), "}", "$addToSet", "{", "batches",
                         BCON_UTF8(batch), "}");
    bson_t *o = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t e;
    if (!mongoc_collection_update_one(coll, f, u, o, NULL, &e)) fail_msg("mongo: %s", e.message);
    bson_destroy(f);
    bson_destroy(u);
    bson_destroy(o);
}

/* A document amount from history (archived long ago, through any partition). */
static void cold(const char *day, int type, const char *method, long long cents, const char *batch)
{
    char sm[64];
    snprintf(sm, sizeof sm, "%s.%s", type ? "withdrawals" : "deposits", method);
    doc_apply(day, sm, cents, batch);
    ledger_add(day, type, method, cents);
}

static int day_of(const char *s)
{
    int64_t d;
    assert_int_equal(ts_parse_day(s, strlen(s), &d), 0);
    return (int)d;
}

static int answer_with(const stats_env *e, const char *from, const char *to, char *err, size_t errlen)
{
    return stats_answer_tier(e, &T, &scratch, day_of(from), day_of(to), STATS_JSON, err, errlen);
}

static void expect_exact_with(const stats_env *e, const char *from, const char *to)
{
    char err[512] = "", want[8192];
    int rv = answer_with(e, from, to, err, sizeof err);
    if (rv != STATS_OK) fail_msg("status %d: %s", rv, err);
    expected(from, to, want, sizeof want);
    assert_string_equal(scratch.body, want);
}

static void expect_exact(const char *from, const char *to) { expect_exact_with(&env, from, to); }

static uint64_t counter(const char *name) { return metrics_value(metrics_counter(name, "", NULL)); }

/* ---- fixtures ------------------------------------------------------------------ */

static void flush_all(void)
{
    rconn *nodes[16];
    int n = rcluster_primaries(T.cl, nodes, 16);
    for (int i = 0; i < n; i++) {
        redisReply *r = rconn_cmd(nodes[i], "FLUSHALL");
        if (!r || r->type == REDIS_REPLY_ERROR) fail_msg("FLUSHALL: %s", r ? r->str : rconn_error(nodes[i]));
        freeReplyObject(r);
    }
}

static int setup_with(const txagg_config *c)
{
    cfg = *c;
    cfg.redis_partitions = NPARTS;
    char err[256];
    if (tier_init(&T, &cfg, "test-api-partitions", err, sizeof err)) fail_msg("%s", err);
    assert_true(T.tagged);
    assert_int_equal(T.n, NPARTS);
    flush_all();
    testenv_drop_mongo_db();
    assert_int_equal(tier_check_layout(&T, err, sizeof err), TIER_OK);
    mc = testenv_mongo();
    coll = mongoc_client_get_collection(mc, cfg.mongodb_database, cfg.mongodb_collection);
    if (mongo_ensure_index(coll, "date", 1, err, sizeof err)) fail_msg("%s", err);
    pool = mongo_pool_new(&cfg, "test", 0, err, sizeof err);
    assert_non_null(pool);
    cache = cold_cache_new(1 << 20);
    env = (stats_env){pool, cfg.mongodb_database, cfg.mongodb_collection, cache, 5, NULL};
    stats_init();
    assert_int_equal(stats_scratch_init(&scratch), 0);
    stats_set_after_cold_read_hook(NULL, NULL);
    nledger = 0;
    return 0;
}

static int setup(void **st)
{
    (void)st;
    txagg_config c;
    testenv_config(&c);
    return setup_with(&c);
}

static int setup_cluster(void **st)
{
    (void)st;
    txagg_config c;
    tcluster_config(&c, cdir);
    return setup_with(&c);
}

static int teardown(void **st)
{
    (void)st;
    stats_set_after_cold_read_hook(NULL, NULL);
    stats_scratch_free(&scratch);
    cold_cache_free(cache);
    mongoc_client_pool_destroy(pool);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(mc);
    tier_free(&T);
    return 0;
}

/* ---- the tests ----------------------------------------------------------------- */

/* Every tier of every partition: January 2026, archived through 01-10 in
 * partitions 1 and 3 (0 and 2 never archived). */
static void seed_every_state(void)
{
    /* the same cell hot in every partition: the answer is their sum */
    for (int p = 0; p < NPARTS; p++) hot(p, "2026-01-15", 0, "visa", 100 + p);
    hot(0, "2026-01-16", 1, "paypal", 7);
    hot(2, "2026-01-16", 1, "paypal", 11);
    hot(3, "2026-01-17", 0, "crypto", 5);
    /* history in MongoDB */
    cold("2026-01-02", 0, "visa", 1000, "000000000001-f1p1");
    cold("2026-01-03", 1, "paypal", 2000, "000000000001-f1p3");
    /* late hot rows on an archived day, in two partitions */
    hot(0, "2026-01-03", 1, "paypal", 3);
    hot(2, "2026-01-03", 1, "paypal", 4);
    /* partition 1: 01-04 frozen, not yet in the document (in flight) */
    hot(1, "2026-01-04", 0, "visa", 40);
    hot(1, "2026-01-04", 1, "visa", 41);
    freeze(1, "000000000002-f1p1", "2026-01-04");
    /* partition 3: 01-05 frozen and already written to the document (not yet cleaned): counted once */
    cold("2026-01-05", 0, "visa", 500, "000000000001-f1p3");
    hot(3, "2026-01-05", 0, "visa", 50);
    freeze(3, "000000000002-f1p3", "2026-01-05");
    doc_apply("2026-01-05", "deposits.visa", 50, "000000000002-f1p3");
    /* partition 0: 01-05 hot too, and a frozen batch of 01-06 of partition 2 (never archived before) */
    hot(0, "2026-01-05", 0, "visa", 9);
    hot(2, "2026-01-06", 0, "apple_pay", 12);
    freeze(2, "000000000001-f1p2", "2026-01-06");
    /* the archived-through days: 01-04 (p1), 01-05 (p3), 01-06 (p2): the greatest is 01-06 */
}

static void test_a_day_is_the_sum_over_partitions_frozen_batches_and_mongodb(void **st)
{
    (void)st;
    seed_every_state();
    expect_exact("2026-01-01", "2026-01-31");
    expect_exact("2026-01-01", "2026-01-31"); /* the cold cache */
    expect_exact("2026-01-05", "2026-01-05");
    expect_exact("2026-01-15", "2026-01-17");
    expect_exact("2026-02-01", "2026-02-28");
    /* the persistor finishes partition 1's batch: written, then cleaned — the same totals at each step */
    doc_apply("2026-01-04", "deposits.visa", 40, "000000000002-f1p1");
    expect_exact("2026-01-01", "2026-01-31");
    doc_apply("2026-01-04", "withdrawals.visa", 41, "000000000002-f1p1");
    expect_exact("2026-01-01", "2026-01-31");
    clean(1, "000000000002-f1p1", "2026-01-04");
    expect_exact("2026-01-01", "2026-01-31");
    /* and partition 3's */
    clean(3, "000000000002-f1p3", "2026-01-05");
    expect_exact("2026-01-01", "2026-01-31");
}

/* Untagged keys (today's names) are not this tier's: not counted. */
static void test_untagged_keys_are_not_read_by_a_partitioned_api(void **st)
{
    (void)st;
    hot(1, "2026-03-01", 0, "visa", 3);
    char k[64];
    keys_agg(k, sizeof k, NULL, "2026-03-01", "deposit");
    int slot = keys_slot(k, strlen(k));
    redisReply *r = rcluster_cmd(T.cl, slot, "HINCRBY %s visa 1000", k);
    assert_non_null(r);
    freeReplyObject(r);
    r = rcluster_cmd(T.cl, keys_slot(KEYS_TRACKED_DAYS, strlen(KEYS_TRACKED_DAYS)), "SADD %s 2026-03-01",
                     KEYS_TRACKED_DAYS);
    assert_non_null(r);
    freeReplyObject(r);
    expect_exact("2026-03-01", "2026-03-31");
}

/* Between the MongoDB read and the re-check, partition 2 freezes 01-05's
 * late rows and the persistor writes them to the document. */
static int hook_calls;
static void move_archive_in_partition_2(void *arg)
{
    (void)arg;
    if (hook_calls++) return;
    freeze(2, "000000000009-f1p2", "2026-01-05");
    doc_apply("2026-01-05", "deposits.visa", 5, "000000000009-f1p2");
}

static void test_an_archive_version_moving_in_one_partition_is_retried_not_double_counted(void **st)
{
    (void)st;
    pcmd(0, "SET %s 2026-01-10", T.parts[0].archived_through);
    cold("2026-01-05", 0, "visa", 100, "000000000001-f1p0");
    hot(2, "2026-01-05", 0, "visa", 5);
    hot(1, "2026-01-05", 0, "visa", 1);
    uint64_t retries = counter("txagg_api_consistency_retries_total");
    hook_calls = 0;
    stats_set_after_cold_read_hook(move_archive_in_partition_2, NULL);
    /* without the re-check of every partition: 5 + 1 + 105 */
    expect_exact("2026-01-01", "2026-01-10");
    stats_set_after_cold_read_hook(NULL, NULL);
    assert_int_equal(hook_calls, 2);
    assert_int_equal(counter("txagg_api_consistency_retries_total"), retries + 1);
}

/* A version bumped in one partition at every attempt: 503 (busy), never a sum. */
static void bump_partition_3(void *arg)
{
    (void)arg;
    hook_calls++;
    pcmd(3, "INCR %s", T.parts[3].archive_version);
}

static void test_an_archive_moving_at_every_attempt_gives_up_with_busy(void **st)
{
    (void)st;
    pcmd(0, "SET %s 2026-01-10", T.parts[0].archived_through);
    cold("2026-01-05", 0, "visa", 100, "000000000001-f1p0");
    hook_calls = 0;
    stats_set_after_cold_read_hook(bump_partition_3, NULL);
    char err[256];
    assert_int_equal(answer_with(&env, "2026-01-01", "2026-01-10", err, sizeof err), STATS_BUSY);
    stats_set_after_cold_read_hook(NULL, NULL);
    assert_int_equal(hook_calls, 5);
    assert_non_null(strstr(err, "moved"));
}

static void test_the_answer_cache_sees_a_change_in_any_partition(void **st)
{
    (void)st;
    stats_env ae = env;
    ae.answers = answer_cache_new(1 << 20);
    assert_non_null(ae.answers);
    metric *cached = metrics_counter("txagg_api_snapshots_total", "", "path=\"answer_cache\"");
    pcmd(1, "SET %s 2026-01-10", T.parts[1].archived_through);
    cold("2026-01-05", 0, "visa", 100, "000000000001-f1p1");
    for (int p = 0; p < NPARTS; p++) hot(p, "2026-01-12", 0, "visa", 1 + p);
    expect_exact_with(&ae, "2026-01-01", "2026-01-31");
    uint64_t hits = metrics_value(cached);
    expect_exact_with(&ae, "2026-01-01", "2026-01-31");
    assert_int_equal(metrics_value(cached), hits + 1);

    /* a write in partition 3 without its bump is not seen (the cache answers: the proof it is the cache) */
    char k[96], want[4096], err[256];
    keys_agg(k, sizeof k, &T.parts[3], "2026-01-12", "deposit");
    pcmd(3, "HINCRBY %s visa 1000", k);
    expected("2026-01-01", "2026-01-31", want, sizeof want);
    assert_int_equal(answer_with(&ae, "2026-01-01", "2026-01-31", err, sizeof err), STATS_OK);
    assert_string_equal(scratch.body, want);
    ledger_add("2026-01-12", 0, "visa", 1000);
    /* each partition's hot version in turn: the body is computed again, exact */
    for (int p = 0; p < NPARTS; p++) {
        hits = metrics_value(cached);
        pcmd(p, "INCR %s", T.parts[p].hot_version);
        expect_exact_with(&ae, "2026-01-01", "2026-01-31");
        assert_int_equal(metrics_value(cached), hits);
        expect_exact_with(&ae, "2026-01-01", "2026-01-31");
        assert_int_equal(metrics_value(cached), hits + 1);
    }
    /* a freeze in partition 2 bumps only its archive version: computed again, exact */
    hot(2, "2026-01-13", 1, "paypal", 5);
    expect_exact_with(&ae, "2026-01-01", "2026-01-31");
    keys_agg(k, sizeof k, &T.parts[2], "2026-01-13", "withdrawal");
    pcmd(2, "HINCRBY %s paypal 70", k); /* no hot bump: only the freeze's archive bump makes it seen */
    ledger_add("2026-01-13", 1, "paypal", 70);
    freeze(2, "000000000003-f1p2", "2026-01-13");
    hits = metrics_value(cached);
    expect_exact_with(&ae, "2026-01-01", "2026-01-31");
    assert_int_equal(metrics_value(cached), hits);
    answer_cache_free(ae.answers);
}

static void test_redis_unreachable_is_503_naming_the_partition_never_a_partial_sum(void **st)
{
    (void)st;
    hot(0, "2026-01-12", 0, "visa", 1);
    txagg_config bad = cfg;
    bad.redis_port = 1;
    bad.redis_cluster[0] = '\0';
    bad.redis_timeout_ms = 300;
    tier down;
    char err[512];
    assert_int_equal(tier_init(&down, &bad, "down", err, sizeof err), 0);
    assert_int_equal(stats_answer_tier(&env, &down, &scratch, day_of("2026-01-01"), day_of("2026-01-31"), STATS_JSON,
                                       err, sizeof err),
                     STATS_UNAVAILABLE);
    if (!strstr(err, "Redis partition 0 of 4 ({p0:")) fail_msg("detail '%s'", err);
    assert_non_null(strstr(err, "unavailable"));
    tier_free(&down);
}

/* ---- the cluster ------------------------------------------------------------------ */

static void replicate_all(void)
{
    for (int p = 0; p < NPARTS; p++) {
        redisReply *r = rcluster_cmd(T.cl, T.parts[p].slot, "WAIT 1 5000");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, 1); /* the replica holds everything: it must survive the failover */
        freeReplyObject(r);
    }
}

static void test_cluster_partitions_spread_over_the_primaries(void **st)
{
    (void)st;
    /* 4 tags over 16384 slots: not all on one node of 3 primaries */
    int ports[NPARTS], distinct = 0;
    for (int p = 0; p < NPARTS; p++) {
        rconn *rc = tier_conn(&T, p);
        assert_non_null(rc);
        ports[p] = rconn_port(rc);
        int seen = 0;
        for (int q = 0; q < p; q++) seen |= ports[q] == ports[p];
        distinct += !seen;
    }
    assert_true(distinct >= 2);
}

static void test_stats_in_a_loop_while_a_partitions_primary_is_killed_is_exact_or_503(void **st)
{
    (void)st;
    seed_every_state();
    replicate_all();
    expect_exact("2026-01-01", "2026-01-31");
    tcluster_killer k;
    assert_int_equal(tcluster_kill_start(&k, cdir, T.parts[1].slot, 0), 0);
    int64_t deadline = sig_now_ms() + 180000;
    int ok = 0, unavailable = 0, ok_after = 0;
    char want[8192];
    expected("2026-01-01", "2026-01-31", want, sizeof want);
    while (sig_now_ms() < deadline && !ok_after) {
        int was_done = tcluster_kill_done(&k);
        char err[512] = "";
        int rv = answer_with(&env, "2026-01-01", "2026-01-31", err, sizeof err);
        if (rv == STATS_OK) {
            ok++;
            if (strcmp(scratch.body, want) != 0) fail_msg("a 200 that is not exact:\n%s\nwant\n%s", scratch.body, want);
            ok_after = was_done;
        } else {
            if (rv != STATS_UNAVAILABLE) fail_msg("status %d (not 503): %s", rv, err);
            if (!strstr(err, "Redis")) fail_msg("503 without a clear detail: %s", err);
            if (unavailable++ == 0) print_message("# first 503: %s\n", err);
            sig_sleep_ms(20);
        }
    }
    int killed = -1, promoted = -1;
    int killed_rc = tcluster_kill_wait(&k, &killed, &promoted);
    print_message("# failover of partition 1's primary (%s): %d exact answers, %d unavailable\n", k.out, ok,
                  unavailable);
    assert_int_equal(killed_rc, 0);
    assert_true(ok_after);
    /* the promoted replica serves partition 1 now, and the data is whole */
    assert_int_equal(rconn_port(tier_conn(&T, 1)), promoted);
    /* the persistor goes on after the failover: the same totals */
    doc_apply("2026-01-04", "deposits.visa", 40, "000000000002-f1p1");
    doc_apply("2026-01-04", "withdrawals.visa", 41, "000000000002-f1p1");
    clean(1, "000000000002-f1p1", "2026-01-04");
    hot(1, "2026-01-18", 0, "visa", 77);
    expect_exact("2026-01-01", "2026-01-31");
}

/* A live resharding of partition 2's slot, left in the middle (one key
 * moved): the partition cannot be read atomically there, so every answer
 * is exact or 503 naming it; once the slot has moved, exact from the new
 * primary (MOVED followed). */
static void test_a_partition_in_the_middle_of_a_live_reshard_is_exact_or_503(void **st)
{
    (void)st;
    seed_every_state();
    expect_exact("2026-01-01", "2026-01-31");
    int slot = T.parts[2].slot, owner = rconn_port(tier_conn(&T, 2));
    char other[32], want[8192];
    assert_int_equal(tcluster_out(other, sizeof other, "cluster_other_primary %s %d", cdir, owner), 0);
    assert_int_equal(tcluster_sh("cluster_migrate_begin %s %d %s 1", cdir, slot, other), 0);
    expected("2026-01-01", "2026-01-31", want, sizeof want);
    int unavailable = 0;
    for (int i = 0; i < 3; i++) {
        char err[512] = "";
        int rv = answer_with(&env, "2026-01-01", "2026-01-31", err, sizeof err);
        if (rv == STATS_OK) {
            assert_string_equal(scratch.body, want);
        } else {
            if (rv != STATS_UNAVAILABLE || !strstr(err, "Redis partition 2 of 4")) fail_msg("status %d: %s", rv, err);
            if (unavailable++ == 0) fprintf(stderr, "# mid-migration: %s\n", err);
        }
    }
    /* every key of partition 2 is read for January: with one of them moved, no atomic read is possible */
    assert_int_equal(unavailable, 3);
    assert_int_equal(tcluster_sh("cluster_migrate_finish %s %d", cdir, slot), 0);
    expect_exact("2026-01-01", "2026-01-31");
    assert_int_equal(rconn_port(tier_conn(&T, 2)), atoi(other));
    /* and the other partitions never noticed */
    hot(0, "2026-01-20", 0, "visa", 1);
    hot(2, "2026-01-20", 0, "visa", 2);
    expect_exact("2026-01-01", "2026-01-31");
}

static int cluster_group_setup(void **st)
{
    (void)st;
    if (tcluster_start("api-partitions", cdir, sizeof cdir, &cfg) != 0) return -1;
    return 0;
}

static int cluster_group_teardown(void **st)
{
    (void)st;
    tcluster_stop(cdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest one_redis[] = {
        cmocka_unit_test_setup_teardown(test_a_day_is_the_sum_over_partitions_frozen_batches_and_mongodb, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_untagged_keys_are_not_read_by_a_partitioned_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_archive_version_moving_in_one_partition_is_retried_not_double_counted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_archive_moving_at_every_attempt_gives_up_with_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_answer_cache_sees_a_change_in_any_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_unreachable_is_503_naming_the_partition_never_a_partial_sum, setup,
                                        teardown),
        /* the same on a real cluster (started by the group setup) */
        cmocka_unit_test_setup_teardown(test_a_day_is_the_sum_over_partitions_frozen_batches_and_mongodb,
                                        setup_cluster, teardown),
        cmocka_unit_test_setup_teardown(test_an_archive_version_moving_in_one_partition_is_retried_not_double_counted,
                                        setup_cluster, teardown),
        cmocka_unit_test_setup_teardown(test_the_answer_cache_sees_a_change_in_any_partition, setup_cluster, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_partitions_spread_over_the_primaries, setup_cluster, teardown),
        cmocka_unit_test_setup_teardown(test_a_partition_in_the_middle_of_a_live_reshard_is_exact_or_503,
                                        setup_cluster, teardown),
        cmocka_unit_test_setup_teardown(test_stats_in_a_loop_while_a_partitions_primary_is_killed_is_exact_or_503,
                                        setup_cluster, teardown),
    };
    return testenv_run(one_redis, cluster_group_setup, cluster_group_teardown);
}
