/*
 * archive_probe — the archival tests' oracle and load: writes the hot tier
 * the way the aggregator does, keeps a ledger of every increment it wrote,
 * and compares the ledger with what the three tiers hold.  It shares no code
 * with the persistor (only the common key builders and config).
 *
 *   archive_probe seed LEDGER SEED FIRST_DAY NDAYS ROWS
 *       ROWS random rows over NDAYS days from FIRST_DAY; each batch of rows is
 *       one MULTI { HINCRBY agg:{day}:{type} <method> <cents>…; SADD
 *       system:tracked_days <day>…; SET system:virtual_clock (forward only) }.
 *       The clock ends at the last day, 12:00 UTC (unless already later).
 *   archive_probe writer LEDGER SEED MS WINDOW ROWS_PER_DAY
 *       for MS milliseconds: rows for days in [clock day − WINDOW, clock day]
 *       (late rows for archived days included), the clock one day forward
 *       every ROWS_PER_DAY rows; between batches it samples the pending set.
 *       Prints "writer rows=N max_pending=N fence_mismatch=N samples=N
 *       unknown=N lost_replies=N resent=N" (the last three: batches whose
 *       reply timed out, settled as applied or sent again; tests/tools/settle.h).
 *   archive_probe compare LEDGER…
 *       sums the ledgers (int64) and the tiers per (day, type, method):
 *       hot agg hashes + MongoDB documents + frozen hashes of each pending
 *       batch B for day D only where D's document does not list B (the API's
 *       rule).  Prints "exact cells=N" and exits 0, or the differences and 1.
 *       Any amount in MongoDB that is not a BSON int64 is a difference.
 *   archive_probe state
 *       key=value facts: pending, frozen_keys, batch_records, tracked,
 *       eligible (tracked days ≤ day(clock) − RETENTION_DAYS), archived_through,
 *       newest_cold (newest document date), docs, max_batches, version.
 *
 * Connection settings come from the environment like every binary's
 * (REDIS_PORT, MONGODB_URI, MONGODB_DATABASE, RETENTION_DAYS…).  A reply
 * timeout never kills it nor costs the ledger a batch: every batch is settled
 * (tests/tools/settle.h), every read sent again after a reconnect; MongoDB
 * reads get a 60 s timeout (MONGODB_TIMEOUT_MS when longer).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "money.h"
#include "mongo.h"
#include "redis.h"
#include "signals.h"
#include "timeparse.h"

#include "settle.h"

static txagg_config cfg;
static rconn *rc;
static settle st;

static const char *const methods[] = {"visa", "mastercard", "paypal", "apple_pay", "bank_transfer"};
static const char *const types[] = {"deposit", "withdrawal"};
static const char *const plurals[] = {"deposits", "withdrawals"};

static void die(const char *what)
{
    fprintf(stderr, "archive_probe: %s\n", what);
    exit(2);
}

static redisReply *cmd(const char *fmt, ...)
{
    /* reads only (and idempotent writes): safe to send again after a reconnect */
    int64_t deadline = sig_now_ms() + SETTLE_GIVE_UP_MS;
    redisReply *r = NULL;
    while (!r) {
        if (settle_connect(&st, deadline) != 0) die(st.err);
        va_list ap;
        va_start(ap, fmt);
        r = redisvCommand(rconn_ctx(rc), fmt, ap);
        va_end(ap);
        if (!r) {
            rconn_drop(rc);
            st.client_id = 0;
        }
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "archive_probe: redis error: %s\n", r->str);
        exit(2);
    }
    return r;
}

/* xorshift64*: reproducible from SEED, no global state of libc. */
static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * UINT64_C(2685821657736338717);
}

static int64_t random_cents(void)
{
    if (rnd() % 50 == 0) return 1 + (int64_t)(rnd() % (uint64_t)MONEY_MAX_CENTS); /* beyond 32 bits */
    return 1 + (int64_t)(rnd() % 10000000);
}

/* --- the hot tier, written like the aggregator ------------------------- */

typedef struct row {
    char day[TS_DAY_LEN + 1];
    int type;
    const char *method;
    int64_t cents;
} row;

/* One batch: the rows, their days tracked, the clock moved to clock_epoch if
 * later.  Appended between settle.h's MULTI and EXEC (again for a resend). */
