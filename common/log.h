/*
 * log — levelled, structured logging to stderr in logfmt.
 *
 *   ts=2026-01-05T03:33:58.123Z level=info svc=aggregator msg="batch applied" rows=1000
 *
 * One line per call, written with a single write(2) so lines from several
 * threads never interleave.  The message is quoted; the key=value part is a
 * printf format supplied by the caller, who quotes free text with log_q().
 * LOG_LEVEL (DEBUG|INFO|WARNING|ERROR) filters; nothing per row is logged
 * above DEBUG.
 */
#ifndef TXAGG_LOG_H
#define TXAGG_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR };

void log_init(const char *svc, int level);
void log_set_level(int level);
int log_enabled(int level);
/* Parses DEBUG|INFO|WARNING|WARN|ERROR (any case); -1 when unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

void log_write(int level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_info("batch applied", "rows=%d lag=%lld", n, lag) — the key=value
 * format is optional: log_info("started"). */
#define log_debug(msg, ...) \
    do { if (log_enabled(LOG_LVL_DEBUG)) log_write(LOG_LVL_DEBUG, msg, " " __VA_ARGS__); } while (0)
#define log_info(msg, ...)  log_write(LOG_LVL_INFO, msg, " " __VA_ARGS__)
#define log_warn(msg, ...)  log_write(LOG_LVL_WARNING, msg, " " __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_LVL_ERROR, msg, " " __VA_ARGS__)

/* Quote free text for a logfmt value: returns buf holding "text" with
 * backslash, quote and control characters escaped (truncated to fit). */
const char *log_q(char *buf, size_t n, const char *s);
/* The same, but quoted only when logfmt needs it (empty, or a space, quote,
 * '=' or control character inside): dep=mongodb, dep="redis 10.0.0.1:6379". */
const char *log_qv(char *buf, size_t n, const char *s);

/* For functions that report an error to their caller through an out-parameter:
 * formats the message into err (when err is not NULL) and returns status, so
 * `return log_fail(400, err, errlen, "bad date %s", s);` reads as one step. */
int log_fail(int status, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Log a dependency's state only when it changes ("redis unreachable" once,
 * then "redis reachable again" once), never once per retry.
 */
typedef struct log_state {
    int known;  /* 0 until the first report */
    int up;
} log_state;

/* Returns 1 when this report changed the state (and was logged). */
int log_state_report(log_state *st, const char *what, int up, const char *detail);

#endif
