/*
 * aggregator — the service loop: one consumer (consumer.c) stepping through
 * its batches, and between batches the periodic duties — claims of idle
 * consumers' entries, stream trimming, reaping of left-behind consumers,
 * gauges and the summary line.  On SIGTERM/SIGINT it applies what it has in
 * hand, reads nothing more and returns 0.
 *
 * Periods: claims every CLAIM_IDLE_MS/2 (bounded to 1..15 s), trim every
 * second, reap every minute (consumers idle over max(10 × CLAIM_IDLE_MS,
 * 10 min)), gauges every second, summary every 5 s while its figures change
 * (once a minute when idle).  /ready (worker
 * listener on METRICS_PORT) is 200 while connected with the group set up.
 */
#include "aggregator.h"
#include "consumer.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "signals.h"
#include "stats.h"
#include "trim.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>

#define TRIM_EVERY_MS 1000
#define REAP_EVERY_MS 60000
#define GAUGES_EVERY_MS 1000
#define SUMMARY_EVERY_MS 5000
#define SUMMARY_IDLE_EVERY_MS 60000

static atomic_int ready_flag;

static int is_ready(void *arg, const char *query)
{
    (void)arg;
    (void)query;
    return atomic_load(&ready_flag);
}

int64_t aggregator_claim_every_ms(int64_t claim_idle_ms)
{
    int64_t p = claim_idle_ms / 2;
    return p < 1000 ? 1000 : p > 15000 ? 15000 : p;
}

int aggregator_block_ms(int redis_timeout_ms)
{
    int b = redis_timeout_ms / 2;
    return b > 1000 ? 1000 : b < 1 ? 1 : b;
}

int aggregator_run(const txagg_config *cfg)
{
    agg_stats st;
    agg_stats_init(&st);

    http_listener *http = NULL;
    if (cfg->metrics_port > 0) {
        char err[300], q[400];
        http = http_listener_start(cfg->metrics_host, cfg->metrics_port, HTTP_LISTEN_METRICS, is_ready, NULL, err,
                                   sizeof err);
        if (!http) { /* asked for and not there: probes would fail with the cause buried here */
            log_error("cannot start", "detail=%s", log_q(q, sizeof q, err));
            return 1;
        }
    }
    log_info("started", "version=%s consumer=%s group=%s batch_size=%d claim_idle_ms=%" PRId64, TXAGG_VERSION,
             cfg->consumer_name, KEYS_GROUP, cfg->batch_size, cfg->claim_idle_ms);

    char client_name[160];
    snprintf(client_name, sizeof client_name, "aggregator:%s", cfg->consumer_name);
    rconn *rc = rconn_new(cfg, client_name);
    consumer *c = rc ? consumer_new(rc, cfg->consumer_name, cfg->batch_size,
                                    aggregator_block_ms(cfg->redis_timeout_ms), &st)
                     : NULL;
    if (!c) {
        log_error("out of memory at start");
        rconn_free(rc);
        http_listener_stop(http);
        return 1;
    }

    int64_t claim_every = aggregator_claim_every_ms(cfg->claim_idle_ms);
    int64_t reap_idle = trim_reap_idle_ms(cfg->claim_idle_ms);
    int64_t now = sig_now_ms();
    int64_t next_claim = now, next_trim = now + TRIM_EVERY_MS, next_reap = now + REAP_EVERY_MS, next_gauges = now;

    while (!sig_stopping()) {
        consumer_step(c);
        atomic_store(&ready_flag, consumer_ready(c));
        if (!consumer_ready(c) || sig_stopping()) continue;
        now = sig_now_ms();
        if (now >= next_claim) {
            consumer_claim(c, cfg->claim_idle_ms);
            next_claim = now + claim_every;
        }
        if (now >= next_trim) {
            long long n = trim_stream(rc);
            if (n > 0) {
                metrics_inc(st.trims);
                metrics_add(st.entries_trimmed, (uint64_t)n);
            }
            next_trim = now + TRIM_EVERY_MS;
        }
        if (now >= next_reap) {
            trim_dead_letters(rc, KEYS_REJECTED_MAXLEN);
            long long n = trim_reap_consumers(rc, KEYS_GROUP, cfg->consumer_name, reap_idle);
            if (n > 0) metrics_add(st.reaped, (uint64_t)n);
            next_reap = now + REAP_EVERY_MS;
        }
        if (now >= next_gauges) {
            agg_stats_refresh(&st, rc, KEYS_GROUP);
            agg_stats_maybe_log(&st, now, SUMMARY_EVERY_MS, SUMMARY_IDLE_EVERY_MS);
            next_gauges = now + GAUGES_EVERY_MS;
        }
    }

    long drained = consumer_drain(c);
    atomic_store(&ready_flag, 0);
    log_info("stopped", "applied_in_drain=%ld entries_applied=%" PRIu64, drained,
             metrics_value(st.entries_applied));
    consumer_free(c);
    rconn_free(rc);
    http_listener_stop(http);
    return 0;
}
