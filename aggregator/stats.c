/*
 * stats — aggregator metrics and the periodic summary; see stats.h.
 *
 * Invariant: nothing here is per row above DEBUG; the summary is one INFO
 * line per period, with rates computed from the counters themselves.
 */
#include "stats.h"
#include "stream.h"
#include "keys.h"
#include "log.h"
#include "timeparse.h"

#include <inttypes.h>
#include <string.h>

void agg_stats_init(agg_stats *st)
{
    memset(st, 0, sizeof *st);
    st->entries_applied = metrics_counter("txagg_aggregator_entries_applied_total",
                                          "Stream entries acknowledged by applied batches", NULL);
    st->rows_counted = metrics_counter("txagg_aggregator_rows_counted_total",
                                       "Valid entries whose cents were added to the daily hashes", NULL);
    st->batches = metrics_counter("txagg_aggregator_batches_total", "Batches applied", NULL);
    st->claims = metrics_counter("txagg_aggregator_claimed_entries_total",
                                 "Entries claimed (XAUTOCLAIM) from idle consumers", NULL);
    st->stale_batches = metrics_counter("txagg_aggregator_stale_batches_total",
                                        "Batches refused by the ownership check (nothing applied)", NULL);
    st->trims = metrics_counter("txagg_aggregator_trims_total", "Stream trims that removed entries", NULL);
    st->entries_trimmed = metrics_counter("txagg_aggregator_entries_trimmed_total", "Entries trimmed", NULL);
    st->rejected = metrics_counter("txagg_aggregator_rejected_total",
                                   "Malformed stream entries sent to transactions:rejected", NULL);
    st->gone = metrics_counter("txagg_aggregator_gone_entries_total",
                               "Pending entries found deleted from the stream, acknowledged", NULL);
    st->reaped = metrics_counter("txagg_aggregator_consumers_reaped_total", "Idle consumers deleted", NULL);
    st->lag = metrics_gauge("txagg_aggregator_lag", "Entries not yet delivered to the group", NULL);
    st->pending = metrics_gauge("txagg_aggregator_pending", "Entries delivered to the group, not acknowledged", NULL);
    st->clock = metrics_gauge("txagg_aggregator_virtual_clock_seconds",
                              "system:virtual_clock as epoch seconds (0 = unset)", NULL);
    metrics_counter_fn("txagg_redis_errors_total", "Redis I/O errors", NULL, rconn_error_total);
    metrics_counter_fn("txagg_redis_reconnects_total", "Redis reconnections", NULL, rconn_reconnect_total);
    st->last_log_ms = -1;
}

int agg_stats_refresh(agg_stats *st, rconn *rc, const char *group)
{
    stream_backlog b;
    if (stream_group_backlog(rc, KEYS_STREAM, group, &b) != 0) return -1;
    if (b.found) {
        metrics_set(st->lag, b.lag);
        metrics_set(st->pending, b.pending);
    }
    redisReply *r = rconn_cmd(rc, "GET %s", KEYS_VIRTUAL_CLOCK);
    if (!r) return -1;
    int64_t epoch = 0;
    if (r->type == REDIS_REPLY_STRING && ts_parse(r->str, r->len, &epoch) != 0) epoch = 0;
    metrics_set(st->clock, epoch);
    freeReplyObject(r);
    return 0;
}

void agg_stats_maybe_log(agg_stats *st, int64_t now_ms, int64_t every_ms)
{
    if (st->last_log_ms < 0) {
        st->last_log_ms = now_ms;
        st->last_applied = metrics_value(st->entries_applied);
        st->last_stale = metrics_value(st->stale_batches);
        st->last_claims = metrics_value(st->claims);
        return;
    }
    int64_t dt = now_ms - st->last_log_ms;
    if (dt < every_ms) return;
    uint64_t applied = metrics_value(st->entries_applied);
    uint64_t stale = metrics_value(st->stale_batches);
    uint64_t claims = metrics_value(st->claims);
    char clock[TS_ISO_LEN + 1] = "-";
    int64_t c = (int64_t)metrics_value(st->clock);
    if (c > 0) ts_format_iso(c, clock);
    log_info("summary", "rows_per_s=%" PRIu64 " applied=%" PRIu64 " lag=%" PRId64 " pending=%" PRId64
                        " clock=%s stale=%" PRIu64 " claimed=%" PRIu64 " rejected=%" PRIu64 " trimmed=%" PRIu64,
             (applied - st->last_applied) * 1000 / (uint64_t)dt, applied, (int64_t)metrics_value(st->lag),
             (int64_t)metrics_value(st->pending), clock, stale - st->last_stale, claims - st->last_claims,
             metrics_value(st->rejected), metrics_value(st->entries_trimmed));
    st->last_log_ms = now_ms;
    st->last_applied = applied;
    st->last_stale = stale;
    st->last_claims = claims;
}
