/*
 * txgen — deterministic transaction CSV generator for tests, benchmarks and
 * the demo (bin/txgen).  See usage() for the flags.
 *
 * Deterministic: the same flags give the same bytes (splitmix64 seeded by
 * --seed; no rand(), no clock).  Constant memory: rows are formatted into a
 * fixed output buffer; the expectation is a table of days × 2 types × methods
 * of integer cents.  The expected totals are computed from the integers
 * generated, never by parsing the text back, and the calendar here is its own
 * (a day-by-day walk from --start), independent of common/timeparse, so the
 * expectation is an oracle for the importer and aggregator, not a copy of
 * them.
 *
 * Valid rows vary their form the way real files do — UTC or ±HH:MM offsets
 * (which move the local date across midnight), 'T' or ' ' separator, 'Z',
 * fractions of a second, any case of type and method, amounts with 0, 1 or 2
 * decimals, quoted or space-padded fields, CRLF line ends, blank lines — so
 * every import exercises the input rules.  With --bad-every M, every M-th row
 * is invalid for exactly one reason, rotating through field_count, timestamp,
 * type, payment_method, amount, sleep_ms (every other field of it is valid).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_METHODS 64
#define MAX_DAYS 100000
#define OUTBUF (1 << 20)

static const char *const base_methods[] = {"visa",   "mastercard", "paypal", "apple_pay", "google_pay",
                                           "crypto", "bank_transfer", "amex"};
enum { NBASE = sizeof base_methods / sizeof base_methods[0] };

static const char *const reasons[] = {"field_count", "timestamp", "type", "payment_method", "amount", "sleep_ms"};
enum { NREASONS = 6 };

static const char usage_text[] =
    "Usage: txgen --rows N [--days D] [--start YYYY-MM-DD] [--seed S] [--methods K]\n"
    "             [--bad-every M] [--sleep-ms MAX] [--expect FILE]\n"
    "\n"
    "Writes a transactions CSV (header timestamp,type,payment_method,amount,sleep_ms, then\n"
    "N rows in random time order over D days) to standard output.  The same flags always\n"
    "give the same bytes.\n"
    "\n"
    "  --rows N         data rows to write (required)\n"
    "  --days D         days spanned, from --start (default 30, at most 100000)\n"
    "  --start DAY      first UTC day (default 2026-01-01)\n"
    "  --seed S         PRNG seed (default 1)\n"
    "  --methods K      payment methods used, 1..64 (default 6), the first K of visa,\n"
    "                   mastercard, paypal, apple_pay, google_pay, crypto, bank_transfer, amex,\n"
    "                   m09, m10, ...\n"
    "  --bad-every M    make every M-th row invalid, the reason rotating through field_count,\n"
    "                   timestamp, type, payment_method, amount, sleep_ms (default 0 = none)\n"
    "  --sleep-ms MAX   sleep_ms uniform in 0..MAX (default 20; 0 = always 0)\n"
    "  --plain          only the sample's form (UTC 'T', lower case, LF, 2 decimals)\n"
    "  --expect FILE    also write the exact expected totals to FILE:\n"
    "                     '# rows N', '# good N', '# bad N', '# bad_<reason> N' lines, then one\n"
    "                     line per UTC day/type/method with accepted rows, sorted:\n"
    "                     YYYY-MM-DD<TAB>deposit|withdrawal<TAB>method<TAB>cents\n"
    "  -h, --help       this text\n";

/* splitmix64 */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

/* --- output ------------------------------------------------------------- */
static char out[OUTBUF + 4096];
static size_t outlen;

static void flush_out(void)
{
    if (outlen && fwrite(out, 1, outlen, stdout) != outlen) {
        fprintf(stderr, "txgen: write: %s\n", strerror(errno));
        exit(1);
    }
    outlen = 0;
}
static void put(const char *s, size_t n)
{
    memcpy(out + outlen, s, n);
    outlen += n;
}
static void puts_(const char *s) { put(s, strlen(s)); }
static void putc_(char c) { out[outlen++] = c; }
static void put2(unsigned v)
{
    putc_((char)('0' + v / 10 % 10));
    putc_((char)('0' + v % 10));
}
static void putu(uint64_t v)
{
    char tmp[24];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10), v /= 10;
    while (v);
    while (n) putc_(tmp[--n]);
}

