/*
 * testcluster — see testcluster.h.
 */
#include "testcluster.h"
#include "testenv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

const char *tcluster_dir(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", testenv_tmpdir(), name);
    return buf;
}

/* The bash command line running one function of the library. */
static void command(char *cmd, size_t n, const char *fmt, va_list ap)
{
    char call[4096];
    vsnprintf(call, sizeof call, fmt, ap);
    const char *root = getenv("TXAGG_ROOT");
    snprintf(cmd, n, "bash -c '. \"%s/tests/lib/cluster.sh\" && %s'", root && *root ? root : ".", call);
}

int tcluster_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    command(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return testenv_sh("%s", cmd);
}

static int vout(char *out, size_t n, const char *fmt, va_list ap)
{
    char cmd[8192];
    command(cmd, sizeof cmd, fmt, ap);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    while (got && (out[got - 1] == '\n' || out[got - 1] == '\r')) out[--got] = '\0';
    int st = pclose(p);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

int tcluster_out(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vout(out, n, fmt, ap);
    va_end(ap);
    return rc;
}

int tcluster_int(const char *fmt, ...)
{
    char out[64];
    va_list ap;
    va_start(ap, fmt);
    int rc = vout(out, sizeof out, fmt, ap);
    va_end(ap);
    return rc == 0 && out[0] ? atoi(out) : -1;
}

int tcluster_start(const char *name, char *dir, size_t n, txagg_config *cfg)
{
    tcluster_dir(name, dir, n);
    if (tcluster_sh("cluster_start %s", dir) != 0) return -1;
    tcluster_config(cfg, dir);
    return 0;
}

void tcluster_stop(const char *dir)
{
    if (dir[0]) tcluster_sh("cluster_stop %s", dir);
}

/* "KILLED PROMOTED" of cluster_kill_primary into the ports; 0, or -1. */
static int kill_ports(int rc, const char *out, int *killed, int *promoted)
{
    int old, neu;
    if (rc != 0 || sscanf(out, "%d %d", &old, &neu) != 2) return -1;
    if (killed) *killed = old;
    if (promoted) *promoted = neu;
    return 0;
}

int tcluster_kill_primary(const char *dir, int slot, int *killed, int *promoted)
{
    char out[64];
    int rc = tcluster_out(out, sizeof out, "cluster_kill_primary %s %d", dir, slot);
    return kill_ports(rc, out, killed, promoted);
}

static void *kill_thread(void *arg)
{
    tcluster_killer *k = arg;
    char wait[32] = "";
    if (k->delay_ms > 0) snprintf(wait, sizeof wait, "sleep %d.%03d; ", k->delay_ms / 1000, k->delay_ms % 1000);
    k->rc = tcluster_out(k->out, sizeof k->out, "%scluster_kill_primary %s %d", wait, k->dir, k->slot);
    atomic_store(&k->done, 1);
    return NULL;
}

int tcluster_kill_start(tcluster_killer *k, const char *dir, int slot, int delay_ms)
{
    k->dir = dir;
    k->slot = slot;
    k->delay_ms = delay_ms > 0 ? delay_ms : 0;
    k->out[0] = '\0';
    k->rc = -1;
    atomic_init(&k->done, 0);
    return pthread_create(&k->th, NULL, kill_thread, k) == 0 ? 0 : -1;
}

int tcluster_kill_done(tcluster_killer *k)
{
    return atomic_load(&k->done);
}

int tcluster_kill_wait(tcluster_killer *k, int *killed, int *promoted)
{
    pthread_join(k->th, NULL);
    return kill_ports(k->rc, k->out, killed, promoted);
}

void tcluster_config(txagg_config *cfg, const char *dir)
{
    testenv_config(cfg);
    if (tcluster_out(cfg->redis_cluster, sizeof cfg->redis_cluster, "cluster_seeds %s", dir) != 0 ||
        !cfg->redis_cluster[0]) {
        fprintf(stderr, "testcluster: no seeds for the cluster in %s\n", dir);
        abort();
    }
}

int tcluster_stderr_to(const char *path)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0) abort();
    dup2(fd, 2);
    close(fd);
    return saved;
}

void tcluster_stderr_restore(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

int tcluster_log_count(const char *path, ...)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        va_list ap;
        va_start(ap, path);
        int all = 1;
        for (const char *needle; all && (needle = va_arg(ap, const char *));) all = strstr(line, needle) != NULL;
        va_end(ap);
        n += all;
    }
    fclose(f);
    return n;
}
