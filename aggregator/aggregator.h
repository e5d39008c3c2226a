/*
 * aggregator — the service loop.
 */
#ifndef TXAGG_AGGREGATOR_H
#define TXAGG_AGGREGATOR_H

#include <stdint.h>

#include "config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int aggregator_run(const txagg_config *cfg);

/* Claim period: CLAIM_IDLE_MS / 2, bounded to 1..15 s. */
int64_t aggregator_claim_every_ms(int64_t claim_idle_ms);
/* XREADGROUP BLOCK: REDIS_TIMEOUT_MS / 2, at most 1 s, so the read timeout
 * never fires on an idle stream. */
int aggregator_block_ms(int redis_timeout_ms);

#endif
