/*
 * api — main: flags, configuration, signals; the loop is api_run().
 */
#include "cli.h"
#include "api.h"

static const char usage[] =
    "Usage: api [--help] [--version]\n"
    "\n"
    "Serves GET /stats (Redis and MongoDB merged), /health, /ready, /metrics,\n/openapi.json, /docs and the dashboard at /.  Runs until SIGTERM/SIGINT and exits 0.\n";

int main(int argc, char **argv)
{
    txagg_config cfg;
    int rc = cli_start(argc, argv, "api", CFG_API, usage, &cfg);
    return rc == CLI_RUN ? api_run(&cfg) : rc;
}
