/*
 * fileid — content-based file identity; see fileid.h.
 *
 * Invariant: a complete content of n bytes gets the same id whether it is
 * read from a file (fileid_of_fd) or from a stream that ended within
 * FILEID_SPAN bytes (fileid_of_prefix with complete = 1).
 */
#include "fileid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FNV_PRIME UINT64_C(1099511628211)

uint64_t fileid_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t hash_size(uint64_t size)
{
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(size >> (8 * i));
    return fileid_fnv1a(FILEID_FNV_OFFSET, le, sizeof le);
}

static void to_hex(uint64_t h, char id[FILEID_HEX]) { snprintf(id, FILEID_HEX, "%016llx", (unsigned long long)h); }

/* Hash len bytes of fd at off into *h. */
static int hash_range(int fd, uint64_t off, uint64_t len, unsigned char *buf, size_t bufsz, uint64_t *h,
                      char *err, size_t errlen)
{
    while (len > 0) {
        size_t want = len < bufsz ? (size_t)len : bufsz;
        ssize_t k = pread(fd, buf, want, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            snprintf(err, errlen, "read: %s", k < 0 ? strerror(errno) : "file shrank while hashing");
            return -1;
        }
        *h = fileid_fnv1a(*h, buf, (size_t)k);
        off += (uint64_t)k;
        len -= (uint64_t)k;
    }
    return 0;
}

int fileid_of_fd(int fd, uint64_t size, char id[FILEID_HEX], char *err, size_t errlen)
{
    size_t bufsz = 64 * 1024;
    unsigned char *buf = malloc(bufsz);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t h = hash_size(size);
    uint64_t head = size < FILEID_SPAN ? size : FILEID_SPAN;
    uint64_t rest = size - head;
    uint64_t tail = rest < FILEID_SPAN ? rest : FILEID_SPAN;
    int rc = hash_range(fd, 0, head, buf, bufsz, &h, err, errlen);
    if (rc == 0) rc = hash_range(fd, size - tail, tail, buf, bufsz, &h, err, errlen);
    free(buf);
    if (rc == 0) to_hex(h, id);
    return rc;
}

void fileid_of_prefix(const void *buf, size_t len, int complete, char id[FILEID_HEX])
{
    uint64_t h;
    if (complete) {
        /* The whole content: the file formula (len <= FILEID_SPAN, no tail). */
        h = fileid_fnv1a(hash_size(len), buf, len);
    } else {
        h = fileid_fnv1a(fileid_fnv1a(FILEID_FNV_OFFSET, "stdin", 5), buf, len);
    }
    to_hex(h, id);
}
