/*
 * redis — connection lifecycle and scripts; see redis.h.
 *
 * Invariants: rc->c is either NULL or a context with no error, connected,
 * authenticated and with both timeouts set; after any I/O error it is freed
 * at once.  Backoff only grows while connection attempts fail.
 */
#include "redis.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct rconn {
    redisContext *c;
    char host[256];
    int port;
    char user[128];
    char pass[256];
    char name[64];
    int timeout_ms;
    int64_t backoff_ms;
    int64_t next_attempt_ms;
    int ever_connected;
    char err[256];
};

/*
 * An outage is a property of the server, not of one connection: every rconn
 * of the process to the same host:port shares one log_state, so an API with
 * 64 worker connections logs "unreachable" once, not 64 times.
 */
typedef struct endpoint_state {
    char name[300];
    log_state st;
    char identity[100]; /* run_id and replication id of the server last found there */
} endpoint_state;

static endpoint_state endpoints[64]; /* a cluster's nodes and the addresses failovers bring */
static int nendpoints;
static pthread_mutex_t endpoints_lock = PTHREAD_MUTEX_INITIALIZER;

/* The outcome of the process's last connection event (connect, drop, failed
 * attempt) on any server: txagg_redis_up.  Not "every server up": in cluster
 * mode a node that failed over is never contacted again, and must not hold
 * the figure at 0 while the cluster serves. */
static atomic_int last_up = 1;

static atomic_uint_fast64_t redis_errors;
static atomic_uint_fast64_t redis_reconnects;
static atomic_uint_fast64_t redis_histories;

/* The outcome of a connection event on rc's address, logged once per change;
 * on a connect, identity is the server found there (server_identity): a new
 * history is counted when the address held another server before, or when
 * the server does not tell. */
static void report_state(const rconn *rc, int up, const char *detail, const char *identity)
{
    atomic_store(&last_up, up != 0);
    char name[300];
    snprintf(name, sizeof name, "redis %s:%d", rc->host, rc->port);
    pthread_mutex_lock(&endpoints_lock);
    endpoint_state *e = NULL;
    for (int i = 0; i < nendpoints && !e; i++)
        if (!strcmp(endpoints[i].name, name)) e = &endpoints[i];
    if (!e && nendpoints < (int)(sizeof endpoints / sizeof endpoints[0])) {
        e = &endpoints[nendpoints++];
        snprintf(e->name, sizeof e->name, "%s", name);
    }
    if (e) log_state_report(&e->st, name, up, detail);
    int changed = identity && (!identity[0] || (e && e->identity[0] && strcmp(e->identity, identity)));
    if (e && identity) snprintf(e->identity, sizeof e->identity, "%s", identity);
    pthread_mutex_unlock(&endpoints_lock);
    if (changed) atomic_fetch_add(&redis_histories, 1);
}

/* "run_id/master_replid" of the server on c (INFO server, INFO replication,
 * pipelined) into out, "" when it does not tell (INFO refused or renamed).
 * -1 on an I/O error (rc->err set). */
static int server_identity(rconn *rc, redisContext *c, char *out, size_t n)
{
    out[0] = '\0';
    char run[48] = "", repl[48] = "";
    redisAppendCommand(c, "INFO server");
    redisAppendCommand(c, "INFO replication");
    for (int i = 0; i < 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            snprintf(rc->err, sizeof rc->err, "INFO: %s", c->errstr);
            return -1;
        }
        const char *field = i ? "master_replid:" : "run_id:", *p;
        if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, field)))
            sscanf(p + strlen(field), "%47[0-9a-f]", i ? repl : run);
        freeReplyObject(r);
    }
    if (run[0] && repl[0]) snprintf(out, n, "%s/%s", run, repl);
    return 0;
}

uint64_t rconn_error_total(void) { return atomic_load(&redis_errors); }
uint64_t rconn_reconnect_total(void) { return atomic_load(&redis_reconnects); }
uint64_t rconn_history(void) { return atomic_load(&redis_histories); }

