/*
 * metrics — registry and Prometheus text rendering; see metrics.h.
 *
 * Invariants: the registry only grows (metric pointers stay valid for the life
 * of the process); values are atomics, so a render sees each value whole.
 * A family is every metric of one name: its first registration sets its
 * HELP text and type (a later one of another type is refused), and the
 * members are chained in registration order (`next`), so a render prints
 * each family as one group — # HELP, # TYPE, then all its samples — however
 * the registrations of different families interleave.  A chain link is
 * published before the registry count, and a render follows only links below
 * the count it read, so a concurrent registration is either wholly seen or
 * not at all.
 */
#include "metrics.h"
#include "dynbuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define METRICS_MAX 512
#define HIST_MAX_BOUNDS 24

enum mtype { M_COUNTER, M_GAUGE, M_HIST, M_COUNTER_FN, M_GAUGE_FN };

struct metric {
    enum mtype type;
    char name[96];
    char help[192];
    char labels[192];
    atomic_int_fast64_t value;
    /* histogram */
    int nbounds;
    int64_t bounds_us[HIST_MAX_BOUNDS];
    atomic_uint_fast64_t buckets[HIST_MAX_BOUNDS + 1];
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
    uint64_t (*cfn)(void);
    int64_t (*gfn)(void);
    /* family: 1 on the first metric of its name; index of the next metric
     * of the same name (-1: none yet) */
    int head;
    atomic_int next;
};

static metric registry[METRICS_MAX];
static atomic_int nmetrics;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

const int64_t metrics_latency_buckets_us[] = {100,   250,    500,    1000,   2500,   5000,    10000,
                                              25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
                                              5000000, 10000000};
const int metrics_latency_nbuckets = sizeof metrics_latency_buckets_us / sizeof metrics_latency_buckets_us[0];

static uint64_t rss_bytes(void);
static int64_t rss_gauge(void) { return (int64_t)rss_bytes(); }
static int64_t one(void) { return 1; }
static const char *type_name(enum mtype t);
static metric *reg(enum mtype type, const char *name, const char *help, const char *labels);
static void builtins(void);

static void ensure_builtins(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, builtins);
}

static void builtins(void)
{
    metric *m = reg(M_GAUGE_FN, "txagg_build_info", "Version of this txagg build (the value is always 1)",
                    "version=\"" TXAGG_VERSION "\"");
    if (m) m->gfn = one;
    m = reg(M_GAUGE_FN, "process_resident_memory_bytes", "Resident set size of this process", NULL);
    if (m) m->gfn = rss_gauge;
}

static metric *reg(enum mtype type, const char *name, const char *help, const char *labels)
{
    pthread_mutex_lock(&reg_lock);
    int n = atomic_load(&nmetrics), last = -1;
    for (int i = 0; i < n; i++) {
        metric *m = &registry[i];
        if (strcmp(m->name, name) != 0) continue;
        if (!strcmp(m->labels, labels ? labels : "")) {
            pthread_mutex_unlock(&reg_lock);
            return m;
        }
        last = i;
    }
    metric *m = NULL;
    /* One type per family: a metric of another type under the same name
     * would make the page invalid, so it is refused (NULL). */
    if (n < METRICS_MAX && (last < 0 || !strcmp(type_name(registry[last].type), type_name(type)))) {
        m = &registry[n];
        m->type = type;
        snprintf(m->name, sizeof m->name, "%s", name);
        snprintf(m->help, sizeof m->help, "%s", help ? help : "");
        snprintf(m->labels, sizeof m->labels, "%s", labels ? labels : "");
        m->head = last < 0;
        atomic_store(&m->next, -1);
        if (last >= 0) atomic_store(&registry[last].next, n);
        atomic_store(&nmetrics, n + 1);
    }
    pthread_mutex_unlock(&reg_lock);
    return m;
}

metric *metrics_counter(const char *name, const char *help, const char *labels)
{
    ensure_builtins();
    return reg(M_COUNTER, name, help, labels);
}

metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
    ensure_builtins();
    return reg(M_GAUGE, name, help, labels);
}

metric *metrics_histogram(const char *name, const char *help, const char *labels, const int64_t *bounds_us,
                          int nbounds)
{
    ensure_builtins();
    metric *m = reg(M_HIST, name, help, labels);
    if (m && m->nbounds == 0) {
        if (nbounds > HIST_MAX_BOUNDS) nbounds = HIST_MAX_BOUNDS;
        memcpy(m->bounds_us, bounds_us, sizeof *bounds_us * (size_t)nbounds);
        m->nbounds = nbounds;
    }
    return m;
}

