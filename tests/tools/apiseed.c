/*
 * apiseed — test tool: writes the hot, frozen and cold tiers with the
 * documented schema (docs/CONTRACTS.md, common/keys.h), and drives archive
 * migrations the way the persistor does, so the API can be tested before
 * and independently of the persistor.
 *
 *   apiseed < commands           one command per line:
 *     hot DAY TYPE METHOD CENTS           HINCRBY agg:DAY:TYPE, SADD tracked_days
 *     frozen BATCH DAY TYPE METHOD CENTS  HINCRBY archive:frozen:BATCH:DAY:TYPE
 *     pending BATCH DAY[,DAY…]            archive:batch:BATCH {days,fence,state,created}, SADD pending
 *     doc DAY TYPE METHOD CENTS           MongoDB upsert {date: DAY} $inc {TYPEs.METHOD: CENTS}
 *     docbatch DAY BATCH                  MongoDB upsert {date: DAY} $addToSet {batches: BATCH}
 *     through DAY                         SET system:archived_through
 *     version N                           SET system:archive_version
 *   TYPE is deposit or withdrawal; CENTS an integer.  The unique index on
 *   `date` is created first.  Every command that writes Redis also INCRs
 *   system:hot_version, as the aggregator does when it writes a hash (the
 *   api's answer cache relies on it).  Exit 0, or 1 with a message.
 *
 *   apiseed migrate --stop-file F [--progress-file P] [--min-rounds N] [--max-rounds N]
 *                   [--late-from DAY --late-to DAY] [--boundary DAY] [--pause-us N]
 *     Rounds until F exists (and at least N rounds ran):
 *       1. late rows: one MULTI adding 1 cent to method "late" (deposits) of every day in
 *          [late-from, late-to], SADD tracked_days, INCR hot_version;
 *       2. freeze: one MULTI renaming the agg hashes of the tracked days <= boundary to
 *          frozen keys of a new batch, SREM them, recording the batch, SADD pending, INCR version;
 *       3. per day, one guarded upsert into MongoDB ($inc of the frozen cents and $addToSet of
 *          the batch in one update; filter batches != batch), pause-us between days;
 *       4. clean: one MULTI deleting the frozen keys, SREM pending, raising archived_through,
 *          INCR version.
 *     Writes the number of rounds done to P after each round; prints "rounds=N" when it stops.
 *
 * A slow machine never costs a write nor doubles one: every Redis write goes
 * in one MULTI … EXEC settled after a reply timeout (tests/tools/settle.h),
 * every read is sent again after a reconnect, and MongoDB calls get a
 * 60 s timeout (MONGODB_TIMEOUT_MS when longer): the upserts of `doc` are not
 * idempotent, so they are given time rather than retried.
 */
#include "config.h"
#include "keys.h"
#include "log.h"
#include "mongo.h"
#include "redis.h"
#include "timeparse.h"
#include "txn.h"

#include "settle.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static txagg_config cfg;
static rconn *rc;
static settle st;
static mongoc_client_t *mc;
static mongoc_collection_t *coll;

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "apiseed: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    exit(1);
}

/* A read (or an idempotent command), sent again after a reconnect. */
static redisReply *rread(const char *fmt, const char *a)
{
    redisReply *r = settle_cmd(&st, fmt, a);
    if (!r) die("redis: %s", st.err);
    if (r->type == REDIS_REPLY_ERROR) die("redis error: %s", r->str);
    return r;
}

typedef struct cmdlist {
    int n;
    char **cmds;
} cmdlist;

static int append_cmds(redisContext *c, void *arg)
{
    const cmdlist *l = arg;
    for (int i = 0; i < l->n; i++) redisAppendCommand(c, l->cmds[i]);
    return l->n;
}

/* The commands in one MULTI, applied exactly once (settle.h).  EXEC's reply,
 * or NULL when it was lost (the batch applied all the same). */
static redisReply *multi_exec(int n, char **cmds)
{
    cmdlist l = {n, cmds};
    redisReply *r;
    if (settle_exec(&st, append_cmds, &l, &r) != 0) die("redis: %s", st.err);
    for (size_t i = 0; r && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR) die("redis error in transaction: %s", r->element[i]->str);
    return r;
}

/* seed_line's writes: one MULTI per line, which also moves the hot version
 * as every writer of the hot tier does (the api's answer cache keys on it). */
static void seed_exec(int n, char (*cmd)[300])
{
    char *cmds[5], incr[64];
    for (int i = 0; i < n; i++) cmds[i] = cmd[i];
    snprintf(incr, sizeof incr, "INCR %s", KEYS_HOT_VERSION);
    cmds[n] = incr;
    freeReplyObject(multi_exec(n + 1, cmds));
}

