/*
 * tier — partitions, their keys and connections; see tier.h.
 */
#include "tier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tier_init(tier *t, const txagg_config *cfg, const char *client_name, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->n = cfg->redis_partitions > 0 ? cfg->redis_partitions : 1;
    t->tagged = t->n > 1 || cfg->redis_cluster[0] != '\0';
    t->parts = calloc((size_t)t->n, sizeof *t->parts);
    t->cl = rcluster_new(cfg, client_name);
    if (!t->parts || !t->cl || keys_parts_init(t->parts, t->n, t->tagged) != 0) {
        snprintf(err, errlen, "cannot set up %d Redis partitions (out of memory)", t->n);
        tier_free(t);
        return -1;
    }
    return 0;
}

void tier_free(tier *t)
{
    if (t->cl) rcluster_free(t->cl);
    free(t->parts);
    memset(t, 0, sizeof *t);
}

rconn *tier_conn(tier *t, int p) { return rcluster_conn(t->cl, t->parts[p].slot); }

/* GET (or, with set_to, SET … NX GET) of a global key: 1 with its value in
 * buf, 0 when absent, -1 when Redis did not answer (err set). */
static int record(tier *t, const char *key, const char *set_to, char *buf, size_t n, char *err, size_t errlen)
{
    int slot = keys_slot(key, strlen(key));
    redisReply *r = set_to ? rcluster_cmd(t->cl, slot, "SET %s %s NX GET", key, set_to)
                           : rcluster_cmd(t->cl, slot, "GET %s", key);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        snprintf(err, errlen, "cannot read %s: %s", key,
                 r && r->type == REDIS_REPLY_ERROR ? r->str : rcluster_error(t->cl));
        if (r) freeReplyObject(r);
        return -1;
    }
    int found = r->type == REDIS_REPLY_STRING;
    if (found) snprintf(buf, n, "%s", r->str);
    freeReplyObject(r);
    return found;
}

static int refuse(const tier *t, const char *recorded, const char *where, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "REDIS_PARTITIONS=%d%s, but the data in Redis was written with %s partition(s) (%s): start every "
             "binary with REDIS_PARTITIONS=%s%s",
             t->n, t->tagged && t->n == 1 ? " in cluster mode" : "", recorded, where, recorded,
             !strcmp(recorded, "1") && t->tagged ? " on one Redis without REDIS_CLUSTER" : "");
    return TIER_ELAYOUT;
}

int tier_check_layout(tier *t, char *err, size_t errlen)
{
    char classic[KEYS_NAME_MAX], tagged[KEYS_NAME_MAX], mine[16], seen[64];
    keys_global(classic, sizeof classic, KEYS_PARTITIONS, 0);
    keys_global(tagged, sizeof tagged, KEYS_PARTITIONS, 1);
    snprintf(mine, sizeof mine, "%d", t->n);
    /* the record of the other layout: its data is not under our names */
    int f = record(t, t->tagged ? classic : tagged, NULL, seen, sizeof seen, err, errlen);
    if (f < 0) return TIER_EREDIS;
    if (f) return refuse(t, seen, t->tagged ? classic : tagged, err, errlen);
    if (t->tagged) { /* untagged data from before the record existed */
        redisReply *r = rcluster_cmd(t->cl, keys_slot(KEYS_STREAM, strlen(KEYS_STREAM)), "EXISTS %s", KEYS_STREAM);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            snprintf(err, errlen, "cannot check for %s: %s", KEYS_STREAM, rcluster_error(t->cl));
            if (r) freeReplyObject(r);
            return TIER_EREDIS;
        }
        int old = r->integer > 0;
        freeReplyObject(r);
        if (old) return refuse(t, "1", "a stream " KEYS_STREAM " without tags", err, errlen);
    }
    const char *key = t->tagged ? tagged : classic;
    f = record(t, key, mine, seen, sizeof seen, err, errlen);
    if (f < 0) return TIER_EREDIS;
    if (f && strcmp(seen, mine) != 0) return refuse(t, seen, key, err, errlen);
    return TIER_OK;
}
