/*
 * archive_env — what the persistor's C tests share: a persistor configured
 * for tests (short lease), taking the lease the way a restarted replica does
 * (waiting for a crashed holder's lease to lapse), and the oracle
 * (tests/tools/archive_probe: seed with a ledger, compare the ledger with
 * hot + frozen + cold, state facts).
 */
#ifndef TXAGG_TEST_ARCHIVE_ENV_H
#define TXAGG_TEST_ARCHIVE_ENV_H

#include <stdint.h>

#include "config.h"

/* RETENTION_DAYS of these tests (also exported for the probe). */
#define ARCHIVE_ENV_RETENTION 3
/* Lease TTL of test persistors: short, so a "crashed" holder's lapses soon. */
#define ARCHIVE_ENV_LEASE_MS 400

struct persistor;

/* The test configuration (RETENTION_DAYS, PERSIST_LEASE_MS above). */
void archive_env_config(txagg_config *cfg);
/* Flush Redis, drop the test database, remove ledger. */
void archive_env_reset(const char *ledger);
/* A persistor that holds the lease (waits up to 10 s for it); asserts. */
struct persistor *archive_env_holder(void);

/* archive_probe seed LEDGER SEED FIRST_DAY NDAYS ROWS; 0 on success. */
int archive_env_seed(const char *ledger, int seed, const char *first_day, int ndays, long rows);
/* archive_probe compare LEDGER: 1 when the tiers match the ledger exactly. */
int archive_env_exact(const char *ledger);

typedef struct archive_state {
    long pending, frozen_keys, batch_records, tracked, eligible, docs, max_batches, version;
    char archived_through[16], newest_cold[16];
} archive_state;
/* archive_probe state; asserts it ran. */
void archive_env_state(archive_state *st);

#endif
