/*
 * signals — stop flag and interruptible sleep; see signals.h.
 */
#include "signals.h"

#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void sig_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int sig_stopping(void) { return stop_flag != 0; }

int sig_sleep_ms(int64_t ms)
{
    int64_t end = sig_now_ms() + ms;
    while (!stop_flag) {
        int64_t left = end - sig_now_ms();
        if (left <= 0) return 0;
        if (left > 100) left = 100;
        struct timespec ts = {left / 1000, (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 1;
}

int64_t sig_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sig_now_ms(void) { return sig_now_us() / 1000; }
