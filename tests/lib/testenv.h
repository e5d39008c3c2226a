/*
 * testenv — what C tests need from the harness (tests/run.sh): a
 * configuration pointing at the real redis-server and MongoDB-wire server the
 * harness started, connections to them, a scratch directory and the paths of
 * the built binaries.  No mocks: every integration test talks to real servers.
 */
#ifndef TXAGG_TESTENV_H
#define TXAGG_TESTENV_H

#include <mongoc/mongoc.h>

#include "config.h"
#include "redis.h"

/* The configuration every binary would load from the harness's environment
 * (REDIS_PORT, MONGODB_URI, MONGODB_DATABASE… are exported by run.sh). */
void testenv_config(txagg_config *cfg);

/* 1 when the harness started servers (integration tests skip otherwise). */
int testenv_have_servers(void);

/* A connected rconn (asserts), and FLUSHALL. */
rconn *testenv_redis(void);
void testenv_flush_redis(void);

/* A client on the test MongoDB (error API 2) and the test database dropped. */
mongoc_client_t *testenv_mongo(void);
void testenv_drop_mongo_db(void);

/* Scratch directory of this run, and "<dir>/<name>" of a built binary. */
const char *testenv_tmpdir(void);
const char *testenv_bin(const char *name, char *buf, size_t n);

/* Run a shell command, return its exit status (or -1). */
int testenv_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
