/*
 * config — every environment variable, its default and its bounds, in one
 * table (config.c).  Each binary loads the subset it reads; a bad value is an
 * error naming the variable (the binary then exits 2).  An empty value means
 * "unset" (so `API_TOKEN=` in a .env file leaves the API open).
 *
 * Names and defaults are the contract of DESIGN.md; --help of every binary
 * prints the subset it reads from the same table, so the two cannot drift.
 */
#ifndef TXAGG_CONFIG_H
#define TXAGG_CONFIG_H

#include <stdint.h>
#include <stdio.h>

/* Which binary reads a variable (bit set). */
enum cfg_bin {
    CFG_IMPORTER = 1u << 0,
    CFG_AGGREGATOR = 1u << 1,
    CFG_PERSISTOR = 1u << 2,
    CFG_API = 1u << 3,
    CFG_ALL = 0xfu,
};

typedef struct txagg_config {
    /* Redis */
    char redis_host[256];
    int redis_port;
    char redis_username[128];
    char redis_password[256];
    int redis_timeout_ms;
    /* MongoDB */
    char mongodb_uri[1024];
    char mongodb_database[64];
    char mongodb_collection[64];
    int mongodb_timeout_ms;
    char mongodb_write_concern[32]; /* "majority" or a number */
    int mongodb_journal;            /* 0/1 */
    /* ingestion */
    char csv_path[4096];
    int batch_size;
    int64_t import_speed_milli; /* IMPORT_SPEED × 1000; 0 = no delays */
    int64_t max_backlog;
    int max_future_days;
    char consumer_name[128];
    int64_t claim_idle_ms;
    /* archival */
    int retention_days;
    int64_t persist_interval_ms;
    int64_t persist_lease_ms;
    /* API */
    char api_host[256];
    int api_port;
    int api_threads;
    char api_token[256];
    int max_range_days;
    /* every binary */
    int log_level;
    char metrics_host[256];
    int metrics_port; /* 0 = no listener */
} txagg_config;

/*
 * Fill cfg from the environment for binary `bin` (one CFG_* bit).  Returns 0,
 * or -1 with err naming the variable and the accepted values.
 */
int config_load(txagg_config *cfg, unsigned bin, char *err, size_t errlen);

/* The variables `bin` reads, with defaults and descriptions (for --help). */
void config_print_env_help(FILE *out, unsigned bin);

/* "importer (txagg) 0.1.0" */
void config_print_version(FILE *out, const char *prog);

/* Microseconds to wait after a row at IMPORT_SPEED: sleep_ms / speed (0 = none). */
int64_t config_pace_us(const txagg_config *cfg, int64_t sleep_ms);

#endif