void metrics_counter_fn(const char *name, const char *help, const char *labels, uint64_t (*fn)(void))
{
    ensure_builtins();
    metric *m = reg(M_COUNTER_FN, name, help, labels);
    if (m) m->cfn = fn;
}

void metrics_gauge_fn(const char *name, const char *help, const char *labels, int64_t (*fn)(void))
{
    ensure_builtins();
    metric *m = reg(M_GAUGE_FN, name, help, labels);
    if (m) m->gfn = fn;
}

void metrics_inc(metric *m)
{
    if (m) atomic_fetch_add(&m->value, 1);
}

void metrics_add(metric *m, uint64_t v)
{
    if (m) atomic_fetch_add(&m->value, (int_fast64_t)v);
}

void metrics_set(metric *m, int64_t v)
{
    if (m) atomic_store(&m->value, v);
}

uint64_t metrics_value(const metric *m)
{
    return m ? (uint64_t)atomic_load(&((metric *)m)->value) : 0;
}

void metrics_observe_us(metric *m, int64_t us)
{
    if (!m || m->type != M_HIST) return;
    if (us < 0) us = 0;
    int i = 0;
    while (i < m->nbounds && us > m->bounds_us[i]) i++;
    atomic_fetch_add(&m->buckets[i], 1);
    atomic_fetch_add(&m->count, 1);
    atomic_fetch_add(&m->sum_us, (uint_fast64_t)us);
}

/* The exposition text's cap.  An append that fails (out of memory, or the
 * cap) leaves the text as it was: a scrape is at worst short, never cut
 * inside a line. */
#define TEXT_MAX ((size_t)64 << 20)

/* Microseconds as seconds, exactly: 2500 → "0.0025". */
static void us_to_seconds(int64_t us, char *buf, size_t n)
{
    int64_t s = us / 1000000, f = us % 1000000;
    if (f == 0) {
        snprintf(buf, n, "%lld", (long long)s);
        return;
    }
    char frac[8];
    snprintf(frac, sizeof frac, "%06lld", (long long)f);
    for (int i = 5; i > 0 && frac[i] == '0'; i--) frac[i] = '\0';
    snprintf(buf, n, "%lld.%s", (long long)s, frac);
}

static const char *type_name(enum mtype t)
{
    switch (t) {
    case M_COUNTER:
    case M_COUNTER_FN: return "counter";
    case M_HIST: return "histogram";
    default: return "gauge";
    }
}

static void render_one(dynbuf *b, const metric *m)
{
    const char *lo = m->labels[0] ? "{" : "", *lc = m->labels[0] ? "}" : "";
    switch (m->type) {
    case M_COUNTER:
    case M_GAUGE:
        dynbuf_printf(b, "%s%s%s%s %lld\n", m->name, lo, m->labels, lc, (long long)atomic_load(&m->value));
        break;
    case M_COUNTER_FN:
        dynbuf_printf(b, "%s%s%s%s %llu\n", m->name, lo, m->labels, lc, (unsigned long long)m->cfn());
        break;
    case M_GAUGE_FN:
        dynbuf_printf(b, "%s%s%s%s %lld\n", m->name, lo, m->labels, lc, (long long)m->gfn());
        break;
    case M_HIST: {
        uint64_t cum = 0;
        const char *sep = m->labels[0] ? "," : "";
        for (int k = 0; k <= m->nbounds; k++) {
            cum += atomic_load(&m->buckets[k]);
            char le[32];
            if (k < m->nbounds) us_to_seconds(m->bounds_us[k], le, sizeof le);
            else snprintf(le, sizeof le, "+Inf");
            dynbuf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", m->name, m->labels, sep, le, (unsigned long long)cum);
        }
        char sum[32];
        us_to_seconds((int64_t)atomic_load(&m->sum_us), sum, sizeof sum);
        dynbuf_printf(b, "%s_sum%s%s%s %s\n", m->name, lo, m->labels, lc, sum);
        dynbuf_printf(b, "%s_count%s%s%s %llu\n", m->name, lo, m->labels, lc, (unsigned long long)atomic_load(&m->count));
        break;
    }
    }
}

char *metrics_render(size_t *len)
{
    ensure_builtins();
    dynbuf b;
    dynbuf_init(&b, TEXT_MAX);
    dynbuf_reserve(&b, 0); /* "" rather than NULL when nothing else fits */
    int n = atomic_load(&nmetrics);
    for (int i = 0; i < n; i++) {
        const metric *m = &registry[i];
        if (!m->head) continue;
        dynbuf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, type_name(m->type));
        for (int j = i; j >= 0 && j < n; j = atomic_load(&registry[j].next)) render_one(&b, &registry[j]);
    }
    if (len) *len = b.len;
    return b.p;
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    int ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
    fclose(f);
    return ok ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}
