/*
 * tier — the hot tier as a process sees it: REDIS_PARTITIONS partitions, the
 * names of each one's keys (keys_part, common/keys.h) and the Redis
 * connection that serves each, on one Redis or a Redis Cluster
 * (common/cluster.h).  One tier per thread, like the rcluster it holds.
 *
 * Layout: one partition on one Redis keeps today's key names (no tag);
 * several partitions, or a cluster, tag every key of a partition so that the
 * partition lives in one slot (keys.h).  The number of partitions is fixed
 * for the data's life: tier_check_layout records it in Redis the first time
 * (system:partitions, SET NX) and refuses a process started with another
 * number — its keys would not be the keys the data is in.  Data written
 * before the record existed (a stream `transactions` without it) counts as
 * one untagged partition.
 */
#ifndef TXAGG_TIER_H
#define TXAGG_TIER_H

#include <stddef.h>

#include "cluster.h"
#include "config.h"
#include "keys.h"
#include "redis.h"

typedef struct tier {
    rcluster *cl;
    int n;      /* partitions */
    int tagged; /* keys carry partition tags (n > 1 or a cluster) */
    keys_part *parts;
} tier;

enum {
    TIER_OK = 0,
    TIER_EREDIS = -1,  /* Redis unreachable or refusing: retry later */
    TIER_ELAYOUT = -2, /* the data was written with another number of partitions: a configuration error */
};

/* The partitions of cfg (REDIS_PARTITIONS, REDIS_CLUSTER); nothing is
 * connected yet.  0, or -1 with err set (out of memory). */
int tier_init(tier *t, const txagg_config *cfg, const char *client_name, char *err, size_t errlen);
void tier_free(tier *t);

/* The connection serving partition p (NULL when no slot map could be
 * loaded; rcluster_error says why). */
rconn *tier_conn(tier *t, int p);

/* Check (and at the first start record) the number of partitions.  TIER_OK;
 * TIER_ELAYOUT with err naming REDIS_PARTITIONS and the recorded number;
 * TIER_EREDIS with err when Redis could not answer. */
int tier_check_layout(tier *t, char *err, size_t errlen);

#endif
