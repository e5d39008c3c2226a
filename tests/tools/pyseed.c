/*
 * pyseed — the Python service's data, written the way it wrote it, for the
 * switch-over tests (`persistor migrate`), and the views the tests compare.
 * It shares no code with the migration: amounts are generated as integer
 * cents (the truth) and written as that service did — dollars through
 * HINCRBYFLOAT (Redis computes the long-double text), MongoDB documents of
 * doubles merged with $inc (the server adds the doubles), a naive clock,
 * stream entries in its field format.
 *
 *   pyseed seed PREFIX NDOCS
 *       NDOCS day documents ending 2026-01-23 (amounts as doubles, some merged
 *       by a second $inc, `last_updated`), one of them holding deposits.visa =
 *       12.3456; hot hashes for 2026-01-22 … 2026-01-31 (so 01-22 and 01-23
 *       are in both tiers) with their days in system:tracked_days; the clock
 *       "2026-01-31T23:59:58.123456"; one agg:* key that is not a daily hash;
 *       the stream `transactions` with group `aggregators`: 20 entries
 *       delivered to consumer py-worker-a and acknowledged (already in the
 *       hashes), 15 delivered to py-worker-b and pending, 25 undelivered (2 of
 *       them invalid by txagg's rules: 12.3456 dollars, type refund).
 *       Writes PREFIX.truth.json ({day: {type: {method: cents}}}, what /stats
 *       must answer once the bad value is repaired to 12.35) and PREFIX.info
 *       (key=value: bad_date, first_day, last_day, docs, hashes, pending,
 *       undelivered, invalid, hot_cents, cold_cents).
 *   pyseed dump            every Redis key (type and content; streams with
 *                          their groups and pending entries) and every
 *                          document (canonical extended JSON), sorted
 *   pyseed doc DATE        the document of DATE (canonical extended JSON)
 *   pyseed state           docs=N txagg_docs=N plan_left=N
 *   pyseed fix DATE SIDE METHOD DOLLARS   $set SIDE.METHOD to a double (an
 *                          operator repairing a refused value)
 *   pyseed reset           FLUSHALL and drop the collection
 *
 * Connection settings come from the environment like every binary's, with
 * Redis and MongoDB timeouts of at least 60 s: a loaded machine cannot hit
 * them, so no write's outcome is left unknown.  (It cannot settle one the
 * way tests/tools/settle.h does: a marker key would show in `dump`, which
 * lists every key, and the Python service it imitates wrote no markers.)
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "mongo.h"
#include "redis.h"
#include "timeparse.h"

#define NMETHODS 6
#define MAXDAYS 2000

static txagg_config cfg;
static rconn *rc;
static mongoc_client_t *mc;
static mongoc_collection_t *coll;

static const char *const methods[NMETHODS] = {"visa", "mastercard", "paypal", "apple_pay", "bank_transfer", "crypto"};
static const char *const types[2] = {"deposit", "withdrawal"};
static const char *const plurals[2] = {"deposits", "withdrawals"};

static void die(const char *what)
{
    fprintf(stderr, "pyseed: %s\n", what);
    exit(2);
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisContext *c = rconn_ctx(rc);
    if (!c) die("redis not connected");
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "pyseed: redis: %s\n", r ? r->str : "I/O error");
        exit(2);
    }
    return r;
}

static void mongo_open(void)
{
    char err[256];
    mongo_global_init();
    mc = mongo_client_new(&cfg, "pyseed", err, sizeof err);
    if (!mc) die(err);
    coll = mongoc_client_get_collection(mc, cfg.mongodb_database, cfg.mongodb_collection);
}

static uint64_t rng = UINT64_C(88172645463325252);
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * UINT64_C(2685821657736338717);
}

/* Mostly everyday amounts; now and then up to 1e9 dollars (float error grows). */
static int64_t random_cents(void)
{
    if (rnd() % 40 == 0) return 1 + (int64_t)(rnd() % UINT64_C(100000000000));
    return 1 + (int64_t)(rnd() % 500000);
}

static void dollars(int64_t cents, char *buf, size_t n)
{
    snprintf(buf, n, "%" PRId64 ".%02" PRId64, cents / 100, cents % 100);
}

/* ---- the truth ------------------------------------------------------------ */

static int64_t first_day;
static int64_t truth[MAXDAYS][2][NMETHODS];
static int64_t hot_cents, cold_cents;

static void credit(int64_t day, int type, int m, int64_t cents)
{
    if (day < first_day || day >= first_day + MAXDAYS) die("day out of the truth's range");
    truth[day - first_day][type][m] += cents;
}