typedef struct batch {
    const row *rows;
    int n;
    int64_t clock_epoch;
} batch;

static int append_batch(redisContext *c, void *arg)
{
    const batch *b = arg;
    int sent = 0;
    for (int i = 0; i < b->n; i++) {
        char key[128];
        keys_agg(key, sizeof key, NULL, b->rows[i].day, types[b->rows[i].type]);
        redisAppendCommand(c, "HINCRBY %s %s %lld", key, b->rows[i].method, (long long)b->rows[i].cents);
        redisAppendCommand(c, "SADD %s %s", KEYS_TRACKED_DAYS, b->rows[i].day);
        sent += 2;
    }
    if (b->clock_epoch > 0) {
        char iso[TS_ISO_LEN + 1];
        ts_format_iso(b->clock_epoch, iso);
        redisAppendCommand(c, "SET %s %s", KEYS_VIRTUAL_CLOCK, iso);
        sent++;
    }
    return sent;
}

/* The ledger gets the rows once the batch applied (exactly once, settled). */
static void apply_rows(FILE *ledger, const row *rows, int n, int64_t clock_epoch)
{
    batch b = {rows, n, clock_epoch};
    if (settle_exec(&st, append_batch, &b, NULL) != 0) die(st.err);
    for (int i = 0; i < n; i++)
        fprintf(ledger, "%s %s %s %" PRId64 "\n", rows[i].day, types[rows[i].type], rows[i].method, rows[i].cents);
    fflush(ledger);
}

static int64_t clock_epoch_now(void)
{
    redisReply *r = cmd("GET %s", KEYS_VIRTUAL_CLOCK);
    int64_t e = -1;
    if (r->type == REDIS_REPLY_STRING && ts_parse(r->str, r->len, &e) != 0) e = -1;
    freeReplyObject(r);
    return e;
}

static void random_row(row *w, int64_t day)
{
    ts_format_day(day, w->day);
    w->type = (int)(rnd() % 2);
    w->method = methods[rnd() % (sizeof methods / sizeof methods[0])];
    w->cents = random_cents();
}

static int do_seed(int argc, char **argv)
{
    if (argc != 7) die("usage: seed LEDGER SEED FIRST_DAY NDAYS ROWS");
    FILE *ledger = fopen(argv[2], "a");
    if (!ledger) die("cannot open the ledger");
    rng = strtoull(argv[3], NULL, 10) * 2654435761u + 1;
    int64_t first;
    if (ts_parse_day(argv[4], strlen(argv[4]), &first) != 0) die("FIRST_DAY is not YYYY-MM-DD");
    int ndays = atoi(argv[5]);
    long rows = atol(argv[6]);
    if (ndays < 1 || rows < 1) die("NDAYS and ROWS must be positive");
    row batch[64];
    int n = 0;
    for (long i = 0; i < rows; i++) {
        /* every day gets at least one row, then random days */
        random_row(&batch[n++], first + (i < ndays ? i : (int64_t)(rnd() % (uint64_t)ndays)));
        if (n == 64 || i == rows - 1) {
            apply_rows(ledger, batch, n, 0);
            n = 0;
        }
    }
    int64_t want = (first + ndays - 1) * 86400 + 12 * 3600;
    if (clock_epoch_now() < want) apply_rows(ledger, batch, 0, want);
    fclose(ledger);
    if (st.unknown)
        fprintf(stderr, "archive_probe: seed unknown=%ld lost_replies=%ld resent=%ld\n", st.unknown, st.lost_replies,
                st.resent);
    return 0;
}