/* --- an independent calendar ---------------------------------------------- */
typedef struct ymd {
    int y, m, d;
} ymd;
static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int dim(int y, int m)
{
    static const int t[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : t[m - 1];
}
static ymd next_day(ymd a)
{
    if (++a.d > dim(a.y, a.m)) {
        a.d = 1;
        if (++a.m > 12) {
            a.m = 1;
            a.y++;
        }
    }
    return a;
}
static ymd prev_day(ymd a)
{
    if (--a.d < 1) {
        if (--a.m < 1) {
            a.m = 12;
            a.y--;
        }
        a.d = dim(a.y, a.m);
    }
    return a;
}

/* dates[i + 1] = the date of day index i, for i in -1..days */
static ymd *dates;

static void put_date(ymd a)
{
    put2((unsigned)a.y / 100);
    put2((unsigned)a.y % 100);
    putc_('-');
    put2((unsigned)a.m);
    putc_('-');
    put2((unsigned)a.d);
}

/* --- rows ------------------------------------------------------------------- */
typedef struct opts {
    uint64_t rows, seed, bad_every;
    int days, methods, sleep_max, plain;
    ymd start;
    const char *expect;
} opts;

static char methods[MAX_METHODS][16];

/* Maybe wrap a field: quoted, or padded with blanks (both are valid input). */
static void field_open(const opts *o, int *quoted)
{
    *quoted = 0;
    if (o->plain) return;
    uint64_t r = below(100);
    if (r < 2) {
        putc_('"');
        *quoted = 1;
        if (r == 0) putc_(' '); /* blanks inside quotes are trimmed too */
    } else if (r < 4) {
        putc_(r == 2 ? ' ' : '\t');
    }
}
static void field_close(int quoted)
{
    if (quoted) putc_('"');
}

static void put_timestamp(const opts *o, int day, unsigned sec, int bad)
{
    if (bad) { /* not a real calendar date, else well-formed */
        ymd a = dates[day + 1];
        put2((unsigned)a.y / 100);
        put2((unsigned)a.y % 100);
        puts_(below(2) ? "-02-30T" : "-13-01T");
        put2(sec / 3600);
        putc_(':');
        put2(sec / 60 % 60);
        putc_(':');
        put2(sec % 60);
        return;
    }
    uint64_t form = o->plain ? 0 : below(10);
    int off = 0; /* minutes east of UTC */
    if (form >= 8) {
        static const int offs[] = {-720, -600, -480, -300, -210, -60, 60, 120, 330, 345, 540, 600, 780, 840, -1439, 1439};
        off = offs[below(sizeof offs / sizeof offs[0])];
    }
    int64_t local = (int64_t)sec + off * 60;
    int d = day;
    while (local < 0) local += 86400, d--;
    while (local >= 86400) local -= 86400, d++;
    put_date(dates[d + 1]);
    putc_(form == 3 || form == 4 ? ' ' : 'T');
    unsigned ls = (unsigned)local;
    put2(ls / 3600);
    putc_(':');
    put2(ls / 60 % 60);
    putc_(':');
    put2(ls % 60);
    if (form == 5 || form == 6) {
        putc_('.');
        putu(below(1000));
    }
    if (form == 2 || form == 6) putc_('Z');
    if (form >= 8) {
        int a = off < 0 ? -off : off;
        putc_(off < 0 ? '-' : '+');
        put2((unsigned)a / 60);
        putc_(':');
        put2((unsigned)a % 60);
    }
}

static void put_cased(const opts *o, const char *s)
{
    uint64_t r = o->plain ? 0 : below(10);
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if ((r == 8 && i == 0) || r == 9) c = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
        putc_(c);
    }
}

static void put_amount(const opts *o, uint64_t cents)
{
    putu(cents / 100);
    unsigned frac = (unsigned)(cents % 100);
    uint64_t r = o->plain ? 9 : below(10);
    if (frac == 0 && r < 4) {
        if (r == 1) puts_(".0");
        else if (r >= 2) puts_(".00");
        return;
    }
    if (frac % 10 == 0 && r < 7) {
        putc_('.');
        putc_((char)('0' + frac / 10));
        return;
    }
    putc_('.');
    put2(frac);
}

static int parse_day(const char *s, ymd *out)
{
    int y, m, d;
    char extra;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3) return -1;
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > dim(y, m)) return -1;
    out->y = y;
    out->m = m;
    out->d = d;
    return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    if (!s || *s < '0' || *s > '9') return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *v = x;
    return 0;
}

static int cmp_method(const void *a, const void *b)
{
    return strcmp(methods[*(const int *)a], methods[*(const int *)b]);
}

