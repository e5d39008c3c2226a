/*
 * freeze — step 1: the eligible days' hashes leave the hot tier for
 * batch-scoped keys, in one script (freeze.lua) that also records the batch
 * as pending and bumps the archive version.
 *
 * C picks the candidates (archive_batch_eligible_days) and draws the id (INCR
 * system:archive:seq — a seq drawn for a freeze that then does not happen is
 * simply skipped); every key the script touches is declared by C.  The
 * script re-checks, atomically, that each candidate is still tracked, that
 * this replica holds the lease and that no batch is pending, so the result is
 * the same whoever else runs between C's read and the script.
 *
 * Invariant: at most one batch is pending at any time (the script refuses
 * otherwise), so the days of a pending batch are never frozen twice.
 *
 * Durability: MongoDB is durable, Redis only as durable as its AOF.  If Redis
 * lost a freeze (a machine crash within its fsync period) after MongoDB had
 * applied the batch, the days would come back hot and be archived again.  A
 * process crash cannot do it (Redis writes the AOF before it replies), so the
 * gap is the fsync period: freeze_settle waits it out before the first
 * MongoDB write.  Redis 7.0 has no WAITAOF to ask instead.  A failover to a
 * replica that lacks the freeze would do the same: freeze_settle waits for
 * every replica to acknowledge it (WAIT) first.
 */
#include "freeze.h"
#include "archive_batch.h"
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "signals.h"
#include "timeparse.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const char lua_persistor_freeze[];
static rscript freeze_script = RSCRIPT_INIT("freeze", lua_persistor_freeze);

#define KEY_MAX 128

/* One freeze attempt over the given candidates: PST_OK (a batch), PST_NONE
 * (the candidates had no hashes: they were only untracked), or an error. */
static int freeze_once(persistor *p, pst_day *days, int n, char *id, size_t idlen)
{
    const keys_part *part = persistor_part(p);
    redisReply *r = persistor_cmd(p, "INCR %s", part->archive_seq);
    if (!r) return PST_EREDIS;
    if (r->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return PST_EREDIS;
    }
    long long seq = r->integer;
    freeReplyObject(r);
    char bid[PST_ID_MAX];
    if (archive_batch_make_id(bid, sizeof bid, seq, p->fence, p->t.tagged ? part->index : -1) != 0) return PST_EDATA;

    int nkeys = 5 + 4 * n;
    int argc = nkeys + 4 + n;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    char(*keys)[KEY_MAX] = calloc((size_t)(4 * n + 1), sizeof *keys);
    if (!argv || !keys) {
        free(argv);
        free(keys);
        return PST_EREDIS;
    }
    char fence[24], created[TS_ISO_LEN + 1];
    snprintf(fence, sizeof fence, "%lld", (long long)p->fence);
    ts_format_iso((int64_t)time(NULL), created);
    int k = 0;
    argv[k++] = NULL; /* lease key, filled by lease_script */
    argv[k++] = part->archive_pending;
    argv[k++] = part->tracked;
    argv[k++] = part->archive_version;
    keys_batch(keys[4 * n], KEY_MAX, part, bid);
    argv[k++] = keys[4 * n];
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < TXN_TYPES; t++) {
            keys_agg(keys[4 * i + t], KEY_MAX, part, days[i], txn_type_name(t));
            keys_frozen(keys[4 * i + 2 + t], KEY_MAX, part, bid, days[i], txn_type_name(t));
        }
        for (int j = 0; j < 4; j++) argv[k++] = keys[4 * i + j];
    }
    argv[k++] = NULL; /* token, filled by lease_script */
    argv[k++] = bid;
    argv[k++] = fence;
    argv[k++] = created;
    for (int i = 0; i < n; i++) argv[k++] = days[i];

    int rv;
    r = lease_script(p, &freeze_script, nkeys, argc, argv, &rv);
    free(argv);
    free(keys);
    if (!r) return rv;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
        rv = PST_NONE;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        snprintf(id, idlen, "%s", bid);
        metrics_inc(pst_metrics.batches_frozen);
        log_debug("batch frozen", "id=%s fence=%lld days=%zu first=%s last=%s", bid, (long long)p->fence,
                  r->elements, r->element[0]->str, r->element[r->elements - 1]->str);
        rv = PST_OK;
    } else {
        log_error("freeze refused", "id=%s err=%s", bid, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        rv = rreply_is_error(r, "PENDING") || rreply_is_error(r, "ARGS") ? PST_EDATA : PST_EREDIS;
    }
    freeReplyObject(r);
    return rv;
}

#ifdef TXAGG_TESTING
int freeze_batch(persistor *p, char *id, size_t idlen)
{
    pst_day last;
    return freeze_batch_after(p, "", id, idlen, last);
}
#endif

