/*
 * clean — the end of an archive batch, two scripts:
 *
 *   mark_written.lua  state=written once every day is confirmed in MongoDB,
 *                     so a recovery after a crash goes straight to clean;
 *   clean.lua         DEL the frozen keys and the record, SREM pending,
 *                     archived_through = max(old, newest day), INCR version.
 *
 * Invariant: nothing is deleted from Redis before MongoDB confirmed the whole
 * batch — clean.lua refuses a batch whose state is not `written`, and only
 * deletes keys named archive:frozen:{this id}:{one of its days}:….  Both
 * scripts check the lease first; clean of a batch no longer pending is a
 * harmless no-op, so the step can be repeated.
 */
#include "clean.h"
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>

extern const char lua_persistor_mark_written[];
extern const char lua_persistor_clean[];
static rscript mark_script = RSCRIPT_INIT("mark_written", lua_persistor_mark_written);
static rscript clean_script = RSCRIPT_INIT("clean", lua_persistor_clean);

#define KEY_MAX 128

static int judge(redisReply *r, const char *script, const char *id)
{
    if (r->type == REDIS_REPLY_INTEGER) return r->integer == 1 ? PST_OK : PST_NONE;
    log_error("archive script refused", "script=%s id=%s err=%s", script, id,
              r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    return r->type == REDIS_REPLY_ERROR && !rreply_is_error(r, "ERR") ? PST_EDATA : PST_EREDIS;
}

int clean_mark_written(persistor *p, const char *id)
{
    char bkey[KEY_MAX];
    if (!keys_batch(bkey, sizeof bkey, persistor_part(p), id)) return PST_EDATA;
    const char *argv[] = {NULL, persistor_part(p)->archive_pending, bkey, NULL, id};
    int rv;
    redisReply *r = lease_script(p, &mark_script, 3, 5, argv, &rv);
    if (!r) return rv;
    rv = judge(r, "mark_written", id);
    freeReplyObject(r);
    return rv == PST_NONE ? PST_EDATA : rv;
}

int clean_batch(persistor *p, const archive_batch *b)
{
    int nkeys = 5 + 2 * b->ndays;
    int argc = nkeys + 3;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    char(*keys)[KEY_MAX] = calloc((size_t)(2 * b->ndays + 1), sizeof *keys);
    if (!argv || !keys) {
        free(argv);
        free(keys);
        return PST_EREDIS;
    }
    int k = 0;
    const keys_part *part = persistor_part(p);
    argv[k++] = NULL; /* lease */
    argv[k++] = part->archive_pending;
    keys_batch(keys[2 * b->ndays], KEY_MAX, part, b->id);
    argv[k++] = keys[2 * b->ndays];
    argv[k++] = part->archived_through;
    argv[k++] = part->archive_version;
    for (int i = 0; i < b->ndays; i++) {
        for (int t = 0; t < TXN_TYPES; t++) {
            keys_frozen(keys[2 * i + t], KEY_MAX, part, b->id, b->days[i], txn_type_name(t));
            argv[k++] = keys[2 * i + t];
        }
    }
    argv[k++] = NULL; /* token */
    argv[k++] = b->id;
    argv[k++] = KEYS_FROZEN_PREFIX;
    int rv;
    redisReply *r = lease_script(p, &clean_script, nkeys, argc, argv, &rv);
    free(argv);
    free(keys);
    if (!r) return rv;
    rv = judge(r, "clean", b->id);
    freeReplyObject(r);
    return rv;
}
