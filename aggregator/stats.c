/*
 * stats — aggregator metrics and the periodic summary; see stats.h.
 *
 * Invariant: nothing here is per row above DEBUG; the summary is at most one
 * INFO line per period, only when a figure it shows changed since the last
 * line — or once per idle period when none did — with rates computed from
 * the counters themselves.
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
    st->refused = metrics_counter("txagg_aggregator_refused_entries_total",
                                  "Valid stream entries sent to transactions:rejected because their counter refused "
                                  "them (not a hash, not an int64, or int64 overflow)",
                                  NULL);
    st->gone = metrics_counter("txagg_aggregator_gone_entries_total",
                               "Pending entries found deleted from the stream, acknowledged", NULL);
    st->reaped = metrics_counter("txagg_aggregator_consumers_reaped_total", "Idle consumers deleted", NULL);
    st->lag = metrics_gauge("txagg_aggregator_lag", "Entries not yet delivered to the group", NULL);
    st->pending = metrics_gauge("txagg_aggregator_pending", "Entries delivered to the group, not acknowledged", NULL);
    st->clock = metrics_gauge("txagg_aggregator_virtual_clock_timestamp_seconds",
                              "system:virtual_clock, the greatest event time applied, as a Unix time (0 = unset)", NULL);
    st->dead_letters = metrics_counter("txagg_aggregator_dead_letters_added_total",
                                       "Entries ever added to the dead-letter stream transactions:rejected, by any "
                                       "importer or aggregator (the stream's entries-added, read every second)",
                                       NULL);
    st->last_log_ms = -1;
}

int agg_stats_refresh(agg_stats *st, tier *t, const char *group)
{
    int64_t lag = 0, pending = 0, clock = 0, dead = 0;
    int found = 0, dead_known = 0;
    for (int p = 0; p < t->n; p++) {
        const keys_part *part = &t->parts[p];
        rconn *rc = tier_conn(t, p);
        if (!rc) return -1;
        stream_backlog b;
        if (stream_group_backlog(rc, part->stream, group, &b) != 0) return -1;
        if (b.found) {
            found = 1;
            lag += b.lag;
            pending += b.pending;
        }
        redisReply *r = rconn_cmd(rc, "GET %s", part->clock);
        if (!r) return -1;
        int64_t epoch = 0;
        if (r->type == REDIS_REPLY_STRING && ts_parse(r->str, r->len, &epoch) != 0) epoch = 0;
        if (epoch > clock) clock = epoch;
        freeReplyObject(r);
        int64_t added;
        int rv = stream_entries_added(rc, part->rejected, &added);
        if (rv < 0) return -1;
        if (rv == 0) {
            dead_known = 1;
            dead += added;
        }
    }
    if (found) {
        metrics_set(st->lag, lag);
        metrics_set(st->pending, pending);
    }
    metrics_set(st->clock, clock);
    if (dead_known) metrics_set(st->dead_letters, dead);
    return 0;
}

/* The figures the summary line shows, as of now. */
static void summary_figures(const agg_stats *st, uint64_t f[SUMMARY_NFIGURES])
{
    f[0] = metrics_value(st->entries_applied);
    f[1] = metrics_value(st->stale_batches);
    f[2] = metrics_value(st->claims);
    f[3] = metrics_value(st->lag);
    f[4] = metrics_value(st->pending);
    f[5] = metrics_value(st->clock);
    f[6] = metrics_value(st->rejected);
    f[7] = metrics_value(st->entries_trimmed);
}

int agg_stats_maybe_log(agg_stats *st, int64_t now_ms, int64_t every_ms, int64_t idle_every_ms)
{
    uint64_t f[SUMMARY_NFIGURES];
    summary_figures(st, f);
    if (st->last_log_ms < 0) {
        st->last_log_ms = now_ms;
        memcpy(st->last, f, sizeof f);
        return 0;
    }
    int64_t dt = now_ms - st->last_log_ms;
    int changed = memcmp(st->last, f, sizeof f) != 0;
    if (dt < every_ms || (!changed && dt < idle_every_ms)) return 0;
    char clock[TS_ISO_LEN + 1] = "-";
    if ((int64_t)f[5] > 0) ts_format_iso((int64_t)f[5], clock);
    log_info("summary", "rows_per_s=%" PRIu64 " applied=%" PRIu64 " lag=%" PRId64 " pending=%" PRId64
                        " clock=%s stale=%" PRIu64 " claimed=%" PRIu64 " rejected=%" PRIu64 " trimmed=%" PRIu64,
             (f[0] - st->last[0]) * 1000 / (uint64_t)dt, f[0], (int64_t)f[3], (int64_t)f[4], clock, f[1] - st->last[1],
             f[2] - st->last[2], f[6], f[7]);
    st->last_log_ms = now_ms;
    memcpy(st->last, f, sizeof f);
    return 1;
}
