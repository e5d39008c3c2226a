/*
 * lease — the persistor lease: SET system:persistor:lease <token> NX PX
 * PERSIST_LEASE_MS, with INCR system:persistor:fence in the same script, so
 * every acquisition has its own fence; the fence goes into each batch id.
 *
 * Invariants:
 *   - a token is 128 random bits from /dev/urandom, new for every
 *     acquisition, so "the lease value equals my token" means "I hold this
 *     acquisition" and nothing else;
 *   - renew and release compare the token first (a lapsed lease that another
 *     replica took is never extended or deleted by the ex-holder);
 *   - every script that changes archive state checks the token first, before
 *     any write (lease_script passes it): fencing on the Redis side.  A
 *     refusal clears p->fence at once, so the caller stops the cycle;
 *   - lease_held() is a local, conservative view: the time before the last
 *     confirmed acquire/renew was *sent* plus the TTL.  It is never trusted
 *     alone before a MongoDB write: archive_write renews (a round trip)
 *     immediately before each one.
 *
 * Partitioned (tagged): the lease and the fence are global keys
 * (system:persistor:lease{txagg}, …:fence{txagg}), one slot of their own, so
 * a partition's script cannot read the lease.  lease_script passes the
 * partition's fence key and "#<fence>" instead of the lease key and the
 * token: the script refuses (LEASE) when the partition's fence is higher
 * than ours — a later holder has worked there — and otherwise raises it to
 * ours (a write, so the script is also a claim; see recover.c).  Untagged,
 * the scripts get the lease key and the token exactly as before.
 */
#include "lease.h"
#include "keys.h"
#include "log.h"
#include "signals.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern const char lua_persistor_lease_acquire[];
extern const char lua_persistor_lease_renew[];
extern const char lua_persistor_lease_release[];
extern const char lua_persistor_fence_claim[];

static rscript acquire_script = RSCRIPT_INIT("lease_acquire", lua_persistor_lease_acquire);
static rscript renew_script = RSCRIPT_INIT("lease_renew", lua_persistor_lease_renew);
static rscript release_script = RSCRIPT_INIT("lease_release", lua_persistor_lease_release);
static rscript claim_script = RSCRIPT_INIT("fence_claim", lua_persistor_fence_claim);

