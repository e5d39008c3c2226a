/*
 * api — the service loop.
 */
#ifndef TXAGG_API_H
#define TXAGG_API_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int api_run(const txagg_config *cfg);

#endif