static void write_truth(const char *prefix)
{
    char path[512];
    snprintf(path, sizeof path, "%s.truth.json", prefix);
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write the truth");
    fprintf(f, "{");
    int firstd = 1;
    for (int d = 0; d < MAXDAYS; d++) {
        int any = 0;
        for (int t = 0; t < 2; t++)
            for (int m = 0; m < NMETHODS; m++) any |= truth[d][t][m] != 0;
        if (!any) continue;
        char day[TS_DAY_LEN + 1];
        ts_format_day(first_day + d, day);
        fprintf(f, "%s\"%s\": {", firstd ? "" : ", ", day);
        firstd = 0;
        for (int t = 0; t < 2; t++) {
            fprintf(f, "%s\"%s\": {", t ? ", " : "", types[t]);
            int firstm = 1;
            for (int m = 0; m < NMETHODS; m++) {
                if (!truth[d][t][m]) continue;
                fprintf(f, "%s\"%s\": %" PRId64, firstm ? "" : ", ", methods[m], truth[d][t][m]);
                firstm = 0;
            }
            fprintf(f, "}");
        }
        fprintf(f, "}");
    }
    fprintf(f, "}\n");
    fclose(f);
}

/* ---- writing like the Python service ------------------------------------- */

/* HINCRBYFLOAT key field <dollars>; returns Redis's text in out. */
static void hincrbyfloat(const char *key, const char *field, int64_t cents, char *out, size_t n)
{
    char d[32];
    dollars(cents, d, sizeof d);
    redisReply *r = cmd("HINCRBYFLOAT %s %s %s", key, field, d);
    snprintf(out, n, "%s", r->str);
    freeReplyObject(r);
}

/* One archival of the Python persistor: the hash value it read (k amounts
 * summed by HINCRBYFLOAT), as float(text). */
static double archived_value(int64_t day, int type, int m, int k)
{
    char text[64];
    freeReplyObject(cmd("DEL pyseed:scratch"));
    for (int i = 0; i < k; i++) {
        int64_t c = random_cents();
        credit(day, type, m, c);
        cold_cents += c;
        hincrbyfloat("pyseed:scratch", "v", c, text, sizeof text);
    }
    freeReplyObject(cmd("DEL pyseed:scratch"));
    return strtod(text, NULL);
}

/* The same for one given amount. */
static double archived_fixed(int64_t day, int type, int m, int64_t cents)
{
    char text[64];
    freeReplyObject(cmd("DEL pyseed:scratch"));
    hincrbyfloat("pyseed:scratch", "v", cents, text, sizeof text);
    freeReplyObject(cmd("DEL pyseed:scratch"));
    credit(day, type, m, cents);
    cold_cents += cents;
    return strtod(text, NULL);
}

/* The documents are inserted in one insert_many, then the second archivals
 * of some days are $inc'ed into them (the server adds the doubles). */