static void mongo_update(const char *day, bson_t *filter_extra, bson_t *update)
{
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "date", day);
    if (filter_extra) bson_concat(&filter, filter_extra);
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t e;
    bool ok = mongoc_collection_update_one(coll, &filter, update, opts, NULL, &e);
    bson_destroy(&filter);
    bson_destroy(opts);
    if (!ok && !mongo_is_duplicate_key(&e)) die("mongodb update: %s", e.message);
}

static void check_day(const char *d)
{
    int64_t x;
    if (ts_parse_day(d, strlen(d), &x)) die("not a day: %s", d);
}

static const char *check_type(const char *t)
{
    int k = txn_type_parse(t, strlen(t));
    if (k < 0) die("not a type: %s", t);
    return txn_type_name(k);
}

static void seed_line(char *line)
{
    char *w[8];
    int n = 0;
    for (char *t = strtok(line, " \t\r\n"); t && n < 8; t = strtok(NULL, " \t\r\n")) w[n++] = t;
    if (n == 0 || w[0][0] == '#') return;
    char key[256], c[2][300];
    if (!strcmp(w[0], "hot") && n == 5) {
        check_day(w[1]);
        keys_agg(key, sizeof key, NULL, w[1], check_type(w[2]));
        snprintf(c[0], sizeof c[0], "HINCRBY %.200s %.40s %.40s", key, w[3], w[4]);
        snprintf(c[1], sizeof c[1], "SADD %s %.15s", KEYS_TRACKED_DAYS, w[1]);
        seed_exec(2, c);
    } else if (!strcmp(w[0], "frozen") && n == 6) {
        check_day(w[2]);
        keys_frozen(key, sizeof key, NULL, w[1], w[2], check_type(w[3]));
        snprintf(c[0], sizeof c[0], "HINCRBY %.200s %.40s %.40s", key, w[4], w[5]);
        seed_exec(1, c);
    } else if (!strcmp(w[0], "pending") && n == 3) {
        keys_batch(key, sizeof key, NULL, w[1]);
        snprintf(c[0], sizeof c[0], "HSET %.100s days %.120s fence 1 state frozen created %lld", key, w[2],
                 (long long)time(NULL));
        snprintf(c[1], sizeof c[1], "SADD %s %.60s", KEYS_ARCHIVE_PENDING, w[1]);
        seed_exec(2, c);
    } else if (!strcmp(w[0], "doc") && n == 5) {
        check_day(w[1]);
        int k = txn_type_parse(w[2], strlen(w[2]));
        if (k < 0) die("not a type: %s", w[2]);
        char path[128];
        snprintf(path, sizeof path, "%s.%s", txn_type_plural(k), w[3]);
        bson_t *u = BCON_NEW("$inc", "{", path, BCON_INT64(strtoll(w[4], NULL, 10)), "}");
        mongo_update(w[1], NULL, u);
        bson_destroy(u);
    } else if (!strcmp(w[0], "docbatch") && n == 3) {
        check_day(w[1]);
        bson_t *u = BCON_NEW("$addToSet", "{", "batches", BCON_UTF8(w[2]), "}");
        mongo_update(w[1], NULL, u);
        bson_destroy(u);
    } else if (!strcmp(w[0], "through") && n == 2) {
        check_day(w[1]);
        snprintf(c[0], sizeof c[0], "SET %s %.15s", KEYS_ARCHIVED_THROUGH, w[1]);
        seed_exec(1, c);
    } else if (!strcmp(w[0], "version") && n == 2) {
        snprintf(c[0], sizeof c[0], "SET %s %.40s", KEYS_ARCHIVE_VERSION, w[1]);
        seed_exec(1, c);
    } else {
        die("bad command: %s", w[0]);
    }
}

/* ---- migrate -------------------------------------------------------------- */

typedef struct opts {
    const char *stop_file;
    const char *progress_file;
    long min_rounds, max_rounds, pause_us;
    char late_from[16], late_to[16], boundary[16];
} opts;

/* INCR of the archive sequence, its value kept in a key of ours by the same
 * script, so a lost reply is read back (settle.h applies the batch once). */
static char incr_key[160];

static int append_incr(redisContext *c, void *arg)
{
    (void)arg;
    redisAppendCommand(c, "EVAL %s 2 %s %s",
                       "local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[2], n, 'PX', 3600000) return n",
                       KEYS_ARCHIVE_SEQ, incr_key);
    return 1;
}

