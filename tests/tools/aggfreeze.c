/*
 * aggfreeze — stop an aggregator replica (SIGSTOP) while it holds pending
 * entries, for the crash tests that must kill one in that state.
 *
 *   aggfreeze PID CONSUMER [SECONDS]
 *
 * A replica that keeps up holds nothing pending most of the time: it
 * acknowledges a batch before it reads the next, then waits in a blocking
 * read.  Stopping it at random moments mostly misses, and a shell loop of
 * redis-cli calls is too slow on a loaded machine to try often.  This tool
 * tries many times a second: stop the process; if its consumer holds pending
 * entries, done; if its connection sits in a blocking read (CLIENT LIST
 * flags=b), Redis still hands it the next entries — keep it stopped and wait
 * for them, up to the read's own timeout; otherwise let it run a few
 * milliseconds and try again.  Prints the number of entries it holds (0: not
 * caught within SECONDS, default 5, and the process left running) and exits
 * 0; exits 1 when Redis cannot be reached at start.  A reply that times out
 * later costs one try, never the run: it reads only, and tries again.  Stream and group from
 * common/keys.h; Redis from REDIS_HOST / REDIS_PORT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "redis.h"
#include "signals.h"

/* Entries pending for consumer, or -1 when Redis did not answer. */
static long pending_of(rconn *rc, const char *consumer)
{
    redisReply *r = rconn_cmd(rc, "XPENDING %s %s - + 1000000 %s", KEYS_STREAM, KEYS_GROUP, consumer);
    if (!r) return -1;
    long n = r->type == REDIS_REPLY_ARRAY ? (long)r->elements : 0;
    freeReplyObject(r);
    return n;
}

/* 1 when a connection named aggregator:<consumer> waits in a blocking read. */
static int blocked(rconn *rc, const char *consumer)
{
    redisReply *r = rconn_cmd(rc, "CLIENT LIST");
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        return 0;
    }
    char name[160];
    snprintf(name, sizeof name, " name=aggregator:%s ", consumer);
    int found = 0;
    for (char *line = r->str; line && *line && !found;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        if (strstr(line, name)) {
            const char *f = strstr(line, " flags=");
            found = f && strchr(f + 7, 'b') && strchr(f + 7, 'b') < strchr(f + 7, ' ');
        }
        line = end ? end + 1 : NULL;
    }
    freeReplyObject(r);
    return found;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: aggfreeze PID CONSUMER [SECONDS]\n");
        return 2;
    }
    pid_t pid = (pid_t)atol(argv[1]);
    const char *consumer = argv[2];
    int64_t deadline = sig_now_ms() + (argc > 3 ? atol(argv[3]) : 5) * 1000;
    txagg_config cfg;
    char err[512];
    if (config_load(&cfg, CFG_ALL, err, sizeof err)) {
        fprintf(stderr, "aggfreeze: %s\n", err);
        return 2;
    }
    log_init("aggfreeze", cfg.log_level);
    rconn *rc = rconn_new(&cfg, "aggfreeze");
    if (!rc || rconn_ensure(rc) != 0) {
        fprintf(stderr, "aggfreeze: cannot reach redis\n");
        return 1;
    }
    long held = 0;
    unsigned seed = (unsigned)pid;
    while (sig_now_ms() < deadline) {
        if (kill(pid, SIGSTOP) != 0) break;
        long n = pending_of(rc, consumer);
        if (n < 0) { /* a reply timed out (loaded machine): the next try reconnects, until the deadline */
            kill(pid, SIGCONT);
            sig_sleep_ms(50);
            continue;
        }
        if (n == 0 && blocked(rc, consumer)) { /* served while stopped, within its BLOCK time (≤ 1 s) */
            for (int64_t until = sig_now_ms() + 1500; n == 0 && sig_now_ms() < until;) {
                sig_sleep_ms(20);
                n = pending_of(rc, consumer);
            }
        }
        if (n > 0) {
            held = n;
            break;
        }
        kill(pid, SIGCONT);
        sig_sleep_ms(1 + rand_r(&seed) % 9);
    }
    if (!held) kill(pid, SIGCONT);
    rconn_free(rc);
    printf("%ld\n", held);
    return 0;
}
