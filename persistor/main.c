/*
 * persistor — main: flags, configuration, signals; the loop is service_run(),
 * the switch-over from the Python service migrate_main().
 */
#include "cli.h"
#include "migrate.h"
#include "service.h"

#include <string.h>

static const char usage[] =
    "Usage: persistor [--help] [--version]\n"
    "       persistor migrate [--check] [--help]   (switch-over from the Python service)\n"
    "\n"
    "Moves days older than RETENTION_DAYS (by the virtual clock) from Redis to MongoDB,\nexactly once; one active persistor at a time (a lease in Redis).  Runs until\nSIGTERM/SIGINT and exits 0.\n";

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "migrate")) return migrate_main(argc - 1, argv + 1);
    txagg_config cfg;
    int rc = cli_start(argc, argv, "persistor", CFG_PERSISTOR, usage, &cfg);
    return rc == CLI_RUN ? service_run(&cfg) : rc;
}