static void seed_docs(int ndocs, int64_t last_day, int64_t bad_day, int *docs)
{
    int64_t now_ms = INT64_C(1769904000000);
    bson_t **all = calloc((size_t)ndocs, sizeof *all);
    bson_t **incs = calloc((size_t)ndocs, sizeof *incs);
    if (!all || !incs) die("out of memory");
    for (int i = 0; i < ndocs; i++) {
        int64_t day = last_day - ndocs + 1 + i;
        char date[TS_DAY_LEN + 1];
        ts_format_day(day, date);
        bson_t *doc = all[i] = BCON_NEW("date", BCON_UTF8(date));
        bson_t *inc = incs[i] = bson_new();
        for (int t = 0; t < 2; t++) {
            bson_t side;
            BSON_APPEND_DOCUMENT_BEGIN(doc, plurals[t], &side);
            for (int m = 0; m < NMETHODS; m++) {
                if (day == bad_day && t == 0 && m == 0) {
                    BSON_APPEND_DOUBLE(&side, "visa", 12.3456); /* not a sum of 2-decimal amounts */
                    credit(day, 0, 0, 1235);                    /* what the operator repairs it to */
                    cold_cents += 1235;
                    continue;
                }
                if (i == 0 && t == 1 && m == 5) { /* whole dollars: HINCRBYFLOAT says "100", a float 100.0 */
                    BSON_APPEND_DOUBLE(&side, "crypto", archived_fixed(day, 1, 5, 10000));
                    continue;
                }
                if (rnd() % 3 == 0) continue;
                BSON_APPEND_DOUBLE(&side, methods[m], archived_value(day, t, m, 1 + (int)(rnd() % 5)));
                if (rnd() % 5 == 0) { /* a later archival of the same day: $inc merge */
                    char path[64];
                    snprintf(path, sizeof path, "%s.%s", plurals[t], methods[m]);
                    BSON_APPEND_DOUBLE(inc, path, archived_value(day, t, m, 1 + (int)(rnd() % 3)));
                }
            }
            bson_append_document_end(doc, &side);
        }
        BSON_APPEND_DATE_TIME(doc, "last_updated", now_ms - (last_day - day) * 86400000);
    }
    bson_error_t e;
    if (!mongoc_collection_insert_many(coll, (const bson_t **)all, (size_t)ndocs, NULL, NULL, &e)) die(e.message);
    for (int i = 0; i < ndocs; i++) {
        if (!bson_empty(incs[i])) {
            bson_iter_t it;
            bson_iter_init_find(&it, all[i], "date");
            bson_t *filter = BCON_NEW("date", BCON_UTF8(bson_iter_utf8(&it, NULL)));
            bson_t update = BSON_INITIALIZER;
            BSON_APPEND_DOCUMENT(&update, "$inc", incs[i]);
            bson_t *set = BCON_NEW("last_updated", BCON_DATE_TIME(now_ms));
            BSON_APPEND_DOCUMENT(&update, "$set", set);
            if (!mongoc_collection_update_one(coll, filter, &update, NULL, NULL, &e)) die(e.message);
            bson_destroy(set);
            bson_destroy(&update);
            bson_destroy(filter);
        }
        bson_destroy(incs[i]);
        bson_destroy(all[i]);
        (*docs)++;
    }
    free(all);
    free(incs);
}

/* The hot tier the Python aggregator left: HINCRBYFLOAT per transaction. */
static void hot_row(int64_t day, int type, int m, int64_t cents)
{
    char date[TS_DAY_LEN + 1], key[64], text[64];
    ts_format_day(day, date);
    keys_agg(key, sizeof key, NULL, date, types[type]);
    hincrbyfloat(key, methods[m], cents, text, sizeof text);
    freeReplyObject(cmd("SADD %s %s", KEYS_TRACKED_DAYS, date));
    credit(day, type, m, cents);
    hot_cents += cents;
}

/* XADD one entry in the Python service's format. */
static void py_entry(int64_t day, int i, const char *type, const char *method, const char *amount)
{
    char date[TS_DAY_LEN + 1], ts[40];
    ts_format_day(day, date);
    snprintf(ts, sizeof ts, "%s%c%02d:%02d:%02d", date, i % 3 ? 'T' : ' ', i % 24, (i * 7) % 60, (i * 13) % 60);
    redisReply *r = cmd("XADD %s * timestamp %s type %s payment_method %s amount %s sleep_ms %d", KEYS_STREAM, ts,
                        type, method, amount, (int)(rnd() % 1000));
    freeReplyObject(r);
}

static void read_group(const char *consumer, int count, int ack)
{
    redisReply *r = cmd("XREADGROUP GROUP %s %s COUNT %d STREAMS %s >", KEYS_GROUP, consumer, count, KEYS_STREAM);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->element[1]->elements != (size_t)count)
        die("XREADGROUP did not deliver what was asked");
    const redisReply *es = r->element[0]->element[1];
    for (size_t i = 0; ack && i < es->elements; i++)
        freeReplyObject(cmd("XACK %s %s %s", KEYS_STREAM, KEYS_GROUP, es->element[i]->element[0]->str));
    freeReplyObject(r);
}

