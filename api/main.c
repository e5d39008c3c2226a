/*
 * api — main: flags, configuration, signals; the loop is api_run().
 */
#include "cli.h"
#include "api.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: api [--help] [--version]\n"
    "\n"
    "Serves GET /stats (Redis and MongoDB merged), /health, /ready, /metrics,\n/openapi.json, /docs and the dashboard at /.  Runs until SIGTERM/SIGINT and exits 0.\n";

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (cli_std_flag(argv[i], "api", CFG_API, usage)) return 0;
        fprintf(stderr, "api: unknown argument '%s'\n\n", argv[i]);
        cli_usage(stderr, "api", CFG_API, usage);
        return 2;
    }
    txagg_config cfg;
    int rc = cli_setup("api", CFG_API, &cfg);
    if (rc) return rc;
    return api_run(&cfg);
}
