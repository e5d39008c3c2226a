/*
 * importer — one run over a list of files: open, identify, read the header,
 * resume from the checkpoint, validate, pace, publish; see importer.h.
 *
 * Per file: the identity (fileid) names the checkpoint; the header is checked
 * before anything is published, so a file with a missing column contributes
 * nothing; records up to the checkpoint's `rows` are parsed and skipped; then
 * each record is validated and joins the batch in hand, which is committed
 * (publish) when it is full, when the next row is due later than now
 * (pacing), at the end of the file (with done = 1) and when a stop is
 * requested.  Back-pressure is applied before each commit that adds entries.
 * A checkpoint found behind what this run committed (a Redis failover that
 * lost acknowledged transactions) makes the file start over: reopened,
 * resumed from the checkpoint Redis holds now.
 *
 * Partitions (REDIS_PARTITIONS, REDIS_CLUSTER; the issue 14 contract §1):
 * one publisher per partition of the tier.  When the tier is tagged, the
 * file's data records (0-based, accepted and rejected alike) are cut in
 * stripes of S records, S = the BATCH_SIZE of the file's first import (the
 * `stripe` its checkpoints record, whatever BATCH_SIZE is now); stripe k
 * goes to partition k mod N, and a batch never crosses a stripe boundary.
 * Partition p's checkpoint `rows` is the offset just past the last record
 * committed into p, and p's records are committed in order, so record i of
 * partition p is committed iff i < rows_p: a resumed import parses the file
 * from the start and publishes exactly the records that fail that test.
 * One transaction is in flight at a time, whatever its partition (the
 * partitions may share a connection): the publisher in flight is synced
 * before another is used.  `done` is written to every partition, after the
 * whole file is known committed, by a checkpoint-only commit in each; so
 * one partition saying done means the file is committed ("already
 * imported"; the other partitions' flags are completed).  --force resets
 * every partition.  One untagged partition is exactly the import above.
 * At start the number of partitions is checked against the one the data
 * was written with (tier_check_layout): another number stops with exit 2.
 *
 * Exit status: 3 when stopped by a signal (files after it are not started);
 * else 2 when a file was missing, unreadable or had a bad header; else 1 when
 * a file was left to a concurrent importer or Redis ran a transaction only in
 * part; else 0.
 */
#include "importer.h"
#include "backpressure.h"
#include "csv_reader.h"
#include "fileid.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pace.h"
#include "progress.h"
#include "publish.h"
#include "redis.h"
#include "signals.h"
#include "tier.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum file_result { FILE_OK = 0, FILE_FAILED = 1, FILE_BAD = 2, FILE_STOPPED = 3, FILE_AGAIN = 4 };

typedef struct importer {
    const txagg_config *cfg;
    const importer_opts *opts;
    tier t;
    publisher **pubs;   /* one per partition */
    publisher *pub;     /* the publisher of the batch in hand */
    publisher *flight;  /* the one whose transaction may be in flight (NULL: none) */
    int striped;        /* t.tagged: records go to partitions in stripes */
    int64_t stripe;     /* S of the file being imported */
    int64_t *rows;      /* per partition: its checkpoint's rows at the file's open */
    int64_t batch_stripe; /* the stripe of the batch in hand (-1: none) */
    backpressure *bp;
    progress *prog;
    atomic_int redis_up;
} importer;

/* An open input: descriptor, identity and the names it goes by. */
typedef struct source {
    int fd;
    int own_fd;
    uint64_t size;          /* bytes, 0 when unknown (a stream) */
    int rereadable;         /* a regular file: it can be read again from any checkpoint */
    unsigned char *prefix;  /* a stream's first bytes, read for its identity */
    size_t prefix_len;
    char id[FILEID_HEX];
    char name[1024]; /* as given ("stdin" for "-"): logs, checkpoint, dead letters */
    char base[256];  /* basename: the src of stream entries */
} source;

static int ready(void *arg, const char *query)
{
    (void)query;
    return atomic_load(&((importer *)arg)->redis_up);
}

static void source_close(source *s)
{
    if (s->own_fd && s->fd >= 0) close(s->fd);
    free(s->prefix);
    s->fd = -1;
    s->prefix = NULL;
}

