/*
 * metrics — process-wide counters, gauges and histograms rendered in the
 * Prometheus text format (version 0.0.4) for /metrics.
 *
 * Register at start-up (registration takes a lock and returns the same metric
 * for the same name and labels); update from any thread without locks (C11
 * atomics).  All metrics of one name form a family, rendered as one group
 * (one # HELP and # TYPE, then every sample) whatever the registration order;
 * the family's first registration sets its HELP text, and a registration of
 * another type under that name is refused (NULL; updates of NULL are no-ops).
 * A metric several modules or services share is registered in one place in
 * common/ (e.g. the Redis and MongoDB ones by common/redis and common/mongo),
 * so it has one HELP text everywhere.  Histograms count microseconds and print seconds.  Function
 * metrics read a value at render time (e.g. rconn_error_total).  Every
 * process also exports txagg_build_info and process_resident_memory_bytes.
 */
#ifndef TXAGG_METRICS_H
#define TXAGG_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metric metric;

/* labels: NULL or Prometheus label pairs without braces: route="/stats",code="200" */
metric *metrics_counter(const char *name, const char *help, const char *labels);
metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* bounds_us: ascending upper bounds in microseconds (+Inf is implicit). */
metric *metrics_histogram(const char *name, const char *help, const char *labels, const int64_t *bounds_us,
                          int nbounds);
void metrics_counter_fn(const char *name, const char *help, const char *labels, uint64_t (*fn)(void));
void metrics_gauge_fn(const char *name, const char *help, const char *labels, int64_t (*fn)(void));

void metrics_inc(metric *m);
void metrics_add(metric *m, uint64_t v);
/* A gauge's value, or a counter mirrored from a count kept elsewhere (e.g.
 * by Redis), which only that source may move. */
void metrics_set(metric *m, int64_t v);
void metrics_observe_us(metric *m, int64_t us);
uint64_t metrics_value(const metric *m); /* counter / gauge value, for logs and tests */

/* The whole exposition as a malloc'd NUL-terminated string (free it). */
char *metrics_render(size_t *len);

/* Default latency buckets: 100 µs ... 10 s. */
extern const int64_t metrics_latency_buckets_us[];
extern const int metrics_latency_nbuckets;

#endif