int main(int argc, char **argv)
{
    opts o = {.days = 30, .methods = 6, .sleep_max = 20, .seed = 1, .start = {2026, 1, 1}};
    int have_rows = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--plain")) {
            o.plain = 1;
            continue;
        }
        int bad = 0;
        if (!strcmp(a, "--rows")) bad = parse_u64(v, &o.rows), have_rows = 1;
        else if (!strcmp(a, "--days")) bad = parse_u64(v, &x) || x < 1 || x > MAX_DAYS || (o.days = (int)x, 0);
        else if (!strcmp(a, "--start")) bad = !v || parse_day(v, &o.start);
        else if (!strcmp(a, "--seed")) bad = parse_u64(v, &o.seed);
        else if (!strcmp(a, "--methods"))
            bad = parse_u64(v, &x) || x < 1 || x > MAX_METHODS || (o.methods = (int)x, 0);
        else if (!strcmp(a, "--bad-every")) bad = parse_u64(v, &o.bad_every);
        else if (!strcmp(a, "--sleep-ms")) bad = parse_u64(v, &x) || x > 60000 || (o.sleep_max = (int)x, 0);
        else if (!strcmp(a, "--expect")) bad = !v || !*(o.expect = v);
        else {
            fprintf(stderr, "txgen: unknown argument '%s'\n\n%s", a, usage_text);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "txgen: bad value for %s: '%s'\n", a, v ? v : "(missing)");
            return 2;
        }
        i++;
    }
    if (!have_rows) {
        fprintf(stderr, "txgen: --rows is required\n\n%s", usage_text);
        return 2;
    }
    if (o.start.y + o.days / 365 + 2 > 9999) {
        fprintf(stderr, "txgen: --start/--days reach beyond year 9999\n");
        return 2;
    }
    rng_state = o.seed;
    for (int k = 0; k < o.methods; k++) {
        if (k < NBASE) snprintf(methods[k], sizeof methods[k], "%s", base_methods[k]);
        else snprintf(methods[k], sizeof methods[k], "m%02d", k + 1);
    }

    dates = malloc(sizeof *dates * (size_t)(o.days + 2));
    int64_t *tot = calloc((size_t)o.days * 2 * (size_t)o.methods, sizeof *tot);
    if (!dates || !tot) {
        fprintf(stderr, "txgen: out of memory\n");
        return 1;
    }
    dates[0] = prev_day(o.start);
    dates[1] = o.start;
    for (int i = 1; i <= o.days; i++) dates[i + 1] = next_day(dates[i]);

    uint64_t bad_count[NREASONS] = {0}, good = 0;
    puts_("timestamp,type,payment_method,amount,sleep_ms\n");
    for (uint64_t i = 1; i <= o.rows; i++) {
        int bad = o.bad_every && i % o.bad_every == 0 ? (int)((i / o.bad_every - 1) % NREASONS) + 1 : 0;
        int day = (int)below((uint64_t)o.days);
        unsigned sec = (unsigned)below(86400);
        int type = (int)below(2);
        int m = (int)below((uint64_t)o.methods);
        uint64_t cents = 1 + below(500000);
        unsigned sleep = (unsigned)below((uint64_t)o.sleep_max + 1);
        int q;

        if (!o.plain && below(1000) == 0) puts_(below(2) ? "\n" : "  \r\n"); /* a blank line */
        field_open(&o, &q);
        put_timestamp(&o, day, sec, bad == 2);
        field_close(q);
        putc_(',');
        field_open(&o, &q);
        if (bad == 3) puts_("transfer");
        else put_cased(&o, type ? "withdrawal" : "deposit");
        field_close(q);
        putc_(',');
        field_open(&o, &q);
        if (bad == 4) puts_("pay pal");
        else put_cased(&o, methods[m]);
        field_close(q);
        putc_(',');
        field_open(&o, &q);
        if (bad == 5) puts_(below(2) ? "0.00" : "12.345");
        else put_amount(&o, cents);
        field_close(q);
        if (bad != 1) { /* field_count: the sleep_ms field is missing */
            putc_(',');
            if (bad == 6) puts_(below(2) ? "-1" : "60001");
            else putu(sleep);
        }
        if (!o.plain && below(50) == 0) putc_('\r');
        putc_('\n');
        if (outlen >= OUTBUF) flush_out();

        if (bad) {
            bad_count[bad - 1]++;
        } else {
            good++;
            tot[((size_t)day * 2 + (size_t)type) * (size_t)o.methods + (size_t)m] += (int64_t)cents;
        }
    }
    flush_out();
    if (fflush(stdout) != 0) {
        fprintf(stderr, "txgen: write: %s\n", strerror(errno));
        return 1;
    }

    if (o.expect) {
        FILE *f = fopen(o.expect, "w");
        if (!f) {
            fprintf(stderr, "txgen: %s: %s\n", o.expect, strerror(errno));
            return 1;
        }
        uint64_t nbad = 0;
        for (int r = 0; r < NREASONS; r++) nbad += bad_count[r];
        fprintf(f, "# rows %" PRIu64 "\n# good %" PRIu64 "\n# bad %" PRIu64 "\n", o.rows, good, nbad);
        for (int r = 0; r < NREASONS; r++) fprintf(f, "# bad_%s %" PRIu64 "\n", reasons[r], bad_count[r]);
        int order[MAX_METHODS];
        for (int k = 0; k < o.methods; k++) order[k] = k;
        qsort(order, (size_t)o.methods, sizeof order[0], cmp_method);
        for (int d = 0; d < o.days; d++) {
            ymd a = dates[d + 1];
            for (int t = 0; t < 2; t++)
                for (int k = 0; k < o.methods; k++) {
                    int64_t c = tot[((size_t)d * 2 + (size_t)t) * (size_t)o.methods + (size_t)order[k]];
                    if (c)
                        fprintf(f, "%04d-%02d-%02d\t%s\t%s\t%" PRId64 "\n", a.y, a.m, a.d,
                                t ? "withdrawal" : "deposit", methods[order[k]], c);
                }
        }
        if (fclose(f) != 0) {
            fprintf(stderr, "txgen: %s: %s\n", o.expect, strerror(errno));
            return 1;
        }
    }
    free(dates);
    free(tot);
    return 0;
}
