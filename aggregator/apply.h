/*
 * apply — the arguments and the reply of apply.lua, the one script that
 * commits a batch: ownership check, HINCRBYs, tracked days, clock, dead
 * letters and XACK, atomically (hand-off 2).
 *
 * The script is called by SHA.  apply_run() is the synchronous call (with
 * NOSCRIPT reload); apply_send() appends the call to a pipeline, and the
 * caller reads the reply itself and hands it to apply_parse_reply() — on
 * APPLY_NOSCRIPT it calls apply_run() once the pipeline is drained (the
 * script did not run, so running it then is the first and only time).
 *
 * Replaying the same arguments is always safe: once applied, the ids are
 * acknowledged, the ownership check fails and the script writes nothing.
 */
#ifndef TXAGG_APPLY_H
#define TXAGG_APPLY_H

#include <stddef.h>

#include "batch.h"
#include "cluster.h"
#include "keys.h"
#include "redis.h"

enum apply_status {
    APPLY_OK = 0,       /* applied: count = entries acknowledged */
    APPLY_STALE = 1,    /* not every id is ours any more: nothing written */
    APPLY_NOSCRIPT = 2, /* the script cache was empty (pipelined call only) */
    APPLY_NOGROUP = 3,  /* the stream or the group is gone: nothing written */
    APPLY_REFUSED = 4,  /* one counter cannot take its increment (err names it): nothing written;
                           retrying cannot cure it, isolate the entries behind it */
    APPLY_REDIRECT = 5, /* a Redis Cluster refusal (MOVED, ASK, TRYAGAIN, CLUSTERDOWN; rd says which):
                           the script did not run; recover the slot map and re-read state */
    APPLY_EREPLY = -2,  /* the script refused the batch (err says why): nothing written */
    APPLY_EIO = -1,     /* connection lost: the outcome is unknown */
};

typedef struct apply_result {
    int status;
    long long count;
    char err[256];
    rcluster_redirect rd; /* APPLY_REDIRECT: where the slot went */
} apply_result;

/* The EVALSHA arguments (keys first), pointing into the batch and into buf:
 * valid while the batch is neither reset nor freed. */
typedef struct apply_args {
    const char **v;
    size_t *l;
    size_t argc, cap;
    int nkeys;
    char *buf;
    size_t bufcap;
} apply_args;

void apply_args_init(apply_args *a);
void apply_args_free(apply_args *a);

/* Arguments of apply.lua for a finished batch (batch_finish); 0, or -1 when
 * out of memory or the batch is empty. */
/* The ownership check (see apply.lua): APPLY_OWN_IDS compares the batch's
 * ids with the consumer's pending entries and XACKs them — any batch;
 * APPLY_OWN_ALL only counts them and acknowledges every pending entry of
 * the consumer (XGROUP DELCONSUMER) — only for a batch that is everything
 * the consumer has pending, as the pump's is. */
enum { APPLY_OWN_IDS = 0, APPLY_OWN_ALL = 1 };

/* For one partition of the hot tier (common/tier.h): its stream, tracked
 * set, clock, dead-letter stream, hot version and agg hashes (keys_agg with
 * the partition's tag).  part NULL = one untagged partition (today's names). */
int apply_build_part(apply_args *a, const batch *b, const keys_part *part, const char *group, const char *consumer,
                     int own);
#ifdef TXAGG_TESTING
/* apply_build_part of one untagged partition (the tests' form). */
int apply_build(apply_args *a, const batch *b, const char *group, const char *consumer, int own);
#endif

/* SCRIPT LOAD (once per process; again after NOSCRIPT).  0 or -1. */
int apply_load(rconn *rc);
/* Append the call to rc's pipeline (the script must be loaded).  0 or -1. */
int apply_send(rconn *rc, const apply_args *a);
/* Classify a reply of the script (NULL = connection lost). */
void apply_parse_reply(const redisReply *r, apply_result *res);
/* Call the script and wait for its reply (reloading it on NOSCRIPT). */
void apply_run(rconn *rc, const apply_args *a, apply_result *res);

#endif