/* Read a stream's first FILEID_SPAN + 1 bytes: 0, -1 (err), 1 (stopped). */
static int read_prefix(source *s, char *err, size_t errlen)
{
    size_t want = FILEID_SPAN + 1;
    s->prefix = malloc(want);
    if (!s->prefix) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (s->prefix_len < want) {
        ssize_t k = read(s->fd, s->prefix + s->prefix_len, want - s->prefix_len);
        if (k == 0) break;
        if (k < 0) {
            if (errno == EINTR) {
                if (sig_stopping()) return 1;
                continue;
            }
            snprintf(err, errlen, "read: %s", strerror(errno));
            return -1;
        }
        s->prefix_len += (size_t)k;
    }
    int complete = s->prefix_len <= FILEID_SPAN;
    fileid_of_prefix(s->prefix, complete ? s->prefix_len : FILEID_SPAN, complete, s->id);
    return 0;
}

/* 0, -1 (err set), 1 (stopped). */
static int source_open(const char *path, source *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    int is_stdin = !strcmp(path, "-");
    snprintf(s->name, sizeof s->name, "%s", is_stdin ? "stdin" : path);
    const char *slash = strrchr(path, '/');
    snprintf(s->base, sizeof s->base, "%s", is_stdin ? "stdin" : slash && slash[1] ? slash + 1 : path);
    if (is_stdin) {
        s->fd = STDIN_FILENO;
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            return -1;
        }
        s->own_fd = 1;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "is a directory");
        return -1;
    }
    if (S_ISREG(st.st_mode)) {
        s->size = (uint64_t)st.st_size;
        s->rereadable = 1;
        return fileid_of_fd(s->fd, s->size, s->id, err, errlen);
    }
    return read_prefix(s, err, errlen);
}

/* Sleep until the monotonic time due_us; 1 when a stop was requested. */
static int sleep_until(int64_t due_us)
{
    for (;;) {
        if (sig_stopping()) return 1;
        int64_t left = due_us - sig_now_us();
        if (left <= 0) return 0;
        if (left > 100000) left = 100000;
        struct timespec ts = {0, (long)left * 1000L};
        nanosleep(&ts, NULL);
    }
}

/* Settle the transaction in flight, whichever partition's. */
static int sync_flight(importer *im)
{
    publisher *f = im->flight;
    im->flight = NULL;
    return f ? publish_sync(f, progress_counts(im->prog)) : PUBLISH_OK;
}

/*
 * Commit the batch in hand (done: the file is finished).  The previous
 * transaction is settled first, since back-pressure may use the connection;
 * wait: also settle this one (end of file, stop, before a pacing sleep).
 */
static int flush(importer *im, int done, int wait)
{
    import_counts *cnt = progress_counts(im->prog);
    int st = sync_flight(im);
    if (st != PUBLISH_OK) return st;
    int acc = publish_accepted(im->pub);
    if (acc > 0 && backpressure_reserve(im->bp, acc) != 0) return PUBLISH_STOPPED;
    st = publish_commit(im->pub, done, cnt);
    im->flight = im->pub;
    if (st == PUBLISH_OK && wait) st = sync_flight(im);
    return st;
}

/* Striped: the end of the file.  Commit the batch in hand and wait for it,
 * then mark done in every partition (checkpoint-only commits). */
static int finish_striped(importer *im)
{
    int st = flush(im, 0, 1);
    for (int p = 0; p < im->t.n && st == PUBLISH_OK; p++) {
        im->pub = im->pubs[p];
        st = flush(im, 1, 1);
    }
    return st;
}

/* The partition of record idx (0-based data record). */
static int record_part(const importer *im, int64_t idx)
{
    return im->striped ? (int)((idx / im->stripe) % im->t.n) : 0;
}

static int file_result(importer *im, int st, const char *name)
{
    switch (st) {
    case PUBLISH_OK: return FILE_OK;
    case PUBLISH_STOPPED:
        progress_clear(im->prog);
        char q[1100];
        log_warn("stopped before the end of the file; a rerun resumes after the last committed batch", "file=%s",
                 log_q(q, sizeof q, name));
        return FILE_STOPPED;
    case PUBLISH_ROLLED_BACK: return FILE_AGAIN; /* logged by publish */
    default: return FILE_FAILED; /* logged by publish */
    }
}