static int do_writer(int argc, char **argv)
{
    if (argc != 7) die("usage: writer LEDGER SEED MS WINDOW ROWS_PER_DAY");
    FILE *ledger = fopen(argv[2], "a");
    if (!ledger) die("cannot open the ledger");
    rng = strtoull(argv[3], NULL, 10) * 2654435761u + 7;
    int64_t ms = atoll(argv[4]);
    int window = atoi(argv[5]);
    long per_day = atol(argv[6]);
    int64_t clock = clock_epoch_now();
    if (clock < 0) die("no virtual clock to start from: seed first");
    int64_t end = sig_now_ms() + ms;
    long rows = 0, since_advance = 0, samples = 0, max_pending = 0, fence_mismatch = 0;
    while (sig_now_ms() < end) {
        row batch[16];
        int n = 1 + (int)(rnd() % 16);
        int64_t today = ts_day_of(clock);
        for (int i = 0; i < n; i++) random_row(&batch[i], today - (int64_t)(rnd() % (uint64_t)(window + 1)));
        int64_t move = 0;
        since_advance += n;
        if (since_advance >= per_day) {
            since_advance = 0;
            clock += 86400;
            move = clock;
        }
        apply_rows(ledger, batch, n, move);
        rows += n;

        /* Sample: at most one batch in flight; its record names the fence of its id. */
        redisReply *r = cmd("SMEMBERS %s", KEYS_ARCHIVE_PENDING);
        samples++;
        if ((long)r->elements > max_pending) max_pending = (long)r->elements;
        for (size_t i = 0; i < r->elements; i++) {
            char key[128];
            keys_batch(key, sizeof key, NULL, r->element[i]->str);
            redisReply *f = cmd("HGET %s fence", key);
            const char *idf = strstr(r->element[i]->str, "-f");
            if (f->type == REDIS_REPLY_STRING && idf && strcmp(idf + 2, f->str) != 0) fence_mismatch++;
            freeReplyObject(f);
        }
        freeReplyObject(r);
        struct timespec ts = {0, 2 * 1000 * 1000}; /* leave CPU to the persistors */
        nanosleep(&ts, NULL);
    }
    fclose(ledger);
    printf("writer rows=%ld max_pending=%ld fence_mismatch=%ld samples=%ld unknown=%ld lost_replies=%ld resent=%ld\n",
           rows, max_pending, fence_mismatch, samples, st.unknown, st.lost_replies, st.resent);
    return 0;
}

/* --- reading the tiers ------------------------------------------------- */

typedef struct cell {
    char day[TS_DAY_LEN + 1];
    int type;
    char method[40];
    int64_t want, got;
} cell;

static cell *cells;
static size_t ncells, capcells;
static size_t *slots; /* open addressing over cells: index + 1, 0 = empty */
static size_t nslots;

static uint64_t cell_hash(const char *day, int type, const char *method)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const char *p = day; *p; p++) h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    h = (h ^ (unsigned)type) * UINT64_C(1099511628211);
    for (const char *p = method; *p; p++) h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    return h;
}

static void rehash(void)
{
    free(slots);
    nslots = capcells * 2;
    slots = calloc(nslots, sizeof *slots);
    if (!slots) die("out of memory");
    for (size_t i = 0; i < ncells; i++) {
        size_t s = cell_hash(cells[i].day, cells[i].type, cells[i].method) & (nslots - 1);
        while (slots[s]) s = (s + 1) & (nslots - 1);
        slots[s] = i + 1;
    }
}

static cell *cell_at(const char *day, int type, const char *method)
{
    if (nslots) {
        size_t s = cell_hash(day, type, method) & (nslots - 1);
        for (; slots[s]; s = (s + 1) & (nslots - 1)) {
            cell *c = &cells[slots[s] - 1];
            if (c->type == type && !strcmp(c->day, day) && !strcmp(c->method, method)) return c;
        }
    }
    if (ncells == capcells) {
        capcells = capcells ? capcells * 2 : 1024;
        cells = realloc(cells, capcells * sizeof *cells);
        if (!cells) die("out of memory");
        rehash();
    }
    cell *c = &cells[ncells++];
    memset(c, 0, sizeof *c);
    snprintf(c->day, sizeof c->day, "%s", day);
    c->type = type;
    snprintf(c->method, sizeof c->method, "%s", method);
    size_t s = cell_hash(day, type, method) & (nslots - 1);
    while (slots[s]) s = (s + 1) & (nslots - 1);
    slots[s] = ncells;
    return c;
}

static int type_of(const char *s)
{
    for (int t = 0; t < 2; t++)
        if (!strcmp(s, types[t]) || !strcmp(s, plurals[t])) return t;
    return -1;
}

static void add_hash(const char *key, const char *day, int type)
{
    redisReply *r = cmd("HGETALL %s", key);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        int64_t v;
        if (money_parse_cents(r->element[i + 1]->str, r->element[i + 1]->len, &v) != 0) die("non-integer hash value");
        cell_at(day, type, r->element[i]->str)->got += v;
    }
    freeReplyObject(r);
}

