/*
 * cli — common start-up of the four binaries; see cli.h.
 */
#include "cli.h"
#include "log.h"
#include "signals.h"

#include <stdio.h>
#include <string.h>

void cli_usage(FILE *out, unsigned bin, const char *usage)
{
    fprintf(out, "%s", usage);
    fprintf(out, "\nCommon flags:\n  -h, --help     this text\n  -V, --version  print the version\n\n");
    config_print_env_help(out, bin);
}

int cli_std_flag(const char *arg, const char *prog, unsigned bin, const char *usage)
{
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
        cli_usage(stdout, bin, usage);
        return 1;
    }
    if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
        config_print_version(stdout, prog);
        return 1;
    }
    return 0;
}

int cli_setup(const char *prog, unsigned bin, txagg_config *cfg)
{
    char err[512];
    if (config_load(cfg, bin, err, sizeof err) != 0) {
        fprintf(stderr, "%s: configuration error: %s\n", prog, err);
        return 2;
    }
    log_init(prog, cfg->log_level);
    sig_install();
    return 0;
}

int cli_refuse_partitions(const char *prog, const txagg_config *cfg)
{
    if (!cfg->redis_cluster[0] && cfg->redis_partitions <= 1) return 0;
    fprintf(stderr,
            "%s: configuration error: %s: the hot tier on a Redis Cluster or in several partitions is not "
            "available in this release for the %s (docs/SCALING.md, \"Redis Cluster\"); unset REDIS_CLUSTER and "
            "REDIS_PARTITIONS to run on one Redis (REDIS_HOST/REDIS_PORT)\n",
            prog, cfg->redis_cluster[0] ? "REDIS_CLUSTER" : "REDIS_PARTITIONS", prog);
    return 2;
}

int cli_start(int argc, char **argv, const char *prog, unsigned bin, const char *usage, txagg_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        if (cli_std_flag(argv[i], prog, bin, usage)) return 0;
        fprintf(stderr, "%s: unknown argument '%s'\n\n", prog, argv[i]);
        cli_usage(stderr, bin, usage);
        return 2;
    }
    int rc = cli_setup(prog, bin, cfg);
    return rc ? rc : CLI_RUN;
}
