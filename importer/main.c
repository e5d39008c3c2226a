/*
 * importer — main: flags, configuration, signals; the work is importer_run().
 */
#include "cli.h"
#include "importer.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: importer [--force] [FILE...]\n"
    "\n"
    "Streams CSV files (or CSV_PATH; '-' is standard input) into the Redis stream\n"
    "`transactions`, validating every row; rejected rows go to `transactions:rejected`.\n"
    "A checkpoint per file makes a restarted import resume and a finished file a no-op.\n"
    "With REDIS_PARTITIONS > 1 or REDIS_CLUSTER, a file's records go to the partitions'\n"
    "streams in stripes of BATCH_SIZE records (the size of the file's first import), with\n"
    "a checkpoint per file and partition.\n"
    "\n"
    "Flags:\n"
    "  --force        import a file again even if its checkpoint says it is done\n"
    "\n"
    "Rows are published in batches of BATCH_SIZE, at the pace of sleep_ms / IMPORT_SPEED,\n"
    "while the group backlog stays under MAX_BACKLOG.  On a terminal a progress line is\n"
    "shown; a summary per file and in total is always logged.\n"
    "\n"
    "Exit status: 0 all files imported (or already imported); 2 usage error, missing or\n"
    "unreadable file, or a header without a required column (nothing of that file is\n"
    "imported, the other files are), or REDIS_PARTITIONS other than the number the data\n"
    "was written with; 3 stopped by SIGTERM/SIGINT after committing the\n"
    "batch in hand (a rerun resumes); 1 another importer was importing the same file, or\n"
    "Redis ran a transaction only in part.\n";

int main(int argc, char **argv)
{
    importer_opts opts = {0};
    const char *files[256];
    int nfiles = 0, only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_files && cli_std_flag(a, "importer", CFG_IMPORTER, usage)) return 0;
        if (!only_files && !strcmp(a, "--")) {
            only_files = 1;
        } else if (!only_files && !strcmp(a, "--force")) {
            opts.force = 1;
        } else if (!only_files && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "importer: unknown flag '%s'\n\n", a);
            cli_usage(stderr, CFG_IMPORTER, usage);
            return 2;
        } else if (nfiles < (int)(sizeof files / sizeof files[0])) {
            files[nfiles++] = a;
        } else {
            fprintf(stderr, "importer: too many files (at most 256)\n");
            return 2;
        }
    }
    txagg_config cfg;
    int rc = cli_setup("importer", CFG_IMPORTER, &cfg);
    if (rc) return rc;
    if (nfiles == 0 && cfg.csv_path[0]) files[nfiles++] = cfg.csv_path;
    if (nfiles == 0) {
        fprintf(stderr, "importer: no input: give FILE arguments or set CSV_PATH\n");
        return 2;
    }
    return importer_run(&cfg, &opts, files, nfiles);
}
