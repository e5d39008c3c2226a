/*
 * progress — counters, progress line and summaries; see progress.h.
 *
 * Invariants: the Prometheus counters only ever receive the growth of the
 * per-file counts since the last sync (so they are exact and monotonic);
 * nothing is drawn on stderr unless it is a terminal; a drawn progress line
 * is wiped before any summary is printed.
 */
#include "progress.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDRAW_US 500000

struct progress {
    int tty;
    int drawn; /* a progress line is on the screen */
    char name[256];
    uint64_t size;
    int64_t file_start_us, run_start_us, last_draw_us;
    int64_t rate_rows, rate_us; /* for rows/s between redraws */
    double rate;
    int nfiles;
    import_counts cur, synced, total;
    metric *m_read, *m_skipped, *m_published, *m_batches, *m_rejected[REJECT_NREASONS];
};

static int64_t rejected_total(const import_counts *c)
{
    int64_t n = 0;
    for (int r = 1; r < REJECT_NREASONS; r++) n += c->rejected[r];
    return n;
}

progress *progress_new(int tty)
{
    progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->tty = tty;
    p->run_start_us = sig_now_us();
    p->m_read = metrics_counter("txagg_importer_rows_read_total", "CSV data records read (header excluded)", NULL);
    p->m_skipped = metrics_counter("txagg_importer_rows_skipped_total",
                                   "records skipped on resume (committed by an earlier run)", NULL);
    p->m_published = metrics_counter("txagg_importer_rows_published_total", "rows committed to the stream", NULL);
    p->m_batches = metrics_counter("txagg_importer_batches_total", "batches committed (MULTI/EXEC)", NULL);
    for (int r = 1; r < REJECT_NREASONS; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", validate_reason_name(r));
        p->m_rejected[r] = metrics_counter("txagg_importer_rows_rejected_total",
                                           "rows sent to the dead-letter stream, by reason", labels);
    }
    return p;
}

void progress_free(progress *p) { free(p); }

import_counts *progress_counts(progress *p) { return &p->cur; }

static void sync_metrics(progress *p)
{
    import_counts *c = &p->cur, *s = &p->synced;
    if (c->read > s->read) metrics_add(p->m_read, (uint64_t)(c->read - s->read));
    if (c->skipped > s->skipped) metrics_add(p->m_skipped, (uint64_t)(c->skipped - s->skipped));
    if (c->published > s->published) metrics_add(p->m_published, (uint64_t)(c->published - s->published));
    if (c->batches > s->batches) metrics_add(p->m_batches, (uint64_t)(c->batches - s->batches));
    for (int r = 1; r < REJECT_NREASONS; r++)
        if (c->rejected[r] > s->rejected[r]) metrics_add(p->m_rejected[r], (uint64_t)(c->rejected[r] - s->rejected[r]));
    *s = *c;
}

void progress_file_begin(progress *p, const char *name, uint64_t size)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    p->size = size;
    memset(&p->cur, 0, sizeof p->cur);
    memset(&p->synced, 0, sizeof p->synced);
    p->file_start_us = p->last_draw_us = p->rate_us = sig_now_us();
    p->rate_rows = 0;
    p->rate = 0;
    p->nfiles++;
}

void progress_clear(progress *p)
{
    if (!p->drawn) return;
    static const char wipe[] = "\r\033[K";
    ssize_t w = write(STDERR_FILENO, wipe, sizeof wipe - 1);
    (void)w;
    p->drawn = 0;
}

