/*
 * cli — common start-up of the four binaries; see cli.h.
 */
#include "cli.h"
#include "log.h"
#include "signals.h"

#include <stdio.h>
#include <string.h>

void cli_usage(FILE *out, const char *prog, unsigned bin, const char *usage)
{
    fprintf(out, "%s", usage);
    fprintf(out, "\nCommon flags:\n  -h, --help     this text\n  -V, --version  print the version\n\n");
    config_print_env_help(out, bin);
    (void)prog;
}

int cli_std_flag(const char *arg, const char *prog, unsigned bin, const char *usage)
{
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
        cli_usage(stdout, prog, bin, usage);
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
