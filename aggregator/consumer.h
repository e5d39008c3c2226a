/*
 * consumer — one member of the consumer group `aggregators`: reads the
 * stream, applies each batch with apply.lua, recovers its own pending
 * entries, claims the entries of idle members.
 *
 * States: a consumer needs set-up (scripts loaded, group created with
 * MKSTREAM) after start and after any connection loss or NOGROUP; it needs
 * recovery (re-read its own pending list from id 0 and apply it) after
 * set-up and whenever a batch was refused as stale or its outcome is
 * unknown.  consumer_step() does whichever is due, else one pipelined
 * read+apply (consumer_pump).  Every failure path leaves the entries pending
 * in the group, where recovery (this consumer) or a claim (another one)
 * finds them: nothing is lost, and the ownership check inside apply.lua
 * makes every apply count at most once.
 *
 * Partitions (REDIS_PARTITIONS, REDIS_CLUSTER; common/tier.h): a consumer
 * made by consumer_new_part serves one partition — its stream, its group, its
 * keys (apply_build_part) — and asks the tier for the connection serving it
 * at every step, so after a failover or a moved slot it sets up and recovers
 * where the partition now lives (state re-read, never trusted from before).
 * A cluster refusal (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) of any of its
 * commands means nothing ran: the slot map is recovered (rcluster_recover),
 * what is in hand dropped (it is pending in Redis) and the partition
 * recovered.  The only partition (solo) blocks and lingers inside the pump
 * as always; one of several never blocks there (the service loop blocks,
 * with consumer_wait, only when all were empty) and a failing one is held
 * off for a while instead of sleeping, so the others go on.  On a cluster a
 * node that does not answer is never waited on: the map is read again.
 *
 * Not thread-safe (one rconn, one thread).
 */
#ifndef TXAGG_CONSUMER_H
#define TXAGG_CONSUMER_H

#include <stdint.h>

#include "apply.h"
#include "batch.h"
#include "redis.h"
#include "stats.h"
#include "tier.h"

typedef struct consumer consumer;

/* The consumer of partition p of the tier (t outlives the consumer).  name:
 * the consumer name (unique per replica).  block_ms: XREADGROUP BLOCK, keep
 * it below REDIS_TIMEOUT_MS.  st: counters to update (agg_stats_init'ed). */
consumer *consumer_new_part(tier *t, int p, const char *name, int batch_size, int block_ms, agg_stats *st);
#ifdef TXAGG_TESTING
/* A consumer of one untagged partition on one fixed rconn (the tests' form). */
consumer *consumer_new(rconn *rc, const char *name, int batch_size, int block_ms, agg_stats *st);
#endif
void consumer_free(consumer *c);

/* 1 when set up and connected (for /ready). */
int consumer_ready(const consumer *c);
/* 1 when nothing is in hand and nothing is due (set-up, recovery), or the
 * partition is held off for now. */
int consumer_idle(const consumer *c);
/* 1 when the last read found fewer entries than a batch (caught up). */
int consumer_caught_up(const consumer *c);

/* When idle and ready: one XREADGROUP … BLOCK block_ms into the batch in
 * hand, applied by the next step.  Entries read (>= 0) or -1 (flags set). */
long consumer_wait(consumer *c, int block_ms);

/*
 * One step of the service loop: set-up (waiting for Redis with backoff) or
 * recovery when due, else consumer_pump.  Returns entries applied (>= 0), or
 * -1 when stopping before Redis could be reached.
 */
long consumer_step(consumer *c);

/* Load the scripts and create the group (0 MKSTREAM; BUSYGROUP is fine).  0 or -1. */
int consumer_setup(consumer *c);

/* Apply every entry pending for this consumer (XREADGROUP from id 0, paged),
 * acknowledging gone ones.  Entries applied, or -1 (recovery still due). */
long consumer_recover(consumer *c);

/* XAUTOCLAIM entries idle longer than min_idle_ms (any consumer's) and apply
 * them.  Entries claimed, or -1. */
long consumer_claim(consumer *c, int64_t min_idle_ms);

/*
 * Apply the batch in hand while reading the next one in the same round trip
 * (EVALSHA and XREADGROUP pipelined; the previous read is parsed while Redis
 * works).  Issues no new read once a stop is requested.  Entries applied
 * (>= 0) or -1 on a connection error.
 */
long consumer_pump(consumer *c);

/* Apply what is in hand without reading more (graceful stop), then recover
 * if a batch went stale meanwhile.  Entries applied. */
long consumer_drain(consumer *c);

#ifdef TXAGG_TESTING
/* For tests: read one batch ('>') into the batch in hand without applying it
 * (entries read, or -1), and apply the batch in hand synchronously. */
long consumer_fetch(consumer *c, int block_ms);
void consumer_commit(consumer *c, apply_result *res);
#endif

/* Fill a batch from the entries array of an XREADGROUP / XAUTOCLAIM reply
 * ([[id, [field, value, ...] or nil], ...]) and finish it.  0, or -1 when the
 * reply has an unexpected shape or memory ran out. */
int consumer_batch_from_entries(batch *b, const redisReply *entries);

#endif
