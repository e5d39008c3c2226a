/*
 * csv_reader — CSV records from a file descriptor in constant memory, each
 * with its first physical line number and its raw text.
 *
 * libcsv does the quoting; we read fixed chunks, split them at '\n' with
 * memchr and feed libcsv one physical line (or the part of it a chunk holds)
 * at a time, so at the end of a record we know the lines it came from.  See
 * csv_reader.c for the rules (BOM, CRLF, blank lines, trimming, the record
 * size cap).
 */
#ifndef TXAGG_CSV_READER_H
#define TXAGG_CSV_READER_H

#include <stddef.h>
#include <stdint.h>

/* Default bytes per read(2). */
#define CSV_READER_CHUNK (256 * 1024)
/* A record (all its physical lines) longer than this is cut off: it is
 * returned with too_long set and parsing resumes at the next line. */
#define CSV_RECORD_MAX (64 * 1024)

typedef struct csv_record {
    int nfields;             /* fields in the record */
    const char *const *field; /* field[i]: trimmed of spaces and tabs, NUL-terminated */
    const size_t *len;       /* len[i]: length of field[i] (a field may hold a NUL) */
    int64_t line;            /* physical line (1-based) where the record starts */
    const char *raw;         /* the record's text as read, without its final line end */
    size_t raw_len;
    int too_long;            /* longer than CSV_RECORD_MAX: no fields, raw cut */
} csv_record;

typedef struct csv_reader csv_reader;

/*
 * Read from fd (not closed by the reader).  prefix[0..prefix_len) is input
 * already read from fd (e.g. to compute the file identity of stdin); it is
 * consumed first.  fd = -1 reads the prefix only.  chunk = 0 means
 * CSV_READER_CHUNK (tests use tiny chunks to cross every boundary; the prefix
 * is handed to the parser in pieces of the same size).  NULL when out of
 * memory.  The prefix must outlive the reader.
 */
csv_reader *csv_reader_new(int fd, const void *prefix, size_t prefix_len, size_t chunk);
void csv_reader_free(csv_reader *r);

/*
 * The next record: 1 (rec filled, valid until the next call), 0 at the end of
 * the input, -1 on a read error (csv_reader_error says which; an interrupted
 * read is an error only when a stop was requested, see signals.h).
 */
int csv_reader_next(csv_reader *r, csv_record *rec);

const char *csv_reader_error(const csv_reader *r);
/* Bytes of input consumed so far (for the progress percentage). */
uint64_t csv_reader_offset(const csv_reader *r);

#endif