int rconn_up(void) { return atomic_load(&last_up); }

static int64_t up_gauge(void) { return rconn_up(); }

static void register_metrics(void)
{
    metrics_counter_fn("txagg_redis_errors_total",
                       "Redis I/O errors of this process: connections dropped and connection attempts that failed",
                       NULL, rconn_error_total);
    metrics_counter_fn("txagg_redis_reconnects_total", "Redis connections made again after a failure", NULL,
                       rconn_reconnect_total);
    metrics_gauge_fn("txagg_redis_up",
                     "0 while this process's last Redis connection event (connect, drop, failed attempt) was "
                     "a failure, else 1 (also before the first)",
                     NULL, up_gauge);
}

#ifdef TXAGG_TESTING
rconn *rconn_new(const txagg_config *cfg, const char *client_name)
{
    return rconn_new_at(cfg, cfg->redis_host, cfg->redis_port, client_name);
}
#endif

rconn *rconn_new_at(const txagg_config *cfg, const char *host, int port, const char *client_name)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_metrics);
    rconn *rc = calloc(1, sizeof *rc);
    if (!rc) return NULL;
    snprintf(rc->host, sizeof rc->host, "%s", host);
    rc->port = port;
    snprintf(rc->user, sizeof rc->user, "%s", cfg->redis_username);
    snprintf(rc->pass, sizeof rc->pass, "%s", cfg->redis_password);
    snprintf(rc->name, sizeof rc->name, "%s", client_name ? client_name : "");
    rc->timeout_ms = cfg->redis_timeout_ms;
    rc->backoff_ms = BACKOFF_MIN_MS;
    snprintf(rc->err, sizeof rc->err, "not connected");
    return rc;
}

void rconn_free(rconn *rc)
{
    if (!rc) return;
    if (rc->c) redisFree(rc->c);
    free(rc);
}

int rconn_connected(const rconn *rc) { return rc->c != NULL; }
const char *rconn_error(const rconn *rc) { return rc->err; }

static void set_down(rconn *rc, const char *why)
{
    if (why != rc->err) snprintf(rc->err, sizeof rc->err, "%s", why);
    report_state(rc, 0, rc->err, NULL);
}

void rconn_drop(rconn *rc)
{
    if (!rc->c) return;
    atomic_fetch_add(&redis_errors, 1);
    set_down(rc, rc->c->err ? rc->c->errstr : "connection dropped");
    redisFree(rc->c);
    rc->c = NULL;
    rc->next_attempt_ms = 0; /* reconnect at once; back off only if that fails */
}

const char *rconn_host(const rconn *rc) { return rc->host; }
int rconn_port(const rconn *rc) { return rc->port; }

/* Run one setup command on a fresh context; 0 when it succeeded. */
static int setup_cmd(rconn *rc, redisContext *c, const char *what, redisReply *r)
{
    if (!r) {
        snprintf(rc->err, sizeof rc->err, "%s: %s", what, c->errstr);
        return -1;
    }
    int bad = r->type == REDIS_REPLY_ERROR;
    if (bad) snprintf(rc->err, sizeof rc->err, "%s: %s", what, r->str);
    freeReplyObject(r);
    return bad ? -1 : 0;
}

