/*
 * persistor — main: flags, configuration, signals; the loop is persistor_run().
 */
#include "cli.h"
#include "persistor.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: persistor [--help] [--version]\n"
    "\n"
    "Moves days older than RETENTION_DAYS (by the virtual clock) from Redis to MongoDB,\nexactly once; one active persistor at a time (a lease in Redis).  Runs until\nSIGTERM/SIGINT and exits 0.\n";

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (cli_std_flag(argv[i], "persistor", CFG_PERSISTOR, usage)) return 0;
        fprintf(stderr, "persistor: unknown argument '%s'\n\n", argv[i]);
        cli_usage(stderr, "persistor", CFG_PERSISTOR, usage);
        return 2;
    }
    txagg_config cfg;
    int rc = cli_setup("persistor", CFG_PERSISTOR, &cfg);
    if (rc) return rc;
    return persistor_run(&cfg);
}
