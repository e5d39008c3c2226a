/*
 * persistor — the service loop.
 */
#ifndef TXAGG_PERSISTOR_H
#define TXAGG_PERSISTOR_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int persistor_run(const txagg_config *cfg);

#endif
