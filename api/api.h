/*
 * api — the service loop: start the HTTP server on API_HOST:API_PORT and the
 * probe listener on API_HOST:API_PROBE_PORT (/health, /ready for
 * orchestrators), keep the probe's view of Redis and MongoDB current, serve
 * until SIGTERM/SIGINT, stop both (requests in hand are finished), exit 0.
 */
#ifndef TXAGG_API_H
#define TXAGG_API_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status (1 when a
 * listener cannot start, e.g. its port is taken; 2 when Redis holds data
 * written with another number of partitions). */
int api_run(const txagg_config *cfg);

#endif