/* Keys matching pattern, via SCAN. */
static void scan_keys(const char *pattern, void (*fn)(const char *key, void *arg), void *arg)
{
    char cursor[32] = "0";
    do {
        redisReply *r = cmd("SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) fn(r->element[1]->element[i]->str, arg);
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
}

static void on_hot(const char *key, void *arg)
{
    (void)arg;
    char day[TS_DAY_LEN + 1], type[16];
    if (sscanf(key, "agg:%10[0-9-]:%15s", day, type) != 2 || type_of(type) < 0) die("unexpected agg: key");
    add_hash(key, day, type_of(type));
}

static void on_count(const char *key, void *arg)
{
    (void)key;
    (*(long *)arg)++;
}

static mongoc_client_t *mc;
static mongoc_collection_t *coll;

static void mongo_open(void)
{
    char err[256];
    /* compare and state read MongoDB in one pass: given time, never cut short */
    if (cfg.mongodb_timeout_ms < 60000) cfg.mongodb_timeout_ms = 60000;
    mongo_global_init();
    mc = mongo_client_new(&cfg, "archive_probe", err, sizeof err);
    if (!mc) die(err);
    coll = mongoc_client_get_collection(mc, cfg.mongodb_database, cfg.mongodb_collection);
}

/* 1 when the document of day lists batch id. */
static int doc_lists(const char *day, const char *id)
{
    bson_t *filter = BCON_NEW("date", BCON_UTF8(day), "batches", BCON_UTF8(id));
    bson_error_t e;
    int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &e);
    bson_destroy(filter);
    if (n < 0) die(e.message);
    return n > 0;
}

typedef struct cold_facts {
    long docs, bad_types, max_batches;
    char newest[TS_DAY_LEN + 1];
} cold_facts;

static void read_cold(cold_facts *cf, int add)
{
    memset(cf, 0, sizeof *cf);
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "date") || !BSON_ITER_HOLDS_UTF8(&it)) die("document without a date");
        char day[TS_DAY_LEN + 1];
        snprintf(day, sizeof day, "%s", bson_iter_utf8(&it, NULL));
        if (strcmp(day, cf->newest) > 0) memcpy(cf->newest, day, sizeof day);
        cf->docs++;
        for (int t = 0; t < 2; t++) {
            bson_iter_t side, m;
            if (!bson_iter_init_find(&side, doc, plurals[t])) continue;
            if (!BSON_ITER_HOLDS_DOCUMENT(&side) || !bson_iter_recurse(&side, &m)) {
                cf->bad_types++;
                continue;
            }
            while (bson_iter_next(&m)) {
                if (!BSON_ITER_HOLDS_INT64(&m)) {
                    cf->bad_types++;
                    continue;
                }
                if (add) cell_at(day, t, bson_iter_key(&m))->got += bson_iter_int64(&m);
            }
        }
        bson_iter_t b, arr;
        long nb = 0;
        if (bson_iter_init_find(&b, doc, "batches") && bson_iter_recurse(&b, &arr))
            while (bson_iter_next(&arr)) nb++;
        if (nb > cf->max_batches) cf->max_batches = nb;
    }
    bson_error_t e;
    if (mongoc_cursor_error(cur, &e)) die(e.message);
    mongoc_cursor_destroy(cur);
}

static void add_pending_frozen(void)
{
    redisReply *pend = cmd("SMEMBERS %s", KEYS_ARCHIVE_PENDING);
    for (size_t i = 0; i < pend->elements; i++) {
        const char *id = pend->element[i]->str;
        char bkey[128];
        keys_batch(bkey, sizeof bkey, NULL, id);
        redisReply *days = cmd("HGET %s days", bkey);
        if (days->type != REDIS_REPLY_STRING) die("pending batch without days");
        char *list = strdup(days->str), *save = NULL;
        for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
            if (doc_lists(d, id)) continue;
            for (int t = 0; t < 2; t++) {
                char key[160];
                keys_frozen(key, sizeof key, NULL, id, d, types[t]);
                add_hash(key, d, t);
            }
        }
        free(list);
        freeReplyObject(days);
    }
    freeReplyObject(pend);
}

