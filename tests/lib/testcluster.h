/*
 * testcluster — real Redis topologies for C tests, through the one shell
 * implementation in tests/lib/cluster.sh (each call is one `bash -c` that
 * sources it; the topology's state lives in its directory).  A test starts
 * its own cluster in its group setup and stops it in the teardown.
 */
#ifndef TXAGG_TESTCLUSTER_H
#define TXAGG_TESTCLUSTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "config.h"

/* "<scratch dir>/<name>": where a topology of this test lives. */
const char *tcluster_dir(const char *name, char *buf, size_t n);

/* A group setup's cluster: cluster_start in "<scratch dir>/<name>" (its
 * path in dir) and cfg = the harness's configuration with REDIS_CLUSTER = its
 * seeds.  0, or -1 when it did not start.  tcluster_stop(dir): cluster_stop
 * when dir was set (for the group teardown). */
int tcluster_start(const char *name, char *dir, size_t n, txagg_config *cfg);
void tcluster_stop(const char *dir);

/* Run "FUNCTION ARGS…" of tests/lib/cluster.sh; its exit status. */
int tcluster_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, its stdout (trailing newline removed) in out; exit status. */
int tcluster_out(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* tcluster_out parsed as an integer (-1 when the function failed). */
int tcluster_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Failover: cluster_kill_primary of the primary serving slot in the cluster
 * in dir (kill -9, then wait until its replica serves the slot).  0 with the
 * killed and the promoted node's ports (either may be NULL), or -1. */
int tcluster_kill_primary(const char *dir, int slot, int *killed, int *promoted);

/* The same on a thread while the test works on (keeps writing, reading):
 * tcluster_kill_start() starts it after delay_ms (0, -1 when no thread);
 * tcluster_kill_done() is 1 once the kill and the failover are over
 * (whatever their outcome); tcluster_kill_wait() joins the thread and
 * returns what tcluster_kill_primary() did, out holding its output
 * ("KILLED PROMOTED").  dir must outlive the thread. */
typedef struct tcluster_killer {
    const char *dir;
    int slot, delay_ms;
    pthread_t th;
    char out[64];
    int rc;
    atomic_int done;
} tcluster_killer;
int tcluster_kill_start(tcluster_killer *k, const char *dir, int slot, int delay_ms);
int tcluster_kill_done(tcluster_killer *k);
int tcluster_kill_wait(tcluster_killer *k, int *killed, int *promoted);

/* The harness's configuration with REDIS_CLUSTER = the seeds of the cluster in dir. */
void tcluster_config(txagg_config *cfg, const char *dir);

/* Send this process's stderr (the log) to path until restored; returns the
 * saved descriptor.  tcluster_log_count: lines of path containing every one
 * of the NULL-terminated needles. */
int tcluster_stderr_to(const char *path);
void tcluster_stderr_restore(int saved);
int tcluster_log_count(const char *path, ...) __attribute__((sentinel));

#endif