static int new_token(char *out)
{
    unsigned char raw[PST_TOKEN_LEN / 2];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = read(fd, raw + got, sizeof raw - got);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    for (size_t i = 0; i < sizeof raw; i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int lease_held(const persistor *p)
{
    return p->fence > 0 && sig_now_ms() < p->lease_sent_ms + p->cfg.persist_lease_ms;
}

void lease_lost(persistor *p, const char *why)
{
    if (p->fence > 0) {
        char q[200];
        log_warn("lease lost", "fence=%lld reason=%s", (long long)p->fence, log_q(q, sizeof q, why));
        metrics_inc(pst_metrics.lease_losses);
    }
    p->fence = 0;
    metrics_set(pst_metrics.leader, 0);
}

/* Runs a lease script whose last argument (argv[argc - 1]) is the lease's
 * time to live, filled in here; its integer reply in *n.  PST_OK, or
 * PST_EREDIS: Redis failed, or the script did (logged). */
static int run_ttl_script(persistor *p, rscript *s, int nkeys, int argc, const char **argv, long long *n)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", (long long)p->cfg.persist_lease_ms);
    argv[argc - 1] = ttl;
    redisReply *r = rcluster_script(p->t.cl, p->lease_slot, s, nkeys, argc, argv, NULL);
    if (!r) return PST_EREDIS;
    int rv = PST_OK;
    if (r->type == REDIS_REPLY_INTEGER) {
        *n = r->integer;
    } else {
        log_error("lease script failed", "script=%s err=%s", s->name,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        rv = PST_EREDIS;
    }
    freeReplyObject(r);
    return rv;
}

int lease_acquire(persistor *p)
{
    char token[PST_TOKEN_LEN + 1];
    if (new_token(token) != 0) {
        log_error("cannot read /dev/urandom for a lease token");
        return PST_EREDIS;
    }
    const char *argv[] = {p->lease_key, p->fence_key, token, NULL /* the ttl */};
    int64_t sent = sig_now_ms();
    long long fence;
    int rv = run_ttl_script(p, &acquire_script, 2, 4, argv, &fence);
    if (rv != PST_OK) return rv;
    if (fence <= 0) return PST_NONE; /* another holder has it */
    memcpy(p->token, token, sizeof token);
    p->fence = fence;
    p->lease_sent_ms = sent;
    metrics_inc(pst_metrics.lease_acquisitions);
    metrics_set(pst_metrics.leader, 1);
    log_info("lease acquired", "fence=%lld ttl_ms=%lld", (long long)p->fence, (long long)p->cfg.persist_lease_ms);
    return PST_OK;
}

int lease_renew(persistor *p)
{
    if (p->fence <= 0) return PST_ELEASE;
    if (!lease_held(p)) {
        /* Not confirmed within the TTL: another replica may hold it by now. */
        lease_lost(p, "not confirmed within the lease time");
        return PST_ELEASE;
    }
    const char *argv[] = {p->lease_key, p->token, NULL /* the ttl */};
    int64_t sent = sig_now_ms();
    long long renewed;
    int rv = run_ttl_script(p, &renew_script, 1, 3, argv, &renewed);
    if (rv != PST_OK) return rv;
    if (renewed != 1) {
        lease_lost(p, "expired or taken by another replica");
        return PST_ELEASE;
    }
    p->lease_sent_ms = sent;
    return PST_OK;
}

int lease_sleep(persistor *p, int64_t ms)
{
    int64_t end = sig_now_ms() + ms;
    int64_t chunk = p->cfg.persist_lease_ms / 3;
    for (;;) {
        int64_t left = end - sig_now_ms();
        if (left <= 0) return PST_OK;
        if (sig_sleep_ms(left < chunk ? left : chunk)) return PST_ESTOP;
        int rv = lease_renew(p);
        if (rv != PST_OK) return rv;
    }
}

int lease_release(persistor *p)
{
    if (p->fence <= 0) return PST_NONE;
    long long fence = (long long)p->fence;
    p->fence = 0;
    metrics_set(pst_metrics.leader, 0);
    const char *argv[] = {p->lease_key, p->token};
    redisReply *r = rcluster_script(p->t.cl, p->lease_slot, &release_script, 1, 2, argv, NULL);
    if (!r) return PST_EREDIS;
    int rv = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? PST_OK : PST_NONE;
    freeReplyObject(r);
    if (rv == PST_OK) log_info("lease released", "fence=%lld", fence);
    return rv;
}

redisReply *lease_script(persistor *p, rscript *s, int nkeys, int argc, const char **argv, int *rv)
{
    *rv = PST_OK;
    if (p->fence <= 0) {
        *rv = PST_ELEASE;
        return NULL;
    }
    char fence[24];
    if (p->t.tagged) {
        snprintf(fence, sizeof fence, "#%lld", (long long)p->fence);
        argv[0] = persistor_part(p)->archive_fence;
        argv[nkeys] = fence;
    } else {
        argv[0] = p->lease_key;
        argv[nkeys] = p->token;
    }
    redisReply *r = rcluster_script(p->t.cl, persistor_slot(p), s, nkeys, argc, argv, NULL);
    if (!r) {
        *rv = PST_EREDIS;
        return NULL;
    }
    if (rreply_is_error(r, "LEASE")) {
        freeReplyObject(r);
        lease_lost(p, "refused by a script's lease check");
        *rv = PST_ELEASE;
        return NULL;
    }
    return r;
}

int lease_claim(persistor *p)
{
    if (!p->t.tagged) return p->fence > 0 ? PST_OK : PST_ELEASE;
    const char *argv[2];
    int rv;
    redisReply *r = lease_script(p, &claim_script, 1, 2, argv, &rv);
    if (!r) return rv;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        rv = PST_OK;
    } else {
        log_error("lease script failed", "script=fence_claim key=%s err=%s", persistor_part(p)->archive_fence,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        rv = PST_EREDIS;
    }
    freeReplyObject(r);
    return rv;
}