static int do_compare(int argc, char **argv)
{
    if (argc < 3) die("usage: compare LEDGER…");
    for (int a = 2; a < argc; a++) {
        FILE *f = fopen(argv[a], "r");
        if (!f) die("cannot read a ledger");
        char day[16], type[16], method[40];
        long long cents;
        while (fscanf(f, "%15s %15s %39s %lld", day, type, method, &cents) == 4) {
            if (type_of(type) < 0) die("bad ledger line");
            cell_at(day, type_of(type), method)->want += cents;
        }
        fclose(f);
    }
    mongo_open();
    scan_keys(KEYS_AGG_PREFIX "*", on_hot, NULL);
    add_pending_frozen();
    cold_facts cf;
    read_cold(&cf, 1);
    long diffs = 0;
    for (size_t i = 0; i < ncells; i++) {
        if (cells[i].want == cells[i].got) continue;
        if (diffs++ < 20)
            fprintf(stderr, "differs: %s %s %s want=%" PRId64 " got=%" PRId64 "\n", cells[i].day, types[cells[i].type],
                    cells[i].method, cells[i].want, cells[i].got);
    }
    if (cf.bad_types) fprintf(stderr, "differs: %ld amounts in MongoDB are not int64\n", cf.bad_types);
    if (diffs || cf.bad_types) {
        printf("differs cells=%zu differing=%ld not_int64=%ld\n", ncells, diffs, cf.bad_types);
        return 1;
    }
    printf("exact cells=%zu\n", ncells);
    return 0;
}

static long scard(const char *key)
{
    redisReply *r = cmd("SCARD %s", key);
    long n = (long)r->integer;
    freeReplyObject(r);
    return n;
}

static int do_state(void)
{
    mongo_open();
    long frozen = 0, records = 0, eligible = 0;
    scan_keys(KEYS_FROZEN_PREFIX "*", on_count, &frozen);
    scan_keys(KEYS_BATCH_PREFIX "*", on_count, &records);
    int64_t clock = clock_epoch_now();
    redisReply *r = cmd("SMEMBERS %s", KEYS_TRACKED_DAYS);
    for (size_t i = 0; i < r->elements; i++) {
        int64_t d;
        if (clock >= 0 && ts_parse_day(r->element[i]->str, r->element[i]->len, &d) == 0 &&
            d <= ts_day_of(clock) - cfg.retention_days)
            eligible++;
    }
    freeReplyObject(r);
    redisReply *through = cmd("GET %s", KEYS_ARCHIVED_THROUGH);
    redisReply *version = cmd("GET %s", KEYS_ARCHIVE_VERSION);
    cold_facts cf;
    read_cold(&cf, 0);
    printf("pending=%ld frozen_keys=%ld batch_records=%ld tracked=%ld eligible=%ld archived_through=%s "
           "newest_cold=%s docs=%ld max_batches=%ld version=%s\n",
           scard(KEYS_ARCHIVE_PENDING), frozen, records, scard(KEYS_TRACKED_DAYS), eligible,
           through->type == REDIS_REPLY_STRING ? through->str : "-", cf.newest[0] ? cf.newest : "-", cf.docs,
           cf.max_batches, version->type == REDIS_REPLY_STRING ? version->str : "0");
    freeReplyObject(through);
    freeReplyObject(version);
    return 0;
}

int main(int argc, char **argv)
{
    char err[256];
    if (argc < 2) die("usage: archive_probe seed|writer|compare|state …");
    if (config_load(&cfg, CFG_ALL, err, sizeof err) != 0) die(err);
    log_init("archive_probe", LOG_LVL_ERROR);
    rc = rconn_new(&cfg, "archive_probe");
    settle_init(&st, rc, "archive_probe");
    if (settle_connect(&st, sig_now_ms() + SETTLE_GIVE_UP_MS) != 0) die(st.err);
    int rv;
    if (!strcmp(argv[1], "seed")) rv = do_seed(argc, argv);
    else if (!strcmp(argv[1], "writer")) rv = do_writer(argc, argv);
    else if (!strcmp(argv[1], "compare")) rv = do_compare(argc, argv);
    else if (!strcmp(argv[1], "state")) rv = do_state();
    else die("unknown command");
    if (coll) mongoc_collection_destroy(coll);
    if (mc) mongoc_client_destroy(mc);
    if (mc) mongo_global_cleanup();
    free(cells);
    free(slots);
    rconn_free(rc);
    return rv;
}