int rconn_ensure(rconn *rc)
{
    if (rc->c) return 0;
    int64_t now = sig_now_ms();
    if (now < rc->next_attempt_ms) return -1;

    struct timeval tv = {rc->timeout_ms / 1000, (rc->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(rc->host, rc->port, tv);
    int ok = c && !c->err;
    if (!ok) snprintf(rc->err, sizeof rc->err, "connect: %s", c ? c->errstr : "out of memory");
    if (ok && redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(rc->err, sizeof rc->err, "set timeout: %s", c->errstr);
        ok = 0;
    }
    if (ok) redisEnableKeepAlive(c);
    if (ok && rc->pass[0]) {
        redisReply *r = rc->user[0] ? redisCommand(c, "AUTH %s %s", rc->user, rc->pass)
                                    : redisCommand(c, "AUTH %s", rc->pass);
        ok = setup_cmd(rc, c, "AUTH", r) == 0;
    }
    if (ok && rc->name[0]) ok = setup_cmd(rc, c, "CLIENT SETNAME", redisCommand(c, "CLIENT SETNAME %s", rc->name)) == 0;
    if (ok) { /* the server must answer, not just accept (a loading or paused server does not) */
        ok = setup_cmd(rc, c, "PING", redisCommand(c, "PING")) == 0;
    }
    char identity[100];
    if (ok) ok = server_identity(rc, c, identity, sizeof identity) == 0;
    if (!ok) {
        if (c) redisFree(c);
        atomic_fetch_add(&redis_errors, 1);
        set_down(rc, rc->err);
        rc->next_attempt_ms = now + rc->backoff_ms;
        rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
        return -1;
    }
    rc->c = c;
    rc->backoff_ms = BACKOFF_MIN_MS;
    if (rc->ever_connected) atomic_fetch_add(&redis_reconnects, 1);
    rc->ever_connected = 1;
    report_state(rc, 1, NULL, identity);
    return 0;
}

int rconn_wait(rconn *rc)
{
    while (rconn_ensure(rc) != 0) {
        int64_t wait = rc->next_attempt_ms - sig_now_ms();
        if (sig_sleep_ms(wait > 0 ? wait : 1)) return -1;
    }
    return sig_stopping() ? -1 : 0;
}

redisContext *rconn_ctx(rconn *rc) { return rc->c; }

redisReply *rconn_cmd(rconn *rc, const char *fmt, ...)
{
    if (rconn_ensure(rc) != 0) return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc->c, fmt, ap);
    va_end(ap);
    if (!r) rconn_drop(rc);
    return r;
}

redisReply *rconn_cmd_argv(rconn *rc, int argc, const char **argv, const size_t *lens)
{
    if (rconn_ensure(rc) != 0) return NULL;
    redisReply *r = redisCommandArgv(rc->c, argc, argv, lens);
    if (!r) rconn_drop(rc);
    return r;
}

int rreply_is_error(const redisReply *r, const char *prefix)
{
    if (!r || r->type != REDIS_REPLY_ERROR) return 0;
    return !prefix || strncmp(r->str, prefix, strlen(prefix)) == 0;
}

int rscript_load(rconn *rc, rscript *s)
{
    redisReply *r = rconn_cmd(rc, "SCRIPT LOAD %s", s->src);
    if (!r) return -1;
    int ok = r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok) memcpy(s->sha, r->str, 41);
    else log_error("script load failed", "script=%s err=%s", s->name, r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* argv for EVALSHA sha nkeys args...; returns malloc'd arrays. */
static int build_evalsha(const rscript *s, int nkeys, int argc, const char **argv, const size_t *lens,
                         const char ***pv, size_t **pl, char *nk, size_t nksz)
{
    const char **v = malloc(sizeof *v * (size_t)(argc + 3));
    size_t *l = malloc(sizeof *l * (size_t)(argc + 3));
    if (!v || !l) {
        free(v);
        free(l);
        return -1;
    }
    snprintf(nk, nksz, "%d", nkeys);
    v[0] = "EVALSHA";
    l[0] = 7;
    v[1] = s->sha;
    l[1] = 40;
    v[2] = nk;
    l[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        v[i + 3] = argv[i];
        l[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    *pv = v;
    *pl = l;
    return 0;
}

redisReply *rscript_run(rconn *rc, rscript *s, int nkeys, int argc, const char **argv, const size_t *lens)
{
    if (!s->sha[0] && rscript_load(rc, s) != 0) return NULL;
    const char **v;
    size_t *l;
    char nk[16];
    if (build_evalsha(s, nkeys, argc, argv, lens, &v, &l, nk, sizeof nk)) return NULL;
    redisReply *r = rconn_cmd_argv(rc, argc + 3, v, l);
    if (rreply_is_error(r, "NOSCRIPT")) {
        /* Redis restarted or failed over: the script cache is empty. */
        freeReplyObject(r);
        r = NULL;
        if (rscript_load(rc, s) == 0) r = rconn_cmd_argv(rc, argc + 3, v, l);
    }
    free(v);
    free(l);
    return r;
}

int rscript_format(const rscript *s, int nkeys, int argc, const char **argv, const size_t *lens, char **out)
{
    const char **v;
    size_t *l;
    char nk[16];
    if (build_evalsha(s, nkeys, argc, argv, lens, &v, &l, nk, sizeof nk)) return -1;
    int len = redisFormatCommandArgv(out, argc + 3, v, l);
    free(v);
    free(l);
    return len;
}

int rscript_append(rconn *rc, rscript *s, int nkeys, int argc, const char **argv, const size_t *lens)
{
    if (!rc->c || !s->sha[0]) return -1;
    const char **v;
    size_t *l;
    char nk[16];
    if (build_evalsha(s, nkeys, argc, argv, lens, &v, &l, nk, sizeof nk)) return -1;
    int rv = redisAppendCommandArgv(rc->c, argc + 3, v, l) == REDIS_OK ? 0 : -1;
    free(v);
    free(l);
    return rv;
}

/* One command on the live context only: never a fresh connection, whose
 * WAIT would count none of the writes made on the lost one. */
static redisReply *cmd_same_conn(rconn *rc, const char *what, char *err, size_t errlen, const char *fmt, ...)
{
    if (!rc->c) {
        log_fail(-1, err, errlen, "%s: the connection was lost since the write (%s)", what, rc->err);
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc->c, fmt, ap);
    va_end(ap);
    if (!r) {
        log_fail(-1, err, errlen, "%s: %s", what, rc->c->errstr);
        rconn_drop(rc);
    }
    return r;
}

int rconn_replica_wait(rconn *rc, int timeout_ms, int *replicas, int *acked, char *err, size_t errlen)
{
    *replicas = *acked = 0;
    /* ROLE on a primary: ["master", offset, [[ip, port, offset], ...]] */
    redisReply *r = cmd_same_conn(rc, "ROLE", err, errlen, "ROLE");
    if (!r) return -1;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && r->element[0]->type == REDIS_REPLY_STRING &&
             r->element[2]->type == REDIS_REPLY_ARRAY;
    int primary = ok && !strcmp(r->element[0]->str, "master");
    if (primary) *replicas = (int)r->element[2]->elements;
    else if (r->type == REDIS_REPLY_ERROR) log_fail(-1, err, errlen, "ROLE: %s", r->str);
    else log_fail(-1, err, errlen, "%s:%d is not a primary (ROLE says %s)", rc->host, rc->port,
                  r->type == REDIS_REPLY_ARRAY && r->elements && r->element[0]->type == REDIS_REPLY_STRING
                      ? r->element[0]->str : "?");
    freeReplyObject(r);
    if (!primary) return -1;
    if (*replicas == 0) return 0;

    if (timeout_ms > rc->timeout_ms - 100) timeout_ms = rc->timeout_ms - 100;
    if (timeout_ms < 1) timeout_ms = 1;
    r = cmd_same_conn(rc, "WAIT", err, errlen, "WAIT %d %d", *replicas, timeout_ms);
    if (!r) return -1;
    int got = r->type == REDIS_REPLY_INTEGER;
    if (got) *acked = r->integer > *replicas ? *replicas : (int)r->integer;
    else log_fail(-1, err, errlen, "WAIT: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return got ? 0 : -1;
}
