/*
 * persistor — service loop (placeholder until its issue lands: waits for SIGTERM).
 */
#include "persistor.h"
#include "log.h"
#include "signals.h"

int persistor_run(const txagg_config *cfg)
{
    (void)cfg;
    log_info("started", "version=%s", TXAGG_VERSION);
    while (!sig_sleep_ms(1000)) {
    }
    log_info("stopped");
    return 0;
}
