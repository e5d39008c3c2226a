/*
 * config — the table of environment variables; see config.h.
 *
 * Invariant: a variable appears here exactly once, with its default, bounds,
 * the binaries that read it and the sentence --help prints.  Nothing else in
 * the tree calls getenv() for a setting.
 */
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum cfg_kind { K_STR, K_INT, K_I64, K_LEVEL, K_BOOL, K_SPEED, K_NAME, K_WCONCERN, K_HOST, K_HOSTPORTS };

typedef struct cfg_var {
    const char *name;
    const char *def; /* default as text ("" = unset) */
    enum cfg_kind kind;
    int64_t min, max;
    size_t off;  /* offset in txagg_config */
    size_t size; /* for strings */
    unsigned bins;
    const char *help;
} cfg_var;

#define F(field) offsetof(txagg_config, field), sizeof(((txagg_config *)0)->field)
#define W (CFG_IMPORTER | CFG_AGGREGATOR | CFG_PERSISTOR)

static const cfg_var cfg_vars[] = {
    {"REDIS_HOST", "127.0.0.1", K_STR, 0, 0, F(redis_host), CFG_ALL, "Redis host name or address"},
    {"REDIS_PORT", "6379", K_INT, 1, 65535, F(redis_port), CFG_ALL, "Redis TCP port"},
    {"REDIS_USERNAME", "", K_STR, 0, 0, F(redis_username), CFG_ALL, "Redis ACL user (AUTH user pass)"},
    {"REDIS_PASSWORD", "", K_STR, 0, 0, F(redis_password), CFG_ALL, "Redis password (unset = no AUTH)"},
    {"REDIS_TIMEOUT_MS", "2000", K_INT, 100, 600000, F(redis_timeout_ms), CFG_ALL,
     "Redis connect and command timeout, milliseconds"},
    {"REDIS_CLUSTER", "", K_HOSTPORTS, 0, 0, F(redis_cluster), CFG_ALL,
     "Redis Cluster seed nodes host:port,...; set = cluster mode (REDIS_HOST/REDIS_PORT unused)"},
    {"REDIS_PARTITIONS", "", K_INT, 1, CONFIG_PARTITIONS_MAX, F(redis_partitions), CFG_ALL,
     "hot-tier partitions, fixed for the data's life (recorded in Redis at first start)"},
    {"MONGODB_URI", "mongodb://127.0.0.1:27017", K_STR, 0, 0, F(mongodb_uri), CFG_PERSISTOR | CFG_API,
     "MongoDB connection string"},
    {"MONGODB_DATABASE", "fintech_db", K_NAME, 1, 63, F(mongodb_database), CFG_PERSISTOR | CFG_API,
     "MongoDB database"},
    {"MONGODB_COLLECTION", "daily_stats", K_NAME, 1, 63, F(mongodb_collection), CFG_PERSISTOR | CFG_API,
     "MongoDB collection of daily documents"},
    {"MONGODB_TIMEOUT_MS", "2000", K_INT, 100, 600000, F(mongodb_timeout_ms), CFG_PERSISTOR | CFG_API,
     "MongoDB connect, socket and server-selection timeout unless the URI sets them"},
    {"MONGODB_WRITE_CONCERN", "majority", K_WCONCERN, 0, 0, F(mongodb_write_concern), CFG_PERSISTOR,
     "write concern w: majority or a number of nodes"},
    {"MONGODB_JOURNAL", "true", K_BOOL, 0, 1, F(mongodb_journal), CFG_PERSISTOR,
     "write concern j: wait for the journal (true/false)"},
    {"CSV_PATH", "", K_STR, 0, 0, F(csv_path), CFG_IMPORTER, "CSV file to import when no FILE argument is given"},
    {"BATCH_SIZE", "1000", K_INT, 1, 100000, F(batch_size), CFG_IMPORTER | CFG_AGGREGATOR,
     "rows per published batch / entries per XREADGROUP"},
    {"IMPORT_SPEED", "1", K_SPEED, 0, INT64_C(1000000000), F(import_speed_milli), CFG_IMPORTER,
     "pacing: 1 = sleep_ms as written, 0 = no delays, k = k times faster"},
    {"MAX_BACKLOG", "1000000", K_I64, 1, INT64_C(1000000000000), F(max_backlog), CFG_IMPORTER,
     "importer waits while the group's lag + pending exceeds this"},
    {"MAX_FUTURE_DAYS", "366", K_INT, 0, 36600, F(max_future_days), CFG_IMPORTER,
     "reject rows stamped more than this many days after now"},
    {"CONSUMER_NAME", "", K_STR, 0, 0, F(consumer_name), CFG_AGGREGATOR,
     "consumer name in the group (default: hostname-pid, unique per replica)"},
    {"CLAIM_IDLE_MS", "30000", K_I64, 100, INT64_C(86400000), F(claim_idle_ms), CFG_AGGREGATOR,
     "claim entries idle this long in any consumer"},
    {"RETENTION_DAYS", "7", K_INT, 0, 36600, F(retention_days), CFG_PERSISTOR,
     "days of event time kept hot in Redis before archival"},
    {"PERSIST_INTERVAL_MS", "10000", K_I64, 50, INT64_C(86400000), F(persist_interval_ms), CFG_PERSISTOR,
     "archival cycle period"},
    {"PERSIST_LEASE_MS", "15000", K_I64, 200, INT64_C(3600000), F(persist_lease_ms), CFG_PERSISTOR,
     "persistor lease time-to-live; a standby takes over after it lapses"},
    {"API_HOST", "0.0.0.0", K_HOST, 0, 0, F(api_host), CFG_API, "API listen address (IPv4 address or host name)"},
    {"API_PORT", "8000", K_INT, 1, 65535, F(api_port), CFG_API, "API listen port"},
    {"API_PROBE_PORT", "8001", K_INT, 0, 65535, F(api_probe_port), CFG_API,
     "port of the API's own /health and /ready listener for orchestrators (0 = off)"},
    {"API_THREADS", "64", K_INT, 1, 1024, F(api_threads), CFG_API,
     "API worker threads (one keep-alive connection each)"},
    {"API_HEAD_TIMEOUT_S", "5", K_INT, 1, 300, F(api_head_timeout_s), CFG_API,
     "seconds a new API connection may take to send its request head"},
    {"API_TOKEN", "", K_STR, 0, 0, F(api_token), CFG_API,
     "bearer token for /stats, /metrics, /openapi.json, /docs (unset = open)"},
    {"MAX_RANGE_DAYS", "3660", K_INT, 1, 100000, F(max_range_days), CFG_API,
     "longest /stats range, in days"},
    {"LOG_LEVEL", "INFO", K_LEVEL, 0, 0, F(log_level), CFG_ALL, "DEBUG, INFO, WARNING or ERROR"},
    {"METRICS_HOST", "0.0.0.0", K_HOST, 0, 0, F(metrics_host), W,
     "listen address of /health, /ready and /metrics (IPv4 address or host name)"},
    {"METRICS_PORT", "", K_INT, 0, 65535, F(metrics_port), W,
     "port of /health, /ready and /metrics (importer 9100, aggregator 9101, persistor 9102; 0 = off)"},
};

