/*
 * lease — one active persistor at a time: a lease in Redis with a fencing
 * token.  See lease.c.
 */
#ifndef TXAGG_PERSISTOR_LEASE_H
#define TXAGG_PERSISTOR_LEASE_H

#include "persistor.h"

/* Try to take the lease with a fresh random token.  PST_OK (p->fence set),
 * PST_NONE (another replica holds it) or PST_EREDIS. */
int lease_acquire(persistor *p);
/* Extend the lease (compare-and-PEXPIRE).  PST_OK, PST_ELEASE (lost: p->fence
 * is cleared) or PST_EREDIS (unknown: the caller must not write). */
int lease_renew(persistor *p);
/* Sleep ms, renewing the lease every lease/3.  PST_OK, PST_ESTOP (a stop
 * request), or lease_renew's error. */
int lease_sleep(persistor *p, int64_t ms);
/* Give the lease up (compare-and-DEL).  PST_OK, PST_NONE (was not ours) or
 * PST_EREDIS.  p->fence is cleared in every case. */
int lease_release(persistor *p);
/* 1 while p holds the lease as far as it knows (a fence, and less than the
 * lease time since the last confirmed acquire/renew was sent). */
int lease_held(const persistor *p);
/* Mark the lease lost (logged once, metrics updated). */
void lease_lost(persistor *p, const char *why);

/* Partitioned (tagged) only: raise the current partition's fence to ours
 * (fence_claim.lua), so a former holder is refused there from now on; a
 * write on the partition's primary (rcluster_last_conn is where it ran).
 * PST_OK, PST_ELEASE (a higher fence worked there: lease_lost called) or
 * PST_EREDIS.  Untagged: PST_OK (the scripts check the lease itself), or
 * PST_ELEASE when not holding; no I/O. */
int lease_claim(persistor *p);

/* Run an archive-state script of the current partition (p->cur) that
 * starts with the lease check: argv[0] (KEYS[1]) and argv[nkeys] (ARGV[1])
 * are reserved and filled here with the lease key and this holder's token
 * (tagged: the partition's fence key and "#<fence>").  Returns the reply, or
 * NULL with *rv = PST_EREDIS, or PST_ELEASE (not holding, or the script's
 * lease check refused: lease_lost called).  Other error replies are the
 * caller's. */
redisReply *lease_script(persistor *p, rscript *s, int nkeys, int argc, const char **argv, int *rv);

#endif