/* The rows of an open file, from the record after the header. */
static int import_rows(importer *im, source *s, csv_reader *rd, const header_map *hm)
{
    const txagg_config *cfg = im->cfg;
    import_counts *cnt = progress_counts(im->prog);
    int paced = cfg->import_speed_milli > 0;
    int64_t now = (int64_t)time(NULL);
    pace pc;
    pace_init(&pc);
    csv_record rec;
    valid_row row;
    int st = PUBLISH_OK;
    int64_t idx = -1; /* the record's index among the data records */
    im->pub = im->pubs[0];
    im->batch_stripe = -1;
    for (;;) {
        int got = csv_reader_next(rd, &rec);
        if (got < 0) {
            /* Keep what was read: commit the batch in hand, then report. */
            int stopping = sig_stopping();
            st = flush(im, 0, 1);
            if (st != PUBLISH_OK || stopping) return file_result(im, st == PUBLISH_OK ? PUBLISH_STOPPED : st, s->name);
            char q[1100], qe[300];
            progress_clear(im->prog);
            log_error("cannot read file", "file=%s err=%s", log_q(q, sizeof q, s->name),
                      log_q(qe, sizeof qe, csv_reader_error(rd)));
            return FILE_BAD;
        }
        if (got == 0) break;
        cnt->read++;
        idx++;
        int part = record_part(im, idx);
        if (idx < im->rows[part]) { /* committed by an earlier run: parsed, not published */
            cnt->skipped++;
            if ((cnt->read & 1023) == 0) {
                if (sig_stopping()) { /* striped: a batch of another stripe may be in hand */
                    st = flush(im, 0, 1);
                    return file_result(im, st == PUBLISH_OK ? PUBLISH_STOPPED : st, s->name);
                }
                progress_tick(im->prog, csv_reader_offset(rd));
            }
            continue;
        }
        if (im->striped && im->batch_stripe != idx / im->stripe) { /* a batch never crosses a stripe */
            if (publish_pending(im->pub) && (st = flush(im, 0, 0)) != PUBLISH_OK) break;
            im->pub = im->pubs[part];
            im->batch_stripe = idx / im->stripe;
        }
        int64_t sleep_ms;
        int reason = validate_row(hm, &rec, now, cfg->max_future_days, &row, &sleep_ms);
        if (paced) {
            int64_t now_us = sig_now_us();
            int64_t due = pace_due_us(&pc, now_us);
            if (due > now_us) {
                if (publish_pending(im->pub) && (st = flush(im, 0, 1)) != PUBLISH_OK) break;
                if (sleep_until(due)) {
                    st = PUBLISH_STOPPED;
                    break;
                }
            }
            pace_after_row(&pc, config_pace_us(cfg, sleep_ms));
        }
        if (reason == REJECT_NONE) {
            publish_add_row(im->pub, &row, rec.line);
        } else if (publish_add_reject(im->pub, reason, rec.line, rec.raw, rec.raw_len) != 0) {
            char q[1100];
            log_error("out of memory", "file=%s", log_q(q, sizeof q, s->name));
            st = PUBLISH_FATAL;
            break;
        }
        if (im->striped) publish_set_end(im->pub, idx + 1);
        if (publish_full(im->pub) && (st = flush(im, 0, 0)) != PUBLISH_OK) break;
        if (sig_stopping()) {
            st = flush(im, 0, 1);
            if (st == PUBLISH_OK) st = PUBLISH_STOPPED;
            break;
        }
        if (paced || (cnt->read & 63) == 0) progress_tick(im->prog, csv_reader_offset(rd));
    }
    if (st == PUBLISH_OK) st = im->striped ? finish_striped(im) : flush(im, 1, 1);
    progress_tick(im->prog, csv_reader_offset(rd));
    return file_result(im, st, s->name);
}

/*
 * Open the file in every partition: read each checkpoint (into im->rows),
 * set the stripe (the one recorded, else BATCH_SIZE).  *rows: the greatest
 * rows (the records committed so far when the file is done); *done: some
 * partition says done — the whole file is committed — after the others
 * were marked done too (a run stopped amid the final marks).  Partitions
 * recording different stripes belong to different imports: a conflict.
 */
