/*
 * keys — builders for the derived key names, partition tags and key slots;
 * see keys.h.
 */
#include "keys.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static size_t fit(int len, size_t n)
{
    return len > 0 && (size_t)len < n ? (size_t)len : 0;
}

static const char *tag_of(const keys_part *p) { return p ? p->tag : ""; }

/* CRC16/XMODEM (polynomial 0x1021, initial 0, no reflection), bit by bit:
 * keys are short and only partition tags are hashed, once per process. */
static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    while (n--) {
        crc ^= (uint16_t)(*p++ << 8);
        for (int i = 0; i < 8; i++) crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int keys_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - from);
        if (close && close != open + 1) { /* a non-empty tag */
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return crc16((const unsigned char *)key, len) & (KEYS_SLOTS - 1);
}

static void name(char *out, const char *base, const char *tag)
{
    snprintf(out, KEYS_NAME_MAX, "%s%s", base, tag);
}

int keys_parts_init(keys_part *parts, int n, int tagged)
{
    if (n < 1 || n > 1024 || (!tagged && n != 1)) return -1;
    for (int i = 0; i < n; i++) {
        keys_part *p = &parts[i];
        memset(p, 0, sizeof *p);
        p->index = i;
        if (tagged) {
            int lo = (int)((int64_t)i * KEYS_SLOTS / n), hi = (int)((int64_t)(i + 1) * KEYS_SLOTS / n);
            for (int k = 0;; k++) { /* ~n tries on average: the range holds 1/n of the slots */
                int len = snprintf(p->tag, sizeof p->tag, "{p%d:%d}", i, k);
                int s = keys_slot(p->tag, (size_t)len);
                if (s >= lo && s < hi) {
                    p->slot = s;
                    break;
                }
            }
        } else {
            p->slot = keys_slot(KEYS_STREAM, strlen(KEYS_STREAM)); /* meaningless on one Redis; for symmetry */
        }
        name(p->stream, KEYS_STREAM, p->tag);
        name(p->rejected, KEYS_REJECTED, p->tag);
        name(p->tracked, KEYS_TRACKED_DAYS, p->tag);
        name(p->clock, KEYS_VIRTUAL_CLOCK, p->tag);
        name(p->hot_version, KEYS_HOT_VERSION, p->tag);
        name(p->archive_version, KEYS_ARCHIVE_VERSION, p->tag);
        name(p->archived_through, KEYS_ARCHIVED_THROUGH, p->tag);
        name(p->archive_pending, KEYS_ARCHIVE_PENDING, p->tag);
        name(p->archive_seq, KEYS_ARCHIVE_SEQ, p->tag);
        name(p->archive_fence, KEYS_ARCHIVE_FENCE, p->tag);
    }
    return 0;
}

size_t keys_global(char *buf, size_t n, const char *base, int tagged)
{
    return fit(snprintf(buf, n, "%s%s", base, tagged ? KEYS_GLOBAL_TAG : ""), n);
}

size_t keys_agg(char *buf, size_t n, const keys_part *p, const char *day, const char *type)
{
    return fit(snprintf(buf, n, KEYS_AGG_PREFIX "%s:%s%s", day, type, tag_of(p)), n);
}

size_t keys_frozen(char *buf, size_t n, const keys_part *p, const char *batch, const char *day, const char *type)
{
    return fit(snprintf(buf, n, KEYS_FROZEN_PREFIX "%s:%s:%s%s", batch, day, type, tag_of(p)), n);
}

size_t keys_batch(char *buf, size_t n, const keys_part *p, const char *batch)
{
    return fit(snprintf(buf, n, KEYS_BATCH_PREFIX "%s%s", batch, tag_of(p)), n);
}

size_t keys_checkpoint(char *buf, size_t n, const keys_part *p, const char *file_id)
{
    return fit(snprintf(buf, n, KEYS_CHECKPOINT_PREFIX "%s%s", file_id, tag_of(p)), n);
}
