/*
 * importer — the import of a list of files (see importer.c).
 */
#ifndef TXAGG_IMPORTER_H
#define TXAGG_IMPORTER_H

#include "config.h"

typedef struct importer_opts {
    int force; /* --force: import even a file whose checkpoint says done */
} importer_opts;

/* Imports files in order; returns the process exit status (0, 2 or 3). */
int importer_run(const txagg_config *cfg, const importer_opts *opts, const char *const *files, int nfiles);

#endif