static long long next_seq(void)
{
    redisReply *r;
    snprintf(incr_key, sizeof incr_key, "%s:seq", st.marker);
    if (settle_exec(&st, append_incr, NULL, &r) != 0) die("redis: %s", st.err);
    long long n;
    if (r) {
        if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER) die("redis: %s", "INCR failed");
        n = r->element[0]->integer;
    } else {
        r = rread("GET %s", incr_key);
        if (r->type != REDIS_REPLY_STRING) die("redis: %s", "the sequence's value is lost");
        n = atoll(r->str);
    }
    freeReplyObject(r);
    return n;
}

static int exists(const char *key)
{
    redisReply *r = rread("EXISTS %s", key);
    int e = r->integer > 0;
    freeReplyObject(r);
    return e;
}

/* One freeze / upsert / clean round.  Returns 1 when something was archived. */
static int archive_round(const opts *o)
{
    redisReply *r = rread("SMEMBERS %s", KEYS_TRACKED_DAYS);
    if (r->type != REDIS_REPLY_ARRAY) die("redis: %s", "SMEMBERS failed");
    char days[512][16];
    int nd = 0;
    for (size_t i = 0; i < r->elements && nd < 512; i++)
        if (strcmp(r->element[i]->str, o->boundary) <= 0) snprintf(days[nd++], 16, "%s", r->element[i]->str);
    freeReplyObject(r);
    if (nd == 0) return 0;

    char batch[32];
    snprintf(batch, sizeof batch, "t%lld", next_seq());

    /* 1. freeze */
    static char cmdbuf[2048][300];
    char *cmds[2048];
    int nc = 0;
    char daylist[512 * 11 + 1] = "";
    char maxday[16] = "";
    for (int i = 0; i < nd; i++) {
        for (int t = 0; t < TXN_TYPES; t++) {
            char from[128], to[160];
            keys_agg(from, sizeof from, NULL, days[i], txn_type_name(t));
            keys_frozen(to, sizeof to, NULL, batch, days[i], txn_type_name(t));
            if (exists(from)) snprintf(cmds[nc] = cmdbuf[nc], 300, "RENAME %s %s", from, to), nc++;
        }
        snprintf(cmds[nc] = cmdbuf[nc], 300, "SREM %s %.15s", KEYS_TRACKED_DAYS, days[i]), nc++;
        if (i) strcat(daylist, ",");
        strcat(daylist, days[i]);
        if (strcmp(days[i], maxday) > 0) snprintf(maxday, sizeof maxday, "%.15s", days[i]);
    }
    char bkey[64];
    static char hset[sizeof daylist + 256];
    keys_batch(bkey, sizeof bkey, NULL, batch);
    snprintf(hset, sizeof hset, "HSET %s days %s fence 1 state frozen created %lld", bkey, daylist,
             (long long)time(NULL));
    cmds[nc++] = hset;
    snprintf(cmds[nc] = cmdbuf[nc], 300, "SADD %s %s", KEYS_ARCHIVE_PENDING, batch), nc++;
    snprintf(cmds[nc] = cmdbuf[nc], 300, "INCR %s", KEYS_ARCHIVE_VERSION), nc++;
    freeReplyObject(multi_exec(nc, cmds));

    /* 2. one guarded upsert per day */
    for (int i = 0; i < nd; i++) {
        bson_t inc = BSON_INITIALIZER;
        int any = 0;
        for (int t = 0; t < TXN_TYPES; t++) {
            char fk[160];
            keys_frozen(fk, sizeof fk, NULL, batch, days[i], txn_type_name(t));
            r = rread("HGETALL %s", fk);
            if (r->type != REDIS_REPLY_ARRAY) die("redis: %s", "HGETALL failed");
            for (size_t k = 0; k + 1 < r->elements; k += 2) {
                char path[128];
                snprintf(path, sizeof path, "%s.%s", txn_type_plural(t), r->element[k]->str);
                BSON_APPEND_INT64(&inc, path, strtoll(r->element[k + 1]->str, NULL, 10));
                any = 1;
            }
            freeReplyObject(r);
        }
        bson_t *u = BCON_NEW("$addToSet", "{", "batches", BCON_UTF8(batch), "}");
        if (any) BSON_APPEND_DOCUMENT(u, "$inc", &inc);
        bson_t *f = BCON_NEW("batches", "{", "$ne", BCON_UTF8(batch), "}");
        mongo_update(days[i], f, u);
        bson_destroy(f);
        bson_destroy(u);
        bson_destroy(&inc);
        if (o->pause_us) usleep((useconds_t)o->pause_us);
    }

    /* 3. clean */
    nc = 0;
    for (int i = 0; i < nd; i++)
        for (int t = 0; t < TXN_TYPES; t++) {
            char fk[160];
            keys_frozen(fk, sizeof fk, NULL, batch, days[i], txn_type_name(t));
            snprintf(cmds[nc] = cmdbuf[nc], 300, "DEL %s", fk), nc++;
        }
    snprintf(cmds[nc] = cmdbuf[nc], 300, "SREM %s %s", KEYS_ARCHIVE_PENDING, batch), nc++;
    r = rread("GET %s", KEYS_ARCHIVED_THROUGH);
    if (r->type != REDIS_REPLY_STRING || strcmp(r->str, maxday) < 0)
        snprintf(cmds[nc] = cmdbuf[nc], 300, "SET %s %s", KEYS_ARCHIVED_THROUGH, maxday), nc++;
    freeReplyObject(r);
    snprintf(cmds[nc] = cmdbuf[nc], 300, "INCR %s", KEYS_ARCHIVE_VERSION), nc++;
    freeReplyObject(multi_exec(nc, cmds));
    return 1;
}

