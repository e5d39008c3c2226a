/*
 * keys — every Redis key name of the system, here and nowhere else.
 *
 * Lua scripts never spell a key: they receive key names (or, where a script
 * must derive keys from data, the prefixes below) from C.  The schema is a
 * contract (docs/CONTRACTS.md "Redis keys"), which also says who writes and
 * reads each key.
 */
#ifndef TXAGG_KEYS_H
#define TXAGG_KEYS_H

#include <stddef.h>

/* Stream of accepted transactions and its consumer group. */
#define KEYS_STREAM "transactions"
#define KEYS_GROUP "aggregators"
/* Dead-letter stream: rejected rows and malformed entries.  Kept to about
 * the newest KEYS_REJECTED_MAXLEN entries (the aggregator trims it), so bad
 * input cannot grow Redis without bound; the counts live in the metrics. */
#define KEYS_REJECTED "transactions:rejected"
#define KEYS_REJECTED_MAXLEN 1000000

/* Days that have a hash in Redis (hot or re-created by late rows). */
#define KEYS_TRACKED_DAYS "system:tracked_days"
/* Greatest event timestamp applied (UTC ISO); never moves backwards. */
#define KEYS_VIRTUAL_CLOCK "system:virtual_clock"
/* Newest day ever archived to MongoDB ("YYYY-MM-DD"). */
#define KEYS_ARCHIVED_THROUGH "system:archived_through"
/* Bumped by every batch the aggregator applies that writes a daily hash: the
 * hot days' answers stay valid while it and the archive version are unchanged. */
#define KEYS_HOT_VERSION "system:hot_version"
/* Bumped by every freeze and every clean-up of an archive batch. */
#define KEYS_ARCHIVE_VERSION "system:archive_version"
/* Archive batches frozen but not yet cleaned up (a set of batch ids). */
#define KEYS_ARCHIVE_PENDING "system:archive:pending"
/* Sequence of archive batch ids. */
#define KEYS_ARCHIVE_SEQ "system:archive:seq"
/* The persistor lease (value: random token) and its fencing counter. */
#define KEYS_PERSISTOR_LEASE "system:persistor:lease"
#define KEYS_PERSISTOR_FENCE "system:persistor:fence"

/* The switch-over from the Python service (persistor migrate): a hash with
 * `planned` (UTC time the plan was made, once) and `hashes` (how many), and
 * the set of the Python service's agg: hashes not yet converted.  Only keys
 * in the plan are ever converted, so txagg's own hashes never are. */
#define KEYS_MIGRATION "system:migration"
#define KEYS_MIGRATION_HASHES "system:migration:hashes"

/* Prefixes of the derived keys below (for scripts that build them). */
#define KEYS_AGG_PREFIX "agg:"
#define KEYS_FROZEN_PREFIX "archive:frozen:"
#define KEYS_BATCH_PREFIX "archive:batch:"
#define KEYS_CHECKPOINT_PREFIX "import:checkpoint:"

/*
 * Partitions (REDIS_PARTITIONS = N).  The hot tier — the stream and its dead
 * letters, the daily hashes, the tracked days, the clock, the versions, the
 * archive batches, the import checkpoints — is split into N partitions; every
 * key of a partition carries the partition's tag, a hash tag, so each
 * hand-off that touches one partition's keys stays inside one Redis Cluster
 * slot.  With one partition on one Redis the tag is empty: the names are the
 * ones above.  Otherwise partition i's tag is "{p<i>:<k>}" with the smallest
 * k ≥ 0 whose slot lies in [i·16384/N, (i+1)·16384/N): the partitions spread
 * evenly over the slot space, so over the primaries of a cluster whose slots
 * were assigned in even ranges (the usual `redis-cli --cluster create`).
 * The few keys shared by all partitions (the persistor's lease and fence, the
 * record of N) carry KEYS_GLOBAL_TAG when tagged.
 */
#define KEYS_SLOTS 16384
#define KEYS_TAG_MAX 24
#define KEYS_NAME_MAX 64
#define KEYS_GLOBAL_TAG "{txagg}"
/* The number of partitions the data was written with (set at first start). */
#define KEYS_PARTITIONS "system:partitions"
/* A partition's own fence: the highest persistor fence that has worked on
 * it (archive scripts refuse a lower one). */
#define KEYS_ARCHIVE_FENCE "system:archive:fence"

typedef struct keys_part {
    int index; /* 0 … N-1 */
    int slot;  /* the hash slot of every key of the partition */
    char tag[KEYS_TAG_MAX];
    /* the partition's fixed names (base name + tag) */
    char stream[KEYS_NAME_MAX], rejected[KEYS_NAME_MAX], tracked[KEYS_NAME_MAX], clock[KEYS_NAME_MAX],
        hot_version[KEYS_NAME_MAX], archive_version[KEYS_NAME_MAX], archived_through[KEYS_NAME_MAX],
        archive_pending[KEYS_NAME_MAX], archive_seq[KEYS_NAME_MAX], archive_fence[KEYS_NAME_MAX];
} keys_part;

/* The hash slot of a key (Redis Cluster spec): CRC16/XMODEM mod 16384 of
 * the key, or of its hash tag — the bytes between the first '{' and the
 * first '}' after it, when there is at least one. */
int keys_slot(const char *key, size_t len);

/* Fill parts[0..n) for N = n partitions, tagged (several partitions or a
 * cluster) or not (one partition on one Redis: today's names).  0, or -1
 * when n is out of 1..1024 or not 1 while untagged. */
int keys_parts_init(keys_part *parts, int n, int tagged);

/* A global key's name: base + KEYS_GLOBAL_TAG when tagged. */
size_t keys_global(char *buf, size_t n, const char *base, int tagged);

/* Each builder writes a NUL-terminated name into buf and returns its length,
 * or 0 when it does not fit.  A NULL part means one untagged partition. */

/* agg:{YYYY-MM-DD}:{deposit|withdrawal}<tag> — hash, field = method, value = cents */
size_t keys_agg(char *buf, size_t n, const keys_part *p, const char *day, const char *type);
/* archive:frozen:{batch}:{day}:{type}<tag> — an agg hash renamed by a freeze */
size_t keys_frozen(char *buf, size_t n, const keys_part *p, const char *batch, const char *day, const char *type);
/* archive:batch:{batch}<tag> — hash describing one archive batch */
size_t keys_batch(char *buf, size_t n, const keys_part *p, const char *batch);
/* import:checkpoint:{file identity}<tag> — hash: rows committed, done flag */
size_t keys_checkpoint(char *buf, size_t n, const keys_part *p, const char *file_id);

#endif