static int do_seed(int argc, char **argv)
{
    if (argc != 4) die("usage: pyseed seed PREFIX NDOCS");
    int ndocs = atoi(argv[3]);
    if (ndocs < 4 || ndocs > 1500) die("NDOCS: 4..1500");
    int64_t last_doc, hot_first, hot_last;
    ts_parse_day("2026-01-23", 10, &last_doc);
    ts_parse_day("2026-01-22", 10, &hot_first);
    ts_parse_day("2026-01-31", 10, &hot_last);
    first_day = last_doc - ndocs + 1;
    int64_t bad_day = last_doc - ndocs / 2;
    mongo_open();
    int docs = 0;
    seed_docs(ndocs, last_doc, bad_day, &docs);

    for (int64_t day = hot_first; day <= hot_last; day++)
        for (int t = 0; t < 2; t++)
            for (int m = 0; m < NMETHODS; m++) {
                if (rnd() % 4 == 0) continue;
                int n = 1 + (int)(rnd() % 30);
                for (int i = 0; i < n; i++) hot_row(day, t, m, random_cents());
            }
    freeReplyObject(cmd("SET %s %s", KEYS_VIRTUAL_CLOCK, "2026-01-31T23:59:58.123456"));
    freeReplyObject(cmd("SET agg:summary %s", "not-a-daily-hash"));

    /* the stream: its group, then 20 aggregated + acknowledged, 15 pending, 25 undelivered */
    freeReplyObject(cmd("XGROUP CREATE %s %s $ MKSTREAM", KEYS_STREAM, KEYS_GROUP));
    int64_t stream_cents = 0;
    for (int i = 0; i < 60; i++) {
        int64_t day = hot_last - 3 + (int64_t)(rnd() % 5); /* up to 2026-02-01, a day after the clock */
        int t = (int)(rnd() % 2), m = (int)(rnd() % NMETHODS);
        int64_t c = random_cents();
        char amount[32];
        dollars(c, amount, sizeof amount);
        if (i == 40) {
            py_entry(day, i, types[t], methods[m], "12.3456"); /* dead letter: three or more decimals */
            continue;
        }
        if (i == 50) {
            py_entry(day, i, "refund", methods[m], amount); /* dead letter: no such type */
            continue;
        }
        py_entry(day, i, i % 5 ? types[t] : (t ? "Withdrawal" : "DEPOSIT"), methods[m], amount);
        if (i < 20) hot_row(day, t, m, c); /* the Python aggregator applied these */
        else {
            credit(day, t, m, c);
            stream_cents += c;
        }
    }
    read_group("py-worker-a", 20, 1);
    read_group("py-worker-b", 15, 0);

    write_truth(argv[2]);
    char path[512], date[TS_DAY_LEN + 1];
    snprintf(path, sizeof path, "%s.info", argv[2]);
    FILE *f = fopen(path, "w");
    if (!f) die("cannot write the info file");
    ts_format_day(bad_day, date);
    fprintf(f, "bad_date=%s\n", date);
    ts_format_day(first_day, date);
    fprintf(f, "first_day=%s\nlast_day=2026-02-01\ndocs=%d\n", date, docs);
    redisReply *r = cmd("KEYS %s", "agg:[0-9]*-*-*:*");
    fprintf(f, "hashes=%zu\npending=15\nundelivered=25\ninvalid=2\n", r->elements);
    freeReplyObject(r);
    fprintf(f, "hot_cents=%" PRId64 "\ncold_cents=%" PRId64 "\nstream_cents=%" PRId64 "\n", hot_cents, cold_cents,
            stream_cents);
    fclose(f);
    return 0;
}

/* ---- views ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void print_sorted_pairs(const redisReply *r, int pairs)
{
    size_t step = pairs ? 2 : 1, n = r->elements / step;
    char **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        size_t len = r->element[i * step]->len + (pairs ? r->element[i * step + 1]->len : 0) + 2;
        v[i] = malloc(len);
        snprintf(v[i], len, "%s%s%s", r->element[i * step]->str, pairs ? "=" : "",
                 pairs ? r->element[i * step + 1]->str : "");
    }
    qsort(v, n, sizeof *v, cmp_str);
    for (size_t i = 0; i < n; i++) {
        printf(" %s", v[i]);
        free(v[i]);
    }
    free(v);
}

static void print_reply(const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_ARRAY:
        printf(" [");
        for (size_t i = 0; i < r->elements; i++) print_reply(r->element[i]);
        printf(" ]");
        break;
    case REDIS_REPLY_INTEGER: printf(" %lld", r->integer); break;
    case REDIS_REPLY_NIL: printf(" nil"); break;
    default: printf(" %s", r->str); break;
    }
}

static int do_dump(void)
{
    redisReply *keys = cmd("KEYS *");
    char **k = calloc(keys->elements ? keys->elements : 1, sizeof *k);
    for (size_t i = 0; i < keys->elements; i++) k[i] = keys->element[i]->str;
    qsort(k, keys->elements, sizeof *k, cmp_str);
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *t = cmd("TYPE %s", k[i]);
        printf("%s %s", k[i], t->str);
        redisReply *v = NULL;
        if (!strcmp(t->str, "string")) v = cmd("GET %s", k[i]), printf(" %s", v->str);
        else if (!strcmp(t->str, "hash")) v = cmd("HGETALL %s", k[i]), print_sorted_pairs(v, 1);
        else if (!strcmp(t->str, "set")) v = cmd("SMEMBERS %s", k[i]), print_sorted_pairs(v, 0);
        else if (!strcmp(t->str, "stream")) {
            v = cmd("XRANGE %s - +", k[i]);
            print_reply(v);
            freeReplyObject(v);
            v = cmd("XINFO GROUPS %s", k[i]);
            for (size_t g = 0; g < v->elements; g++) {
                redisReply *p = cmd("XPENDING %s %s - + 1000", k[i], v->element[g]->element[1]->str);
                printf(" group %s", v->element[g]->element[1]->str);
                for (size_t j = 0; j < p->elements; j++) /* id, consumer (not the idle time) */
                    printf(" %s@%s", p->element[j]->element[0]->str, p->element[j]->element[1]->str);
                freeReplyObject(p);
            }
        }
        printf("\n");
        freeReplyObject(v);
        freeReplyObject(t);
    }
    free(k);
    freeReplyObject(keys);
    mongo_open();
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "date", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        char *s = bson_as_canonical_extended_json(doc, NULL);
        printf("doc %s\n", s);
        bson_free(s);
    }
    bson_error_t e;
    if (mongoc_cursor_error(cur, &e)) die(e.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    return 0;
}

