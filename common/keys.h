/*
 * keys — every Redis key name of the system, here and nowhere else.
 *
 * Lua scripts never spell a key: they receive key names (or, where a script
 * must derive keys from data, the prefixes below) from C.  The schema is the
 * contract of DESIGN.md "Redis (the hot tier)"; docs/ARCHITECTURE.md says who
 * writes and reads each key.
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
/* Bumped by every freeze and every clean-up of an archive batch. */
#define KEYS_ARCHIVE_VERSION "system:archive_version"
/* Archive batches frozen but not yet cleaned up (a set of batch ids). */
#define KEYS_ARCHIVE_PENDING "system:archive:pending"
/* Sequence of archive batch ids. */
#define KEYS_ARCHIVE_SEQ "system:archive:seq"
/* The persistor lease (value: random token) and its fencing counter. */
#define KEYS_PERSISTOR_LEASE "system:persistor:lease"
#define KEYS_PERSISTOR_FENCE "system:persistor:fence"

/* Prefixes of the derived keys below (for scripts that build them). */
#define KEYS_AGG_PREFIX "agg:"
#define KEYS_FROZEN_PREFIX "archive:frozen:"
#define KEYS_BATCH_PREFIX "archive:batch:"
#define KEYS_CHECKPOINT_PREFIX "import:checkpoint:"

/* Each builder writes a NUL-terminated name into buf and returns its length,
 * or 0 when it does not fit. */

/* agg:{YYYY-MM-DD}:{deposit|withdrawal} — hash, field = method, value = cents */
size_t keys_agg(char *buf, size_t n, const char *day, const char *type);
/* archive:frozen:{batch}:{day}:{type} — an agg hash renamed by a freeze */
size_t keys_frozen(char *buf, size_t n, const char *batch, const char *day, const char *type);
/* archive:batch:{batch} — hash describing one archive batch */
size_t keys_batch(char *buf, size_t n, const char *batch);
/* import:checkpoint:{file identity} — hash: rows committed, done flag */
size_t keys_checkpoint(char *buf, size_t n, const char *file_id);

#endif
