/*
 * testenv — see testenv.h.
 */
#include "testenv.h"
#include "log.h"
#include "mongo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

void testenv_config(txagg_config *cfg)
{
    char err[512];
    if (config_load(cfg, CFG_ALL, err, sizeof err) != 0) {
        fprintf(stderr, "testenv: bad test configuration: %s\n", err);
        abort();
    }
    log_init("test", cfg->log_level);
}

int testenv_have_servers(void)
{
    const char *p = getenv("TXAGG_TEST_SERVERS");
    return p && !strcmp(p, "1");
}

int testenv_run_group(const char *name, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
                      CMFixtureFunction teardown)
{
    if (!testenv_have_servers()) return 0;
    int rc = _cmocka_run_group_tests(name, tests, n, setup, teardown);
    mongo_global_cleanup();
    return rc;
}

rconn *testenv_redis(void)
{
    txagg_config cfg;
    testenv_config(&cfg);
    rconn *rc = rconn_new(&cfg, "test");
    if (!rc || rconn_ensure(rc) != 0) {
        fprintf(stderr, "testenv: cannot reach redis on port %d\n", cfg.redis_port);
        abort();
    }
    return rc;
}

void testenv_flush_redis(void)
{
    rconn *rc = testenv_redis();
    redisReply *r = rconn_cmd(rc, "FLUSHALL");
    if (r) freeReplyObject(r);
    rconn_free(rc);
}

mongoc_client_t *testenv_mongo(void)
{
    txagg_config cfg;
    testenv_config(&cfg);
    mongo_global_init();
    char err[512];
    mongoc_client_t *c = mongo_client_new(&cfg, "test", err, sizeof err);
    if (!c) {
        fprintf(stderr, "testenv: %s\n", err);
        abort();
    }
    return c;
}

void testenv_drop_mongo_db(void)
{
    txagg_config cfg;
    testenv_config(&cfg);
    mongoc_client_t *c = testenv_mongo();
    mongoc_database_t *db = mongoc_client_get_database(c, cfg.mongodb_database);
    bson_error_t e;
    mongoc_database_drop(db, &e); /* "not found" is fine */
    mongoc_database_destroy(db);
    mongoc_client_destroy(c);
}

void testenv_open_stores(const txagg_config *cfg, rconn **rc, mongoc_client_t **mc, mongoc_collection_t **coll)
{
    *rc = testenv_redis();
    *mc = testenv_mongo();
    *coll = mongoc_client_get_collection(*mc, cfg->mongodb_database, cfg->mongodb_collection);
}

void testenv_close_stores(rconn *rc, mongoc_client_t *mc, mongoc_collection_t *coll)
{
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(mc);
    rconn_free(rc);
}

static redisReply *vcmd(rconn *rc, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(rconn_ctx(rc), fmt, ap);
    if (!r) fail_msg("redis: %s", rconn_ctx(rc)->errstr);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("redis: %s", r->str);
    return r;
}

redisReply *testenv_cmd(rconn *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(rc, fmt, ap);
    va_end(ap);
    return r;
}

void testenv_cmd_ok(rconn *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    freeReplyObject(vcmd(rc, fmt, ap));
    va_end(ap);
}

const char *testenv_tmpdir(void)
{
    const char *d = getenv("TXAGG_TEST_TMP");
    return d && *d ? d : "/tmp";
}

const char *testenv_bin(const char *name, char *buf, size_t n)
{
    const char *d = getenv("TXAGG_BIN");
    snprintf(buf, n, "%s/%s", d && *d ? d : "bin", name);
    return buf;
}

int testenv_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}
