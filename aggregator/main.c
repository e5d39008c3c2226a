/*
 * aggregator — main: flags, configuration, signals; the loop is aggregator_run().
 */
#include "cli.h"
#include "aggregator.h"

static const char usage[] =
    "Usage: aggregator [--help] [--version]\n"
    "\n"
    "Reads the stream `transactions` in the consumer group `aggregators` and rolls each\nbatch into the daily hashes agg:{day}:{type}, exactly once.  Runs until SIGTERM/SIGINT,\nfinishes the batch in hand and exits 0.\n"
    "\n"
    "With REDIS_PARTITIONS=N (or REDIS_CLUSTER) every replica consumes every partition's stream\n"
    "transactions{pI:K} in its own group; exits 2 when N differs from the number the data in\n"
    "Redis was written with.\n";

int main(int argc, char **argv)
{
    txagg_config cfg;
    int rc = cli_start(argc, argv, "aggregator", CFG_AGGREGATOR, usage, &cfg);
    return rc == CLI_RUN ? aggregator_run(&cfg) : rc;
}