static void late_rows(const opts *o)
{
    int64_t a, b;
    if (ts_parse_day(o->late_from, strlen(o->late_from), &a) || ts_parse_day(o->late_to, strlen(o->late_to), &b))
        return;
    static char cmdbuf[2048][300];
    char *cmds[2048];
    int nc = 0;
    for (int64_t d = a; d <= b && nc + 2 < 2048; d++) {
        char day[TS_DAY_LEN + 1], key[128];
        ts_format_day(d, day);
        keys_agg(key, sizeof key, NULL, day, txn_type_name(TXN_DEPOSIT));
        snprintf(cmds[nc] = cmdbuf[nc], 300, "HINCRBY %s late 1", key), nc++;
        snprintf(cmds[nc] = cmdbuf[nc], 300, "SADD %s %s", KEYS_TRACKED_DAYS, day), nc++;
    }
    snprintf(cmds[nc] = cmdbuf[nc], 300, "INCR %s", KEYS_HOT_VERSION), nc++;
    freeReplyObject(multi_exec(nc, cmds));
}

static int migrate(int argc, char **argv)
{
    opts o = {NULL, NULL, 1, 100000, 0, "", "", "9999-12-31"};
    for (int i = 0; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--stop-file")) o.stop_file = argv[i + 1];
        else if (!strcmp(argv[i], "--progress-file")) o.progress_file = argv[i + 1];
        else if (!strcmp(argv[i], "--min-rounds")) o.min_rounds = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-rounds")) o.max_rounds = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--pause-us")) o.pause_us = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--late-from")) snprintf(o.late_from, sizeof o.late_from, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--late-to")) snprintf(o.late_to, sizeof o.late_to, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--boundary")) snprintf(o.boundary, sizeof o.boundary, "%s", argv[i + 1]);
        else die("unknown migrate option %s", argv[i]);
    }
    if (!o.stop_file) die("%s", "migrate needs --stop-file");
    long rounds = 0;
    while (rounds < o.max_rounds && (rounds < o.min_rounds || access(o.stop_file, F_OK) != 0)) {
        late_rows(&o);
        archive_round(&o);
        rounds++;
        if (o.progress_file) {
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", o.progress_file);
            FILE *f = fopen(tmp, "w");
            if (f) {
                fprintf(f, "%ld\n", rounds);
                fclose(f);
                rename(tmp, o.progress_file);
            }
        }
    }
    printf("rounds=%ld\n", rounds);
    return 0;
}

int main(int argc, char **argv)
{
    char err[512];
    if (config_load(&cfg, CFG_ALL, err, sizeof err)) die("%s", err);
    log_init("apiseed", cfg.log_level);
    rc = rconn_new(&cfg, "apiseed");
    if (rconn_ensure(rc)) die("redis: %s", rconn_error(rc));
    settle_init(&st, rc, "apiseed");
    if (cfg.mongodb_timeout_ms < 60000) cfg.mongodb_timeout_ms = 60000;
    mongo_global_init();
    mc = mongo_client_new(&cfg, "apiseed", err, sizeof err);
    if (!mc) die("%s", err);
    coll = mongoc_client_get_collection(mc, cfg.mongodb_database, cfg.mongodb_collection);
    if (mongo_ensure_index(coll, "date", 1, err, sizeof err)) die("%s", err);

    int rv = 0;
    if (argc > 1 && !strcmp(argv[1], "migrate")) {
        rv = migrate(argc - 2, argv + 2);
    } else {
        char line[1024];
        while (fgets(line, sizeof line, stdin)) seed_line(line);
    }
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(mc);
    mongo_global_cleanup();
    rconn_free(rc);
    return rv;
}
