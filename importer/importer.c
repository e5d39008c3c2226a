/*
 * importer — placeholder until the ingestion issue lands.
 */
#include "importer.h"
#include "log.h"

int importer_run(const txagg_config *cfg, const importer_opts *opts, const char *const *files, int nfiles)
{
    (void)cfg;
    (void)opts;
    (void)files;
    (void)nfiles;
    log_error("import not implemented yet");
    return 1;
}
