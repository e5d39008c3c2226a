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
 *
 * Partitions (REDIS_PARTITIONS = N, REDIS_CLUSTER; common/tier.h, hand-off 2
 * of the contract): every replica consumes every partition, one consumer per
 * partition (consumer_new_part), in rounds: each round gives every partition
 * one step (set-up, recovery or one pipelined read+apply).  A round that
 * applied nothing with nothing in hand blocks on one partition in turn
 * (XREADGROUP … BLOCK REDIS_TIMEOUT_MS/2/N, at least 50 ms), so idle costs
 * about N+1 commands per block period; a round of caught-up partial batches
 * lingers 10 ms.  Claims, trims, dead-letter trims and reaping run per
 * partition; the gauges are summed over partitions (the clock: the
 * greatest).  /ready needs every partition set up and connected.  The
 * layout (N) is checked at start (tier_check_layout): a mismatch exits 2.
 * One partition on one Redis is exactly the service as it always was: one
 * consumer that blocks and lingers inside its pump, today's key names.
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
#include <stdlib.h>

#define TRIM_EVERY_MS 1000
#define REAP_EVERY_MS 60000
#define GAUGES_EVERY_MS 1000
#define SUMMARY_EVERY_MS 5000
#define SUMMARY_IDLE_EVERY_MS 60000
#define CONSUMER_ROUND_LINGER_MS 10

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

/* The partitions' consumers and the tier they share. */
typedef struct agg_parts {
    tier t;
    consumer **c;
} agg_parts;

static void parts_free(agg_parts *ap)
{
    for (int p = 0; ap->c && p < ap->t.n; p++) consumer_free(ap->c[p]);
    free(ap->c);
    tier_free(&ap->t);
}

/* Check (and record at the first start) the number of partitions; wait while
 * Redis does not answer.  0, 2 on a layout mismatch (logged), 1 when stopping. */