static int open_partitions(importer *im, const source *s, int64_t *rows, int *done)
{
    int any_done = 0, all_done = 1;
    int64_t stripe = 0, most = 0;
    im->flight = NULL;
    for (int p = 0; p < im->t.n; p++) {
        int d;
        publish_set_durable(im->pubs[p], !s->rereadable);
        int st = publish_open_file(im->pubs[p], s->id, s->name, s->base, &im->rows[p], &d);
        if (st != PUBLISH_OK) return st;
        any_done |= d;
        all_done &= d;
        if (im->rows[p] > most) most = im->rows[p];
        int64_t found = publish_stripe_found(im->pubs[p]);
        if (found && stripe && found != stripe) {
            char q[1100];
            log_error("the file's partitions record different stripe sizes (another importer?); leaving the file",
                      "file=%s id=%s stripe=%lld other=%lld", log_q(q, sizeof q, s->name), s->id, (long long)stripe,
                      (long long)found);
            return PUBLISH_CONFLICT;
        }
        if (found) stripe = found;
    }
    im->stripe = stripe ? stripe : (im->cfg->batch_size > 0 ? im->cfg->batch_size : 1);
    for (int p = 0; p < im->t.n; p++) publish_set_stripe(im->pubs[p], im->stripe);
    *rows = most;
    *done = any_done;
    if (any_done && !all_done && !im->opts->force) { /* complete the marks a stopped run left */
        for (int p = 0; p < im->t.n; p++) {
            im->pub = im->pubs[p];
            int st = flush(im, 1, 1);
            if (st != PUBLISH_OK) return st;
        }
    }
    return PUBLISH_OK;
}

/* --force: every partition's checkpoint back to rows 0, not done, with this
 * run's BATCH_SIZE as the stripe. */
static int reset_partitions(importer *im)
{
    im->stripe = im->cfg->batch_size > 0 ? im->cfg->batch_size : 1;
    for (int p = 0; p < im->t.n; p++) {
        publish_set_stripe(im->pubs[p], im->stripe);
        int st = publish_reset(im->pubs[p]);
        if (st != PUBLISH_OK) return st;
        im->rows[p] = 0;
    }
    return PUBLISH_OK;
}

static int import_file(importer *im, const char *path)
{
    char err[512], q[1100];
    source s;
    int rc = source_open(path, &s, err, sizeof err);
    progress_file_begin(im->prog, s.name, s.size);
    if (rc != 0) {
        if (rc > 0) {
            source_close(&s);
            progress_file_end(im->prog, "stopped");
            return FILE_STOPPED;
        }
        char qe[600];
        log_error("cannot open file; nothing imported from it", "file=%s err=%s", log_q(q, sizeof q, s.name),
                  log_q(qe, sizeof qe, err));
        source_close(&s);
        progress_file_end(im->prog, "failed");
        return FILE_BAD;
    }
    csv_reader *rd = csv_reader_new(s.fd, s.prefix, s.prefix_len, 0);
    if (!rd) {
        log_error("out of memory", "file=%s", log_q(q, sizeof q, s.name));
        source_close(&s);
        progress_file_end(im->prog, "failed");
        return FILE_FAILED;
    }
    int result;
    csv_record rec;
    header_map hm;
    int got = csv_reader_next(rd, &rec);
    if (got <= 0 || validate_header(&rec, &hm, err, sizeof err) != 0) {
        if (got < 0 && sig_stopping()) {
            result = FILE_STOPPED;
        } else {
            char qe[600];
            if (got < 0) snprintf(err, sizeof err, "%s", csv_reader_error(rd));
            else if (got == 0) snprintf(err, sizeof err, "no header: the file is empty");
            log_error("bad file; nothing imported from it", "file=%s err=%s", log_q(q, sizeof q, s.name),
                      log_q(qe, sizeof qe, err));
            result = FILE_BAD;
        }
        goto out;
    }

    int64_t rows;
    int done;
    int st = open_partitions(im, &s, &rows, &done);
    if (st != PUBLISH_OK) {
        result = file_result(im, st, s.name);
        goto out;
    }
    if (done && !im->opts->force) {
        log_info("already imported; nothing published (--force imports it again)", "file=%s id=%s rows=%lld",
                 log_q(q, sizeof q, s.name), s.id, (long long)rows);
        progress_file_end(im->prog, "already imported");
        csv_reader_free(rd);
        source_close(&s);
        return FILE_OK;
    }
    if (done) {
        log_info("importing again (--force)", "file=%s id=%s", log_q(q, sizeof q, s.name), s.id);
        if ((st = reset_partitions(im)) != PUBLISH_OK) {
            result = file_result(im, st, s.name);
            goto out;
        }
        rows = 0;
    } else if (rows > 0) {
        log_info("resuming after the checkpoint", "file=%s id=%s rows=%lld", log_q(q, sizeof q, s.name), s.id,
                 (long long)rows);
    } else {
        log_debug("importing", "file=%s id=%s", log_q(q, sizeof q, s.name), s.id);
    }
    result = import_rows(im, &s, rd, &hm);
out:
    if (result == FILE_AGAIN && !s.rereadable) {
        /* Batches every replica had acknowledged are gone (the replicas too?):
         * what a stream already gave cannot be read again. */
        log_error("committed batches were lost by Redis and the input cannot be read again; send its rows again "
                  "from the checkpoint",
                  "file=%s", log_q(q, sizeof q, s.name));
        result = FILE_FAILED;
    }
    progress_file_end(im->prog, result == FILE_OK ? "imported" : result == FILE_STOPPED ? "stopped" : "failed");
    csv_reader_free(rd);
    source_close(&s);
    return result;
}

