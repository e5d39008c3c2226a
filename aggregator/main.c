/*
 * aggregator — main: flags, configuration, signals; the loop is aggregator_run().
 */
#include "cli.h"
#include "aggregator.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: aggregator [--help] [--version]\n"
    "\n"
    "Reads the stream `transactions` in the consumer group `aggregators` and rolls each\nbatch into the daily hashes agg:{day}:{type}, exactly once.  Runs until SIGTERM/SIGINT,\nfinishes the batch in hand and exits 0.\n";

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (cli_std_flag(argv[i], "aggregator", CFG_AGGREGATOR, usage)) return 0;
        fprintf(stderr, "aggregator: unknown argument '%s'\n\n", argv[i]);
        cli_usage(stderr, "aggregator", CFG_AGGREGATOR, usage);
        return 2;
    }
    txagg_config cfg;
    int rc = cli_setup("aggregator", CFG_AGGREGATOR, &cfg);
    if (rc) return rc;
    return aggregator_run(&cfg);
}
