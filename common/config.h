/*
 * config — every environment variable, its default and its bounds, in one
 * table (config.c).  Each binary loads the subset it reads; a bad value is an
 * error naming the variable (the binary then exits 2).  An empty value means
 * "unset" (so `API_TOKEN=` in a .env file leaves the API open).
 *
 * Listen addresses (API_HOST, METRICS_HOST) are checked here too: an IPv4
 * address or a host name, or an IPv6 address only when the civetweb library
 * was built with IPv6 (Debian's is not) — so a listener the user asked for
 * cannot fail later for a reason the configuration could have named.
 *
 * Names, defaults and bounds are a contract (docs/CONTRACTS.md
 * "Configuration"); --help of every binary prints the subset it reads from
 * the same table, so the two cannot drift.
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
    char redis_cluster[1024]; /* REDIS_CLUSTER seed list "host:port,…"; empty = one Redis */
    int redis_partitions;     /* REDIS_PARTITIONS; its meaning belongs to the key schema */
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
    int api_head_timeout_s; /* a new connection's whole request head within this */
    int api_probe_port;     /* /health and /ready on their own listener; 0 = none */
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

/* REDIS_PARTITIONS: bounds, and the default on one Redis / in cluster mode. */
#define CONFIG_PARTITIONS_MAX 1024
#define CONFIG_PARTITIONS_DEFAULT 1
#define CONFIG_PARTITIONS_DEFAULT_CLUSTER 16

/* One "host:port" of a list such as REDIS_CLUSTER. */
typedef struct config_hostport {
    char host[256];
    int port;
} config_hostport;
#define CONFIG_MAX_SEEDS 32

/*
 * Parse "host:port,host:port,…" (an IPv6 address in brackets: "[::1]:7000")
 * into out[0..max).  Returns the count (>= 1), or -1 with err saying what is
 * wrong (the caller prefixes the variable's name).
 */
int config_hostports(const char *list, config_hostport *out, int max, char *err, size_t errlen);

/* "importer (txagg) 0.1.0" */
void config_print_version(FILE *out, const char *prog);

/* Microseconds to wait after a row at IMPORT_SPEED: sleep_ms / speed (0 = none). */
int64_t config_pace_us(const txagg_config *cfg, int64_t sleep_ms);

#endif
