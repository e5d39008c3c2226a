/*
 * mreport — counters and the closing summary of `persistor migrate`; see
 * mreport.h.
 */
#include "mreport.h"
#include "log.h"
#include "money.h"

#include <stdarg.h>
#include <string.h>

void mreport_init(mreport *r, int check, FILE *out)
{
    memset(r, 0, sizeof *r);
    r->check = check;
    r->out = out;
}

void mreport_refuse(mreport *r, const char *fmt, ...)
{
    char what[1024], q[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    r->refused++;
    fprintf(r->out, "refused: %s\n", what);
    fflush(r->out);
    log_error("migration refused a value", "what=%s", log_q(q, sizeof q, what));
}

void mreport_fail(mreport *r, const char *fmt, ...)
{
    if (r->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failure, sizeof r->failure, fmt, ap);
    va_end(ap);
    r->failed = 1;
    char q[300];
    log_error("migration failed", "error=%s", log_q(q, sizeof q, r->failure));
}

void mreport_add(mreport_sum *s, int64_t cents)
{
    if (__builtin_add_overflow(s->cents, cents, &s->cents)) s->overflow = 1;
}

/* "123456 cents (1234.56)", or "overflow". */
static const char *sum_text(const mreport_sum *s, char *buf, size_t n)
{
    if (s->overflow) {
        snprintf(buf, n, "beyond int64 cents");
        return buf;
    }
    char m[MONEY_FMT_MAX];
    money_format(s->cents, m, sizeof m);
    snprintf(buf, n, "%lld cents (%s)", (long long)s->cents, m);
    return buf;
}

static int sums_equal(const mreport_sum *a, const mreport_sum *b)
{
    return !a->overflow && !b->overflow && a->cents == b->cents;
}

static const char *clock_text(const mreport *r, char *buf, size_t n)
{
    switch (r->clock_state) {
    case MREPORT_CLOCK_ABSENT: snprintf(buf, n, "absent"); break;
    case MREPORT_CLOCK_KEPT: snprintf(buf, n, "%s (already txagg's form)", r->clock_new); break;
    case MREPORT_CLOCK_REWRITTEN:
        snprintf(buf, n, "%s -> %s%s", r->clock_old, r->clock_new, r->check ? " (would be rewritten)" : "");
        break;
    default: snprintf(buf, n, "%s refused", r->clock_old); break;
    }
    return buf;
}

void mreport_print(const mreport *r)
{
    FILE *o = r->out;
    const char *conv = r->check ? "to convert" : "converted";
    char a[96], b[96], c[160];
    fprintf(o, "%s summary%s\n", r->check ? "migration check" : "migration", r->check ? " (--check: nothing written)" : "");
    fprintf(o, "  redis hashes:     %lld %s (%lld fields), %lld already txagg's, %lld converted by another run, "
               "%lld refused; %lld agg:* keys that are not daily hashes left alone\n",
            (long long)r->hashes_converted, conv, (long long)r->fields_converted, (long long)r->hashes_txagg,
            (long long)r->hashes_elsewhere, (long long)r->hashes_refused, (long long)r->keys_ignored);
    fprintf(o, "  redis cents:      before %s, after %s%s\n", sum_text(&r->hot_before, a, sizeof a),
            sum_text(&r->hot_after, b, sizeof b),
            sums_equal(&r->hot_before, &r->hot_after) ? " (equal)" : " (DIFFERENT)");
    fprintf(o, "  virtual clock:    %s\n", clock_text(r, c, sizeof c));
    fprintf(o, "  mongodb docs:     %lld seen: %lld %s, %lld already txagg's, %lld converted by another run, "
               "%lld refused\n",
            (long long)r->docs_seen, (long long)r->docs_converted, conv, (long long)r->docs_txagg,
            (long long)r->docs_elsewhere, (long long)r->docs_refused);
    fprintf(o, "  mongodb cents:    before %s, after %s%s\n", sum_text(&r->cold_before, a, sizeof a),
            sum_text(&r->cold_after, b, sizeof b),
            sums_equal(&r->cold_before, &r->cold_after) ? " (equal)" : " (DIFFERENT)");
    fprintf(o, "  archived through: %s%s\n", r->newest_day[0] ? r->newest_day : "(no document)",
            r->through_raised ? (r->check ? " (would be raised)" : " (raised)") : "");
    if (!r->stream_exists) {
        fprintf(o, "  stream:           absent\n");
    } else {
        fprintf(o, "  stream:           %lld entries; carried over: %lld pending and %lld undelivered (%lld in the "
                   "Python service's format, %lld in txagg's, %lld other)%s\n",
                (long long)r->stream_len, (long long)r->pending, (long long)r->undelivered,
                (long long)r->undelivered_python, (long long)r->undelivered_txagg, (long long)r->undelivered_other,
                r->group_exists ? "" : "; no group aggregators yet: txagg reads the whole stream");
        for (int i = 0; i < r->n_consumers; i++)
            fprintf(o, "    pending with consumer %s: %lld\n", r->consumers[i].name, (long long)r->consumers[i].pending);
    }
    fprintf(o, "  refused:          %lld\n", (long long)r->refused);
    if (r->failed) fprintf(o, "  FAILED:           %s (nothing is lost: run it again)\n", r->failure);
    if (r->stopped) fprintf(o, "  STOPPED:          by a signal (run it again to finish)\n");
    fflush(o);
    log_info("migration summary",
             "check=%d hashes_converted=%lld hashes_refused=%lld hot_cents_before=%lld hot_cents_after=%lld "
             "docs_converted=%lld docs_refused=%lld cold_cents_before=%lld cold_cents_after=%lld pending=%lld "
             "undelivered=%lld refused=%lld failed=%d stopped=%d",
             r->check, (long long)r->hashes_converted, (long long)r->hashes_refused, (long long)r->hot_before.cents,
             (long long)r->hot_after.cents, (long long)r->docs_converted, (long long)r->docs_refused,
             (long long)r->cold_before.cents, (long long)r->cold_after.cents, (long long)r->pending,
             (long long)r->undelivered, (long long)r->refused, r->failed, r->stopped);
}

int mreport_status(const mreport *r)
{
    if (r->failed) return MREPORT_EXIT_FAILED;
    if (r->stopped) return MREPORT_EXIT_STOPPED;
    if (r->refused) return MREPORT_EXIT_REFUSED;
    if (!sums_equal(&r->hot_before, &r->hot_after) || !sums_equal(&r->cold_before, &r->cold_after))
        return MREPORT_EXIT_REFUSED;
    return MREPORT_EXIT_OK;
}