int freeze_batch_after(persistor *p, const char *after, char *id, size_t idlen, char *last_day)
{
    pst_day *days = calloc(PST_MAX_BATCH_DAYS, sizeof *days);
    if (!days) return PST_EREDIS;
    int rv;
    for (;;) {
        int n = 0;
        rv = lease_renew(p);
        if (rv != PST_OK) break;
        rv = archive_batch_eligible_days(p, after, days, PST_MAX_BATCH_DAYS, &n);
        if (rv == PST_EDATA) rv = PST_NONE; /* no usable clock: nothing is eligible (logged) */
        if (rv != PST_OK) break;
        memcpy(last_day, days[n - 1], sizeof(pst_day));
        rv = freeze_once(p, days, n, id, idlen);
        if (rv != PST_NONE) break;
        /* Every candidate was tracked without a hash: now untracked; look again. */
    }
    free(days);
    return rv;
}

/* WAIT for every replica of rc's server (ROLE) for the writes rc made so
 * far.  PST_OK, or PST_EREDIS (logged once per change). */
static int replicas_wait(persistor *p, rconn *rc, int *nreplicas)
{
    int replicas = 0, acked = 0;
    char err[300], q[400], node[300] = "";
    if (p->t.tagged) snprintf(node, sizeof node, "%s:%d", rconn_host(rc), rconn_port(rc));
    if (rconn_replica_wait(rc, PST_REPLICA_WAIT_MS, &replicas, &acked, err, sizeof err) != 0) {
        if (p->t.tagged)
            log_warn("cannot confirm the freeze on Redis replicas; the batch stays pending", "node=%s err=%s", node,
                     log_q(q, sizeof q, err));
        else
            log_warn("cannot confirm the freeze on Redis replicas; the batch stays pending", "err=%s",
                     log_q(q, sizeof q, err));
        return PST_EREDIS;
    }
    if (acked < replicas) {
        if (!p->replicas_behind) {
            if (p->t.tagged)
                log_warn("Redis replicas have not acknowledged the freeze; MongoDB is not written until they do",
                         "node=%s replicas=%d acked=%d wait_ms=%d", node, replicas, acked, PST_REPLICA_WAIT_MS);
            else
                log_warn("Redis replicas have not acknowledged the freeze; MongoDB is not written until they do",
                         "replicas=%d acked=%d wait_ms=%d", replicas, acked, PST_REPLICA_WAIT_MS);
        }
        p->replicas_behind = 1;
        return PST_EREDIS;
    }
    *nreplicas = replicas;
    return PST_OK;
}

/* All of the primary's replicas hold every write made so far: untagged, the
 * lease renewal (a write on the one connection, past the freeze) and WAIT.
 * Tagged, the same for two servers, which may be one: the partition's
 * primary (a fence claim — a write on the connection the partition's
 * commands use, past the freeze — then WAIT) and the lease's (the renewal,
 * past the fence drawn at acquisition, then WAIT); the renewal comes last,
 * right before MongoDB. */
static int replicas_settle(persistor *p)
{
    rconn *part_rc = NULL;
    if (p->t.tagged) {
        int rv = lease_claim(p);
        if (rv != PST_OK) return rv;
        part_rc = rcluster_last_conn(p->t.cl);
    }
    int rv = lease_renew(p);
    if (rv != PST_OK) return rv;
    rconn *lease_rc = p->t.tagged ? rcluster_last_conn(p->t.cl) : p->rc;
    int replicas = 0;
    if (part_rc && part_rc != lease_rc) rv = replicas_wait(p, part_rc, &replicas);
    if (rv == PST_OK) rv = replicas_wait(p, lease_rc, &replicas);
    if (rv != PST_OK) return rv;
    if (p->replicas_behind) log_info("Redis replicas acknowledge the freeze again", "replicas=%d", replicas);
    p->replicas_behind = 0;
    return PST_OK;
}

int freeze_settle(persistor *p, int fresh)
{
    if (fresh) {
        redisReply *r = persistor_cmd(p, "INFO persistence"); /* the partition's primary */
        if (!r) return PST_EREDIS;
        int aof = r->type == REDIS_REPLY_STRING && strstr(r->str, "aof_enabled:1") != NULL;
        int bad = r->type != REDIS_REPLY_STRING;
        freeReplyObject(r);
        if (bad) return PST_EREDIS;
        if (aof) {
            log_debug("waiting for the freeze to reach Redis's AOF", "ms=%d", PST_FREEZE_SETTLE_MS);
            int rv = lease_sleep(p, PST_FREEZE_SETTLE_MS);
            if (rv != PST_OK) return rv;
        }
    }
    return replicas_settle(p); /* last: its lease renewal is the one right before MongoDB */
}