static const char *default_metrics_port(unsigned bin)
{
    switch (bin) {
    case CFG_IMPORTER: return "9100";
    case CFG_AGGREGATOR: return "9101";
    case CFG_PERSISTOR: return "9102";
    default: return "0";
    }
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!*s) return -1;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (!isdigit((unsigned char)*p)) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* "2.5" → 2500; at most three decimals; no sign, no exponent. */
static int parse_milli(const char *s, int64_t *out)
{
    int64_t whole = 0, frac = 0;
    int fdigits = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p)) return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (whole > INT64_C(1000000000)) return -1;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return -1;
        for (; isdigit((unsigned char)*p); p++) {
            if (++fdigits > 3) return -1;
            frac = frac * 10 + (*p - '0');
        }
    }
    if (*p) return -1;
    while (fdigits++ < 3) frac *= 10;
    *out = whole * 1000 + frac;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* MongoDB database / collection names: letters, digits, _ and -. */
static int valid_name(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') return 0;
    return *s != '\0';
}

/*
 * A listen address civetweb can bind: an IPv4 address (inet_pton's dotted
 * quad: civetweb's own parser would wrap 999.0.0.1), a host name (RFC 1123
 * labels; civetweb resolves it at start), or an IPv6 address when the
 * library has IPv6 (mg_check_feature 8; Debian's build has not).  Nothing
 * else: a ',' would smuggle a second port into listening_ports.
 */
