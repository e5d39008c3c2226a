/*
 * api — the service loop: start the HTTP server, serve until SIGTERM/SIGINT,
 * stop it (requests in hand are finished), exit 0.
 */
#ifndef TXAGG_API_H
#define TXAGG_API_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status (1 when the
 * server cannot start, e.g. the port is taken). */
int api_run(const txagg_config *cfg);

#endif
