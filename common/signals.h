/*
 * signals — graceful stop on SIGTERM / SIGINT.
 *
 * The handler only sets a flag.  Loops check sig_stopping() between batches
 * and sleep with sig_sleep_ms(), which wakes within 100 ms of a stop request,
 * so a service finishes the batch in hand and exits 0.  SIGPIPE is ignored
 * (a closed peer is an error return, not a death).
 */
#ifndef TXAGG_SIGNALS_H
#define TXAGG_SIGNALS_H

#include <stdint.h>

void sig_install(void);
int sig_stopping(void);
/* Sleep ms milliseconds unless a stop is requested; returns 1 if stopping. */
int sig_sleep_ms(int64_t ms);

/* Monotonic clock in milliseconds / microseconds. */
int64_t sig_now_ms(void);
int64_t sig_now_us(void);

#endif
