/*
 * aggregator — the service loop.
 */
#ifndef TXAGG_AGGREGATOR_H
#define TXAGG_AGGREGATOR_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int aggregator_run(const txagg_config *cfg);

#endif
