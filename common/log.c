/*
 * log — logfmt lines on stderr; see log.h.
 *
 * Invariants: a line is built in a local buffer and emitted by one write(2),
 * so concurrent threads never interleave; the level is a single int read
 * without locking (a torn read is impossible for an aligned int).
 */
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char log_svc[32] = "txagg";
static int log_level = LOG_LVL_INFO;

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void log_init(const char *svc, int level)
{
    snprintf(log_svc, sizeof log_svc, "%s", svc ? svc : "txagg");
    log_set_level(level);
}

void log_set_level(int level)
{
    if (level >= LOG_LVL_DEBUG && level <= LOG_LVL_ERROR)
        log_level = level;
}

int log_enabled(int level) { return level >= log_level; }

int log_level_parse(const char *s)
{
    if (!s) return -1;
    if (!strcasecmp(s, "DEBUG")) return LOG_LVL_DEBUG;
    if (!strcasecmp(s, "INFO")) return LOG_LVL_INFO;
    if (!strcasecmp(s, "WARNING") || !strcasecmp(s, "WARN")) return LOG_LVL_WARNING;
    if (!strcasecmp(s, "ERROR")) return LOG_LVL_ERROR;
    return -1;
}

const char *log_level_name(int level)
{
    if (level < LOG_LVL_DEBUG || level > LOG_LVL_ERROR) return "unknown";
    return level_names[level];
}

const char *log_q(char *buf, size_t n, const char *s)
{
    size_t o = 0;
    if (n < 3) {
        if (n) buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; s && *s && o + 3 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c < 0x20) {
            buf[o++] = ' ';
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

const char *log_qv(char *buf, size_t n, const char *s)
{
    int plain = s && *s;
    for (const char *p = s; plain && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == '\\') plain = 0;
    if (!plain || strlen(s) >= n) return log_q(buf, n, s);
    memcpy(buf, s, strlen(s) + 1);
    return buf;
}

void log_write(int level, const char *msg, const char *kvfmt, ...)
{
    if (!log_enabled(level)) return;

    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    char qmsg[1024];
    int o = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s svc=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, log_level_name(level), log_svc,
                     log_q(qmsg, sizeof qmsg, msg));
    if (o < 0) return;
    if ((size_t)o >= sizeof line - 2) o = (int)sizeof line - 2;

    /* kvfmt always starts with the single space the macros prepend. */
    if (kvfmt && kvfmt[0] && !(kvfmt[0] == ' ' && kvfmt[1] == '\0')) {
        va_list ap;
        va_start(ap, kvfmt);
        int k = vsnprintf(line + o, sizeof line - 1 - (size_t)o, kvfmt, ap);
        va_end(ap);
        if (k > 0) o += k;
        if ((size_t)o >= sizeof line - 1) o = (int)sizeof line - 2;
    }
    line[o++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)o);
    (void)w;
}

int log_state_report(log_state *st, const char *what, int up, const char *detail)
{
    if (st->known && st->up == up) return 0;
    int was_known = st->known;
    st->known = 1;
    st->up = up;
    char q[512], qw[256];
    log_qv(qw, sizeof qw, what);
    if (up) {
        if (was_known) log_info("dependency reachable again", "dep=%s", qw);
        else log_info("dependency reachable", "dep=%s", qw);
    } else {
        log_error("dependency unreachable, retrying", "dep=%s err=%s", qw,
                  log_q(q, sizeof q, detail ? detail : "unknown"));
    }
    return 1;
}

int log_fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}
