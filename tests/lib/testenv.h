/*
 * testenv — what C tests need from the harness (tests/run.sh): a
 * configuration pointing at the real redis-server and MongoDB-wire server the
 * harness started, connections to them, a scratch directory and the paths of
 * the built binaries.  No mocks: every integration test talks to real servers.
 */
#ifndef TXAGG_TESTENV_H
#define TXAGG_TESTENV_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <mongoc/mongoc.h>

#include "config.h"
#include "redis.h"

/* The configuration every binary would load from the harness's environment
 * (REDIS_PORT, MONGODB_URI, MONGODB_DATABASE… are exported by run.sh). */
void testenv_config(txagg_config *cfg);

/* 1 when the harness started servers (integration tests skip otherwise). */
int testenv_have_servers(void);

/*
 * An integration test's main: runs the cmocka group TESTS (with the group
 * fixtures SETUP and TEARDOWN, or NULL) when the harness started servers,
 * else nothing (0); then mongo_global_cleanup, so the leak check at exit
 * sees none of the driver's memory.  Returns the group's result.
 */
#define testenv_run(tests, setup, teardown)                                                                 \
    testenv_run_group(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)
int testenv_run_group(const char *name, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
                      CMFixtureFunction teardown);

/* A connected rconn (asserts), and FLUSHALL. */
rconn *testenv_redis(void);
void testenv_flush_redis(void);

/* A command on rc (printf-style, as redisCommand) that must succeed: the
 * test fails naming the error when there is no reply or an error reply.
 * testenv_cmd returns the reply (freeReplyObject it); testenv_cmd_ok frees it. */
redisReply *testenv_cmd(rconn *rc, const char *fmt, ...);
void testenv_cmd_ok(rconn *rc, const char *fmt, ...);

/* A client on the test MongoDB (error API 2) and the test database dropped. */
mongoc_client_t *testenv_mongo(void);
void testenv_drop_mongo_db(void);

/* Both stores for a test that reads and writes them directly: a connected
 * rconn (testenv_redis), a MongoDB client (testenv_mongo) and the collection
 * cfg names; testenv_close_stores gives all three back. */
void testenv_open_stores(const txagg_config *cfg, rconn **rc, mongoc_client_t **mc, mongoc_collection_t **coll);
void testenv_close_stores(rconn *rc, mongoc_client_t *mc, mongoc_collection_t *coll);

/* Scratch directory of this run, and "<dir>/<name>" of a built binary. */
const char *testenv_tmpdir(void);
const char *testenv_bin(const char *name, char *buf, size_t n);

/* Run a shell command, return its exit status (or -1). */
int testenv_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
