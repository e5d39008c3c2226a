/*
 * fileid — the identity of an input file, from its content, for the
 * checkpoint key import:checkpoint:{id} (a copied or renamed file is the same
 * file; an edited one is a new file).
 *
 * id = 64-bit FNV-1a over: the size (8 bytes, little-endian), the first
 * FILEID_SPAN bytes, and the last FILEID_SPAN bytes that follow them (none for
 * a file of at most FILEID_SPAN bytes), printed as 16 hex digits.  Standard
 * input cannot be sized up front: its first FILEID_SPAN bytes are buffered;
 * when it ends within them the same formula applies (so `importer - < f` and
 * `importer f` share a checkpoint), otherwise id = FNV-1a over "stdin" and the
 * buffered bytes.  Limits: see docs/ARCHITECTURE.md.
 */
#ifndef TXAGG_FILEID_H
#define TXAGG_FILEID_H

#include <stddef.h>
#include <stdint.h>

#define FILEID_SPAN ((size_t)1 << 20)
#define FILEID_HEX 17 /* 16 hex digits + NUL */

uint64_t fileid_fnv1a(uint64_t h, const void *p, size_t n);
#define FILEID_FNV_OFFSET UINT64_C(14695981039346656037)

/* The id of a seekable file of `size` bytes (pread, the offset is not moved).
 * 0, or -1 with err. */
int fileid_of_fd(int fd, uint64_t size, char id[FILEID_HEX], char *err, size_t errlen);

/* The id of a stream whose first len bytes are buf; complete: the stream
 * ended within them (len is then its size). */
void fileid_of_prefix(const void *buf, size_t len, int complete, char id[FILEID_HEX]);

#endif