static int check_layout(tier *t)
{
    char err[512], q[600];
    int logged = 0;
    while (!sig_stopping()) {
        int rv = tier_check_layout(t, err, sizeof err);
        if (rv == TIER_OK) {
            if (logged) log_info("partition layout checked", "partitions=%d", t->n);
            return 0;
        }
        if (rv == TIER_ELAYOUT) {
            log_error("refusing to start: wrong number of partitions", "var=REDIS_PARTITIONS detail=%s",
                      log_q(q, sizeof q, err));
            return 2;
        }
        if (!logged++) log_warn("cannot check the partition layout yet, retrying", "detail=%s", log_q(q, sizeof q, err));
        sig_sleep_ms(500);
    }
    return 1;
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
    log_info("started", "version=%s consumer=%s group=%s batch_size=%d claim_idle_ms=%" PRId64 " partitions=%d%s",
             TXAGG_VERSION, cfg->consumer_name, KEYS_GROUP, cfg->batch_size, cfg->claim_idle_ms,
             cfg->redis_partitions > 0 ? cfg->redis_partitions : 1, cfg->redis_cluster[0] ? " cluster=yes" : "");

    char client_name[160], err[300];
    snprintf(client_name, sizeof client_name, "aggregator:%s", cfg->consumer_name);
    agg_parts ap = {0};
    if (tier_init(&ap.t, cfg, client_name, err, sizeof err) != 0) {
        log_error("out of memory at start", "detail=%s", err);
        http_listener_stop(http);
        return 1;
    }
    int n = ap.t.n;
    int rv = check_layout(&ap.t);
    if (rv != 0) {
        parts_free(&ap);
        http_listener_stop(http);
        return rv == 2 ? 2 : 0;
    }
    ap.c = calloc((size_t)n, sizeof *ap.c);
    int made = ap.c != NULL;
    for (int p = 0; made && p < n; p++) {
        ap.c[p] = consumer_new_part(&ap.t, p, cfg->consumer_name, cfg->batch_size,
                                    aggregator_block_ms(cfg->redis_timeout_ms), &st);
        made = ap.c[p] != NULL;
    }
    if (!made) {
        log_error("out of memory at start");
        parts_free(&ap);
        http_listener_stop(http);
        return 1;
    }

    int solo = n == 1;
    /* Several partitions: when a round found every one empty, block on one
     * of them (in turn) for a share of the blocking period, so an idle
     * service neither spins nor leaves a partition unread for long. */
    int idle_block = aggregator_block_ms(cfg->redis_timeout_ms) / n;
    if (idle_block < 50) idle_block = 50;
    int next_wait = 0;
    int64_t claim_every = aggregator_claim_every_ms(cfg->claim_idle_ms);
    int64_t reap_idle = trim_reap_idle_ms(cfg->claim_idle_ms);
    int64_t now = sig_now_ms();
    int64_t next_claim = now, next_trim = now + TRIM_EVERY_MS, next_reap = now + REAP_EVERY_MS, next_gauges = now;

    while (!sig_stopping()) {
        long applied = 0;
        int ready = 1, any_ready = 0, idle = 1, caught_up = 1;
        for (int p = 0; p < n && !sig_stopping(); p++) {
            long k = consumer_step(ap.c[p]);
            if (k > 0) applied += k;
            int r = consumer_ready(ap.c[p]);
            ready &= r;
            any_ready |= r;
            if (!consumer_idle(ap.c[p])) idle = 0;
            if (!consumer_caught_up(ap.c[p])) caught_up = 0;
        }
        atomic_store(&ready_flag, ready);
        if (sig_stopping()) break;
        if (!solo) {
            if (applied == 0 && idle) { /* every partition empty (or held off) */
                int waited = 0;
                for (int k = 0; k < n && !waited; k++) {
                    int p = (next_wait + k) % n;
                    if (!consumer_ready(ap.c[p])) continue;
                    consumer_wait(ap.c[p], idle_block);
                    next_wait = (p + 1) % n;
                    waited = 1;
                }
                if (!waited) sig_sleep_ms(50); /* none reachable: the consumers back off on their own */
            } else if (caught_up && applied > 0) {
                sig_sleep_ms(CONSUMER_ROUND_LINGER_MS); /* let entries accumulate into fuller batches */
            }
        }
        if (!any_ready || sig_stopping()) continue;
        now = sig_now_ms();
        if (now >= next_claim) {
            for (int p = 0; p < n; p++)
                if (consumer_ready(ap.c[p])) consumer_claim(ap.c[p], cfg->claim_idle_ms);
            next_claim = now + claim_every;
        }
        if (now >= next_trim) {
            for (int p = 0; p < n; p++) {
                if (!consumer_ready(ap.c[p])) continue;
                long long k = trim_stream_part(&ap.t, p);
                if (k > 0) {
                    metrics_inc(st.trims);
                    metrics_add(st.entries_trimmed, (uint64_t)k);
                }
            }
            next_trim = now + TRIM_EVERY_MS;
        }
        if (now >= next_reap) {
            for (int p = 0; p < n; p++) {
                if (!consumer_ready(ap.c[p])) continue;
                trim_dead_letters_part(&ap.t, p, KEYS_REJECTED_MAXLEN);
                long long k = trim_reap_part(&ap.t, p, KEYS_GROUP, cfg->consumer_name, reap_idle);
                if (k > 0) metrics_add(st.reaped, (uint64_t)k);
            }
            next_reap = now + REAP_EVERY_MS;
        }
        if (now >= next_gauges) {
            agg_stats_refresh(&st, &ap.t, KEYS_GROUP);
            agg_stats_maybe_log(&st, now, SUMMARY_EVERY_MS, SUMMARY_IDLE_EVERY_MS);
            next_gauges = now + GAUGES_EVERY_MS;
        }
    }

    long drained = 0;
    for (int p = 0; p < n; p++) drained += consumer_drain(ap.c[p]);
    atomic_store(&ready_flag, 0);
    log_info("stopped", "applied_in_drain=%ld entries_applied=%" PRIu64, drained,
             metrics_value(st.entries_applied));
    parts_free(&ap);
    http_listener_stop(http);
    return 0;
}