void progress_tick(progress *p, uint64_t offset)
{
    sync_metrics(p);
    if (!p->tty) return;
    int64_t now = sig_now_us();
    if (now - p->last_draw_us < REDRAW_US) return;
    p->last_draw_us = now;
    if (now > p->rate_us) p->rate = (double)(p->cur.read - p->rate_rows) * 1e6 / (double)(now - p->rate_us);
    p->rate_rows = p->cur.read;
    p->rate_us = now;
    char pct[32] = "";
    if (p->size) snprintf(pct, sizeof pct, ", %.1f%%", 100.0 * (double)offset / (double)p->size);
    char line[512];
    int n = snprintf(line, sizeof line, "\r%s: %lld rows, %.0f rows/s%s, %lld published, %lld rejected\033[K",
                     p->name, (long long)p->cur.read, p->rate, pct, (long long)p->cur.published,
                     (long long)rejected_total(&p->cur));
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
        p->drawn = 1;
    }
}

/* "amount=3 timestamp=1" style list of the non-zero reasons (logfmt keys). */
static void reasons_kv(const import_counts *c, char *buf, size_t n, const char *prefix, const char *sep)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int r = 1; r < REJECT_NREASONS && o < n; r++) {
        if (!c->rejected[r]) continue;
        int k = snprintf(buf + o, n - o, "%s%s%s%s%lld", o ? sep : "", prefix, validate_reason_name(r),
                         prefix[0] ? "=" : " ", (long long)c->rejected[r]);
        if (k < 0) break;
        o += (size_t)k;
    }
}

/* One logfmt summary line; head: the leading key=value pairs. */
static void summary(const char *what, const char *head, const import_counts *c, int64_t us)
{
    double secs = (double)us / 1e6;
    double rate = secs > 0 ? (double)(c->read - c->skipped) / secs : 0;
    char kv[512];
    reasons_kv(c, kv, sizeof kv, "rejected_", " ");
    log_info(what,
             "%s rows_read=%lld skipped=%lld published=%lld rejected=%lld%s%s batches=%lld seconds=%.3f "
             "rows_per_s=%.0f",
             head, (long long)c->read, (long long)c->skipped, (long long)c->published,
             (long long)rejected_total(c), kv[0] ? " " : "", kv, (long long)c->batches, secs, rate);
}

static void block(progress *p, const char *title, const import_counts *c, int64_t us)
{
    if (!p->tty) return;
    char kv[512];
    reasons_kv(c, kv, sizeof kv, "", ", ");
    double secs = (double)us / 1e6;
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "%s\n"
                     "  rows read   %12lld\n"
                     "  skipped     %12lld   (committed by an earlier run)\n"
                     "  published   %12lld\n"
                     "  rejected    %12lld%s%s%s\n"
                     "  seconds     %12.2f   (%.0f rows/s)\n",
                     title, (long long)c->read, (long long)c->skipped, (long long)c->published,
                     (long long)rejected_total(c), kv[0] ? "   (" : "", kv, kv[0] ? ")" : "", secs,
                     secs > 0 ? (double)(c->read - c->skipped) / secs : 0.0);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
        (void)w;
    }
}

static void add_counts(import_counts *t, const import_counts *c)
{
    t->read += c->read;
    t->skipped += c->skipped;
    t->published += c->published;
    t->batches += c->batches;
    for (int r = 1; r < REJECT_NREASONS; r++) t->rejected[r] += c->rejected[r];
}

void progress_file_end(progress *p, const char *status)
{
    sync_metrics(p);
    progress_clear(p);
    int64_t us = sig_now_us() - p->file_start_us;
    char head[800], qname[600], qstatus[64];
    snprintf(head, sizeof head, "file=%s status=%s", log_q(qname, sizeof qname, p->name),
             log_q(qstatus, sizeof qstatus, status));
    summary("file summary", head, &p->cur, us);
    char title[400];
    snprintf(title, sizeof title, "%s: %s", p->name, status);
    block(p, title, &p->cur, us);
    add_counts(&p->total, &p->cur);
}

void progress_total(progress *p)
{
    progress_clear(p);
    int64_t us = sig_now_us() - p->run_start_us;
    char head[32];
    snprintf(head, sizeof head, "files=%d", p->nfiles);
    summary("import summary", head, &p->total, us);
    if (p->nfiles > 1) block(p, "total", &p->total, us);
}
