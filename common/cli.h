/*
 * cli — what every binary does before its loop: --help and --version, the
 * configuration (exit 2 naming the bad variable), logging and signals.
 */
#ifndef TXAGG_CLI_H
#define TXAGG_CLI_H

#include "config.h"

/*
 * Handles --help / -h and --version / -V.  usage: the binary's own synopsis
 * and flags (printed before the environment table).  Returns 1 when arg was
 * one of them (the caller then exits 0), else 0.
 */
int cli_std_flag(const char *arg, const char *prog, unsigned bin, const char *usage);

/* Print usage to stdout (for --help) or stderr (for a bad flag). */
void cli_usage(FILE *out, unsigned bin, const char *usage);

/* Load the configuration, start logging and signal handling.  0, or 2 after
 * printing "prog: configuration error: VAR: ..." on stderr. */
int cli_setup(const char *prog, unsigned bin, txagg_config *cfg);

/* For a binary that does not run on a partitioned hot tier yet: 2 after
 * printing "prog: configuration error: REDIS_CLUSTER: ..." (or
 * REDIS_PARTITIONS) when either asks for one, else 0. */
int cli_refuse_partitions(const char *prog, const txagg_config *cfg);

/* What cli_start returns when the binary is to run its loop. */
#define CLI_RUN (-1)

/*
 * The whole start-up of a binary that takes no argument but the common
 * flags: --help/--version (cli_std_flag), any other argument refused with
 * the usage on stderr, then cli_setup.  Returns CLI_RUN when *cfg is loaded
 * and the caller is to run, else the exit status: 0 after --help/--version,
 * 2 for an unknown argument or a configuration error.
 */
int cli_start(int argc, char **argv, const char *prog, unsigned bin, const char *usage, txagg_config *cfg);

#endif