static int do_doc(int argc, char **argv)
{
    if (argc != 3) die("usage: pyseed doc DATE");
    mongo_open();
    bson_t *filter = BCON_NEW("date", BCON_UTF8(argv[2]));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        char *s = bson_as_canonical_extended_json(doc, NULL);
        printf("%s\n", s);
        bson_free(s);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    return 0;
}

static int do_state(void)
{
    mongo_open();
    bson_error_t e;
    bson_t all = BSON_INITIALIZER;
    bson_t *conv = BCON_NEW("batches", "{", "$exists", BCON_BOOL(true), "}");
    int64_t docs = mongoc_collection_count_documents(coll, &all, NULL, NULL, NULL, &e);
    int64_t txagg = mongoc_collection_count_documents(coll, conv, NULL, NULL, NULL, &e);
    redisReply *r = cmd("SCARD %s", KEYS_MIGRATION_HASHES);
    printf("docs=%" PRId64 " txagg_docs=%" PRId64 " plan_left=%lld\n", docs, txagg, r->integer);
    freeReplyObject(r);
    bson_destroy(conv);
    return docs < 0 || txagg < 0;
}

static int do_reset(void)
{
    mongo_open();
    bson_error_t e;
    freeReplyObject(cmd("FLUSHALL"));
    if (!mongoc_collection_drop(coll, &e) && !strstr(e.message, "not found")) die(e.message);
    return 0;
}

static int do_fix(int argc, char **argv)
{
    if (argc != 6) die("usage: pyseed fix DATE SIDE METHOD DOLLARS");
    mongo_open();
    char path[128];
    snprintf(path, sizeof path, "%s.%s", argv[3], argv[4]);
    bson_t *filter = BCON_NEW("date", BCON_UTF8(argv[2]));
    bson_t *update = BCON_NEW("$set", "{", path, BCON_DOUBLE(strtod(argv[5], NULL)), "}");
    bson_error_t e;
    if (!mongoc_collection_update_one(coll, filter, update, NULL, NULL, &e)) die(e.message);
    bson_destroy(update);
    bson_destroy(filter);
    return 0;
}

int main(int argc, char **argv)
{
    char err[256];
    if (argc < 2) die("usage: pyseed seed|dump|doc|state|fix|reset …");
    if (config_load(&cfg, CFG_ALL, err, sizeof err) != 0) die(err);
    log_init("pyseed", LOG_LVL_ERROR);
    if (cfg.redis_timeout_ms < 60000) cfg.redis_timeout_ms = 60000;
    if (cfg.mongodb_timeout_ms < 60000) cfg.mongodb_timeout_ms = 60000;
    rc = rconn_new(&cfg, "pyseed");
    if (rconn_ensure(rc) != 0) die("cannot reach redis");
    int rv;
    if (!strcmp(argv[1], "seed")) rv = do_seed(argc, argv);
    else if (!strcmp(argv[1], "dump")) rv = do_dump();
    else if (!strcmp(argv[1], "doc")) rv = do_doc(argc, argv);
    else if (!strcmp(argv[1], "state")) rv = do_state();
    else if (!strcmp(argv[1], "fix")) rv = do_fix(argc, argv);
    else if (!strcmp(argv[1], "reset")) rv = do_reset();
    else die("unknown command");
    if (coll) mongoc_collection_destroy(coll);
    if (mc) {
        mongoc_client_destroy(mc);
        mongo_global_cleanup();
    }
    rconn_free(rc);
    return rv;
}
