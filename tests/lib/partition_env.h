/*
 * partition_env — the partitioned persistor's C test fixtures (issue 14), on
 * one Redis with REDIS_PARTITIONS = PE_PARTS or on a real Redis Cluster:
 *
 *   - the configuration (archive_env's RETENTION_DAYS and short lease, plus
 *     the partitions and, for a cluster, its seeds);
 *   - seeding every partition's hot tier directly (agg hashes, tracked days,
 *     a clock per partition — the greatest in one partition only) while an
 *     in-memory ledger records what was seeded: the oracle, independent of
 *     the persistor;
 *   - checks: hot + frozen-not-yet-listed + MongoDB = the ledger for every
 *     day and method (what the api sums), and "archived": every day ≤ the
 *     boundary gone from every partition, nothing pending, each day's
 *     document listing exactly one batch per partition that held the day.
 *
 * The tests' bodies are here too, so the one-Redis and the cluster programs
 * run the same assertions.
 */
#ifndef TXAGG_TEST_PARTITION_ENV_H
#define TXAGG_TEST_PARTITION_ENV_H

#include <stdint.h>

#include "config.h"

#define PE_PARTS 4
#define PE_DAYS 10 /* 2026-01-01 … 2026-01-10 */
#define PE_METHODS 3
/* The greatest clock is 2026-01-10 (partition 2), RETENTION_DAYS 3: days
 * 01 … 07 are due, 08 … 10 stay hot. */
#define PE_THROUGH 7

struct persistor;

typedef struct pe_ledger {
    int64_t cents[PE_DAYS][2][PE_METHODS];
    int has[PE_PARTS][PE_DAYS]; /* partition p held day d */
} pe_ledger;

/* "" (one Redis, the harness's) or a cluster's seeds. */
void pe_use_cluster(const char *seeds);
void pe_config(txagg_config *cfg);
/* FLUSHALL on every primary, drop the test database. */
void pe_reset(void);
/* A persistor holding the lease (waits up to 10 s), the layout recorded. */
struct persistor *pe_holder(void);
/* Seed every partition; the ledger gets what was seeded. */
void pe_seed(pe_ledger *l, int seed);
/* 1 when hot + frozen (not listed) + cold equals the ledger; else 0 and
 * why on stderr. */
int pe_exact(const pe_ledger *l);
/* 1 when days ≤ PE_THROUGH are archived (see above) and later days hot. */
int pe_archived(const pe_ledger *l);
/* cycle_run (re-acquiring the lease when lost) until pe_archived, or 60 s. */
void pe_cycle_until_archived(struct persistor *p, const pe_ledger *l);

/* A partition with a pending (frozen, not cleaned) batch, or -1; the slot
 * of a partition. */
int pe_pending_partition(void);
int pe_slot(int part);

/* bin/persistor in the background with this configuration's environment
 * (REDIS_PARTITIONS, REDIS_CLUSTER, RETENTION_DAYS, short interval and
 * lease), its log appended to log, returning once it logged "started";
 * pe_wait_exit: its exit status (128 + signal). */
int pe_start_service(const char *log);
int pe_wait_exit(int pid);

/* The bodies shared by both programs. */
void pe_test_every_partition_archived_exactly(void);
void pe_test_crash_between_freeze_and_clean(int stage);
void pe_test_former_holder_fenced_out(void);

#endif
