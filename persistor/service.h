/*
 * service — the persistor's service loop: stand by, or hold the lease and run
 * archival cycles.  See service.c.
 */
#ifndef TXAGG_PERSISTOR_SERVICE_H
#define TXAGG_PERSISTOR_SERVICE_H

#include "config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int service_run(const txagg_config *cfg);

#endif
