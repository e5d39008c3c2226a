/*
 * keys — builders for the derived key names; see keys.h.
 */
#include "keys.h"

#include <stdio.h>

static size_t fit(int len, size_t n)
{
    return len > 0 && (size_t)len < n ? (size_t)len : 0;
}

size_t keys_agg(char *buf, size_t n, const char *day, const char *type)
{
    return fit(snprintf(buf, n, KEYS_AGG_PREFIX "%s:%s", day, type), n);
}

size_t keys_frozen(char *buf, size_t n, const char *batch, const char *day, const char *type)
{
    return fit(snprintf(buf, n, KEYS_FROZEN_PREFIX "%s:%s:%s", batch, day, type), n);
}

size_t keys_batch(char *buf, size_t n, const char *batch)
{
    return fit(snprintf(buf, n, KEYS_BATCH_PREFIX "%s", batch), n);
}

size_t keys_checkpoint(char *buf, size_t n, const char *file_id)
{
    return fit(snprintf(buf, n, KEYS_CHECKPOINT_PREFIX "%s", file_id), n);
}
