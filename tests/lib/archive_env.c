/*
 * archive_env — see archive_env.h.  Used only by the persistor's cmocka
 * tests (it asserts with cmocka).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_env.h"
#include "../../persistor/lease.h"
#include "../../persistor/persistor.h"
#include "signals.h"
#include "testenv.h"

static void export_env(void)
{
    char v[16];
    snprintf(v, sizeof v, "%d", ARCHIVE_ENV_RETENTION);
    setenv("RETENTION_DAYS", v, 1);
    snprintf(v, sizeof v, "%d", ARCHIVE_ENV_LEASE_MS);
    setenv("PERSIST_LEASE_MS", v, 1);
}

void archive_env_config(txagg_config *cfg)
{
    export_env();
    testenv_config(cfg);
}

void archive_env_reset(const char *ledger)
{
    testenv_flush_redis();
    testenv_drop_mongo_db();
    if (ledger) unlink(ledger);
}

struct persistor *archive_env_holder(void)
{
    txagg_config cfg;
    archive_env_config(&cfg);
    char err[256];
    persistor *p = persistor_open(&cfg, err, sizeof err);
    if (!p) fail_msg("persistor_open: %s", err);
    int64_t deadline = sig_now_ms() + 10000;
    int rv;
    while ((rv = lease_acquire(p)) == PST_NONE && sig_now_ms() < deadline) sig_sleep_ms(20);
    assert_int_equal(rv, PST_OK);
    assert_int_equal(persistor_ensure_indexes(p), PST_OK);
    return p;
}

static const char *probe(char *buf, size_t n)
{
    const char *d = getenv("TXAGG_TESTBIN");
    snprintf(buf, n, "%s/tools/archive_probe", d && *d ? d : "build/release");
    return buf;
}

int archive_env_seed(const char *ledger, int seed, const char *first_day, int ndays, long rows)
{
    export_env();
    char p[4096];
    return testenv_sh("%s seed %s %d %s %d %ld", probe(p, sizeof p), ledger, seed, first_day, ndays, rows);
}

int archive_env_exact(const char *ledger)
{
    export_env();
    char p[4096];
    return testenv_sh("%s compare %s >&2", probe(p, sizeof p), ledger) == 0;
}

void archive_env_state(archive_state *st)
{
    export_env();
    memset(st, 0, sizeof *st);
    char p[4096], cmd[4200], line[1024];
    snprintf(cmd, sizeof cmd, "%s state", probe(p, sizeof p));
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char *got = fgets(line, sizeof line, f);
    int rc = pclose(f);
    assert_non_null(got);
    assert_int_equal(rc, 0);
    int n = sscanf(line,
                   "pending=%ld frozen_keys=%ld batch_records=%ld tracked=%ld eligible=%ld archived_through=%15s "
                   "newest_cold=%15s docs=%ld max_batches=%ld version=%ld",
                   &st->pending, &st->frozen_keys, &st->batch_records, &st->tracked, &st->eligible,
                   st->archived_through, st->newest_cold, &st->docs, &st->max_batches, &st->version);
    if (n != 10) fail_msg("unexpected probe state line: %s", line);
}