int importer_run(const txagg_config *cfg, const importer_opts *opts, const char *const *files, int nfiles)
{
    importer im = {.cfg = cfg, .opts = opts};
    atomic_init(&im.redis_up, 0);
    char err[1024], q[1200];
    int status = 0, tier_made = tier_init(&im.t, cfg, "importer", err, sizeof err) == 0, tier_ok = tier_made;
    http_listener *http = NULL;
    if (tier_ok) {
        im.striped = im.t.tagged;
        im.pubs = calloc((size_t)im.t.n, sizeof *im.pubs);
        im.rows = calloc((size_t)im.t.n, sizeof *im.rows);
        for (int p = 0; im.pubs && p < im.t.n; p++)
            if (!(im.pubs[p] = publish_new_part(&im.t, p, cfg->batch_size, &im.redis_up))) tier_ok = 0;
        im.bp = backpressure_new_tier(&im.t, cfg->max_backlog, &im.redis_up);
    }
    im.prog = progress_new(isatty(STDERR_FILENO));
    if (!tier_ok || !im.pubs || !im.rows || !im.bp || !im.prog) {
        log_error("out of memory");
        status = 1;
        goto out;
    }
    im.pub = im.pubs[0];
    if (cfg->metrics_port) {
        http = http_listener_start(cfg->metrics_host, cfg->metrics_port, HTTP_LISTEN_METRICS, ready, &im, err,
                                   sizeof err);
        if (!http) { /* asked for and not there: a start-up error, nothing imported */
            log_error("cannot start", "detail=%s", log_q(q, sizeof q, err));
            status = 1;
            goto out;
        }
    }
    /* the number of partitions the data was written with (recorded at the
     * first start); Redis not answering: wait, like any outage (the
     * connection or the cluster layer logs it once) */
    for (;;) {
        int lr = tier_check_layout(&im.t, err, sizeof err);
        if (lr == TIER_OK) break;
        if (lr == TIER_ELAYOUT) {
            log_error("configuration error: wrong number of partitions; nothing imported", "detail=%s",
                      log_q(q, sizeof q, err));
            status = 2;
            goto out;
        }
        atomic_store(&im.redis_up, 0);
        if (sig_sleep_ms(200)) {
            status = 3;
            goto out;
        }
    }
    if (backpressure_ensure_group(im.bp) != 0) {
        status = sig_stopping() ? 3 : 1;
        goto out;
    }
    int bad = 0, failed = 0;
    for (int i = 0; i < nfiles && status != 3; i++) {
        int r;
        do /* FILE_AGAIN: again, from the checkpoint Redis holds now */
            r = import_file(&im, files[i]);
        while (r == FILE_AGAIN && !sig_stopping());
        switch (r) {
        case FILE_AGAIN: /* stopped before starting over */
        case FILE_STOPPED: status = 3; break;
        case FILE_BAD: bad = 1; break;
        case FILE_FAILED: failed = 1; break;
        default: break;
        }
    }
    progress_total(im.prog);
    if (status != 3) status = bad ? 2 : failed ? 1 : 0;
out:
    http_listener_stop(http);
    progress_free(im.prog);
    backpressure_free(im.bp);
    for (int p = 0; im.pubs && p < im.t.n; p++) publish_free(im.pubs[p]);
    free(im.pubs);
    free(im.rows);
    if (tier_made) tier_free(&im.t);
    return status;
}