static const char *host_problem(const char *h)
{
    unsigned char a6[16];
    if (strchr(h, ':')) {
        if (!mg_check_feature(8)) return "IPv6 is not available in this civetweb build; use an IPv4 address such as 0.0.0.0";
        return inet_pton(AF_INET6, h, a6) == 1 ? NULL : "not an IPv6 address";
    }
    if (strspn(h, "0123456789.") == strlen(h))
        return inet_pton(AF_INET, h, a6) == 1 ? NULL : "not an IPv4 address a.b.c.d";
    size_t label = 0;
    for (const char *p = h;; p++) {
        if (*p == '.' || !*p) {
            if (label == 0 || label > 63 || p[-1] == '-') return "not a host name";
            if (!*p) break;
            label = 0;
        } else if (isalnum((unsigned char)*p) || (*p == '-' && label > 0)) {
            label++;
        } else {
            return "not an IPv4 address or host name";
        }
    }
    return strlen(h) > 253 ? "host name too long" : NULL;
}

static int load_var(const cfg_var *v, const char *val, txagg_config *cfg, char *err, size_t errlen)
{
    char *base = (char *)cfg + v->off;
    int64_t i;
    switch (v->kind) {
    case K_STR:
        if (strlen(val) >= v->size) {
            snprintf(err, errlen, "%s: value too long (at most %zu bytes)", v->name, v->size - 1);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    case K_NAME:
        if (strlen(val) >= v->size || !valid_name(val)) {
            snprintf(err, errlen, "%s: invalid value '%s' (expected 1-%d letters, digits, '_' or '-')", v->name,
                     val, (int)v->max);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    case K_INT:
    case K_I64:
        if (parse_i64(val, &i) || i < v->min || i > v->max) {
            snprintf(err, errlen, "%s: invalid value '%s' (expected an integer %" PRId64 "..%" PRId64 ")",
                     v->name, val, v->min, v->max);
            return -1;
        }
        if (v->kind == K_INT) *(int *)base = (int)i;
        else *(int64_t *)base = i;
        return 0;
    case K_SPEED:
        if (parse_milli(val, &i) || i > v->max) {
            snprintf(err, errlen, "%s: invalid value '%s' (expected a number >= 0 with at most 3 decimals)",
                     v->name, val);
            return -1;
        }
        *(int64_t *)base = i;
        return 0;
    case K_LEVEL: {
        int l = log_level_parse(val);
        if (l < 0) {
            snprintf(err, errlen, "%s: invalid value '%s' (expected DEBUG, INFO, WARNING or ERROR)", v->name, val);
            return -1;
        }
        *(int *)base = l;
        return 0;
    }
    case K_BOOL:
        if (parse_bool(val, (int *)base)) {
            snprintf(err, errlen, "%s: invalid value '%s' (expected true or false)", v->name, val);
            return -1;
        }
        return 0;
    case K_HOST: {
        const char *why = strlen(val) >= v->size ? "too long" : host_problem(val);
        if (why) {
            snprintf(err, errlen, "%s: invalid value '%s' (%s)", v->name, val, why);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    }
    case K_WCONCERN:
        if (strcmp(val, "majority") != 0 && (parse_i64(val, &i) || i < 0 || i > 50)) {
            snprintf(err, errlen, "%s: invalid value '%s' (expected majority or a number 0..50)", v->name, val);
            return -1;
        }
        snprintf(base, v->size, "%s", val);
        return 0;
    case K_HOSTPORTS: {
        config_hostport seeds[CONFIG_MAX_SEEDS];
        char why[400];
        if (strlen(val) >= v->size) {
            snprintf(err, errlen, "%s: value too long (at most %zu bytes)", v->name, v->size - 1);
            return -1;
        }
        if (config_hostports(val, seeds, CONFIG_MAX_SEEDS, why, sizeof why) < 0) {
            snprintf(err, errlen, "%s: %s", v->name, why);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    }
    }
    return -1;
}

#define STR_(x) #x
#define STR(x) STR_(x)

/* cfg: the variables loaded so far (the table's order), NULL for --help. */
static const char *var_default(const cfg_var *v, unsigned bin, const txagg_config *cfg)
{
    if (!strcmp(v->name, "METRICS_PORT")) return default_metrics_port(bin);
    if (!strcmp(v->name, "REDIS_PARTITIONS")) {
        if (!cfg) return STR(CONFIG_PARTITIONS_DEFAULT) " (cluster: " STR(CONFIG_PARTITIONS_DEFAULT_CLUSTER) ")";
        return cfg->redis_cluster[0] ? STR(CONFIG_PARTITIONS_DEFAULT_CLUSTER) : STR(CONFIG_PARTITIONS_DEFAULT);
    }
    return v->def;
}

int config_hostports(const char *list, config_hostport *out, int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[300];
        if (len == 0 || len >= sizeof item)
            return log_fail(-1, err, errlen, "invalid value '%s' (expected host:port,host:port,...)", list);
        memcpy(item, p, len);
        item[len] = '\0';
        char *colon = strrchr(item, ':');
        int64_t port;
        if (!colon || colon == item || !isdigit((unsigned char)colon[1]) || parse_i64(colon + 1, &port) || port < 1 || port > 65535)
            return log_fail(-1, err, errlen, "invalid value '%s' ('%s' is not host:port with a port 1..65535)", list,
                            item);
        *colon = '\0';
        char *host = item;
        if (host[0] == '[') { /* [IPv6]:port */
            size_t hl = strlen(host);
            if (hl < 3 || host[hl - 1] != ']')
                return log_fail(-1, err, errlen, "invalid value '%s' (bad bracketed address in '%s')", list, p);
            host[hl - 1] = '\0';
            host++;
        }
        for (const char *h = host; *h; h++)
            if (isspace((unsigned char)*h) || iscntrl((unsigned char)*h) || *h == ',')
                return log_fail(-1, err, errlen, "invalid value '%s' (no spaces in host names)", list);
        if (n == max) return log_fail(-1, err, errlen, "invalid value '%s' (at most %d nodes)", list, max);
        if (strlen(host) >= sizeof out[n].host)
            return log_fail(-1, err, errlen, "invalid value '%s' (host name too long)", list);
        memcpy(out[n].host, host, strlen(host) + 1);
        out[n].port = (int)port;
        n++;
        if (!end) break;
        p = end + 1;
    }
    return n;
}

int config_load(txagg_config *cfg, unsigned bin, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t k = 0; k < sizeof cfg_vars / sizeof cfg_vars[0]; k++) {
        const cfg_var *v = &cfg_vars[k];
        const char *val = getenv(v->name);
        int from_env = val && *val;
        if (!(v->bins & bin)) from_env = 0; /* other binaries' settings are not checked */
        if (!from_env) val = var_default(v, bin, cfg);
        if (!*val && (v->kind == K_STR || v->kind == K_HOSTPORTS)) continue; /* unset string */
        if (load_var(v, val, cfg, err, errlen)) {
            if (!from_env) snprintf(err, errlen, "%s: built-in default '%s' is invalid", v->name, val);
            return -1;
        }
    }
    if (!cfg->consumer_name[0]) {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(cfg->consumer_name, sizeof cfg->consumer_name, "%s-%ld", host, (long)getpid());
    }
    for (const char *p = cfg->consumer_name; *p; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
            snprintf(err, errlen, "CONSUMER_NAME: invalid value '%s' (no spaces or control characters)",
                     cfg->consumer_name);
            return -1;
        }
    }
    return 0;
}

void config_print_env_help(FILE *out, unsigned bin)
{
    fprintf(out, "Environment (empty = unset = default):\n");
    for (size_t k = 0; k < sizeof cfg_vars / sizeof cfg_vars[0]; k++) {
        const cfg_var *v = &cfg_vars[k];
        if (!(v->bins & bin)) continue;
        const char *d = var_default(v, bin, NULL);
        char shown[64];
        snprintf(shown, sizeof shown, "%s", *d ? d : "(unset)");
        fprintf(out, "  %-22s %-26s %s\n", v->name, shown, v->help);
    }
}

void config_print_version(FILE *out, const char *prog)
{
    fprintf(out, "%s (txagg) %s\n", prog, TXAGG_VERSION);
}

int64_t config_pace_us(const txagg_config *cfg, int64_t sleep_ms)
{
    if (cfg->import_speed_milli <= 0 || sleep_ms <= 0) return 0;
    return sleep_ms * 1000 * 1000 / cfg->import_speed_milli;
}
