/*
 * csv_reader — CSV records with line numbers and raw text; see csv_reader.h.
 *
 * The input is read in fixed chunks and cut at every '\n' (memchr).  Each
 * piece — a whole physical line, or the part of one that a chunk holds — is
 * appended to the raw text of the record in progress and fed to libcsv in
 * non-strict mode, where only '\n' ends a record (csv_set_term_func) and ' ',
 * '\t' and '\r' are blanks (csv_set_space_func: libcsv trims them around
 * unquoted fields and after a closing quote, which is what makes CRLF work).
 * Because a record can only end at a '\n', at most one record ends per piece,
 * and the record's first line and raw text are the lines fed since the last
 * record ended.
 *
 * Rules and invariants:
 *   - a UTF-8 BOM at the very start of the input is dropped;
 *   - a line of blanks only, while no record is open, is skipped (never fed:
 *     libcsv would skip it too); inside an open quoted field it is data;
 *   - every field is then trimmed of spaces and tabs, quoted ones too;
 *   - memory is bounded: a record whose lines exceed CSV_RECORD_MAX bytes is
 *     returned at once with too_long set, the parser is reset and the rest of
 *     that physical line is skipped — so an unclosed quote costs one record
 *     of at most CSV_RECORD_MAX, never the rest of a multi-GB file in memory;
 *   - nothing is allocated per record once the buffers have grown to the
 *     largest record seen (at most CSV_RECORD_MAX).
 */
#include "csv_reader.h"
#include "dynbuf.h"
#include "signals.h"

#include <csv.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

struct csv_reader {
    int fd;
    const unsigned char *prefix;
    size_t prefix_len, prefix_pos;
    size_t chunk;
    unsigned char *buf; /* read(2) target, chunk bytes */

    const unsigned char *piece; /* current input piece and position in it */
    size_t piece_len, piece_pos;
    uint64_t offset; /* bytes consumed */
    int at_eof;      /* the input is exhausted (and the parser finished) */

    int bom_done;     /* the BOM check at the start is over */
    size_t bom_match; /* BOM bytes matched so far */

    struct csv_parser p;
    int parser_ready;

    int64_t line;     /* physical line being read, 1-based */
    int record_open;  /* a non-blank line was fed since the last record ended */
    int record_done;  /* libcsv ended the record (end-of-record callback) */
    int delivered;    /* the last record was handed out: reset on next call */
    int discarding;   /* skipping the rest of a line after a too-long record */
    int too_long;
    int64_t rec_line;
    size_t rec_bytes; /* bytes of the record's lines so far */

    char *raw;
    size_t raw_len, raw_cap;

    char *arena; /* field bytes, each NUL-terminated */
    size_t arena_len, arena_cap;
    size_t *foff;
    size_t *flen;
    const char **fptr;
    int nfields;
    size_t fcap;
    int oom;

    char err[256];
};

static int is_blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\r'; }
static int is_term(unsigned char c) { return c == '\n'; }

/* Caps, at twice what one record can need (its bytes are at most
 * CSV_RECORD_MAX; its fields hold those bytes plus a NUL each, and there are
 * at most CSV_RECORD_MAX + 1 of them): a bug, not a big input, would hit
 * them. */
#define RAW_MAX (2 * (size_t)CSV_RECORD_MAX)
#define ARENA_MAX (4 * (size_t)CSV_RECORD_MAX)
#define FIELDS_MAX (2 * (size_t)CSV_RECORD_MAX + 2)

/* libcsv field callback: trim, copy into the arena. */
static void on_field(void *s, size_t len, void *data)
{
    csv_reader *r = data;
    const char *f = s ? s : "";
    if (!s) len = 0;
    while (len && (f[0] == ' ' || f[0] == '\t')) f++, len--;
    while (len && (f[len - 1] == ' ' || f[len - 1] == '\t')) len--;
    if ((size_t)r->nfields == r->fcap) { /* three parallel arrays, one capacity: the smallest */
        size_t n = r->fcap + 1, co = r->fcap, cl = r->fcap, cp = r->fcap;
        if (dynbuf_reserve_array(&r->foff, &co, n, sizeof *r->foff, FIELDS_MAX * sizeof *r->foff) ||
            dynbuf_reserve_array(&r->flen, &cl, n, sizeof *r->flen, FIELDS_MAX * sizeof *r->flen) ||
            dynbuf_reserve_array(&r->fptr, &cp, n, sizeof *r->fptr, FIELDS_MAX * sizeof *r->fptr)) {
            r->oom = 1;
            return;
        }
        r->fcap = co < cl ? (co < cp ? co : cp) : (cl < cp ? cl : cp);
    }
    if (dynbuf_reserve_array(&r->arena, &r->arena_cap, r->arena_len + len + 1, 1, ARENA_MAX)) {
        r->oom = 1;
        return;
    }
    memcpy(r->arena + r->arena_len, f, len);
    r->arena[r->arena_len + len] = '\0';
    r->foff[r->nfields] = r->arena_len;
    r->flen[r->nfields] = len;
    r->nfields++;
    r->arena_len += len + 1;
}

/* libcsv end-of-record callback. */
static void on_record(int c, void *data)
{
    (void)c;
    ((csv_reader *)data)->record_done = 1;
}

static int parser_init(csv_reader *r)
{
    if (csv_init(&r->p, 0) != 0) return -1;
    csv_set_space_func(&r->p, is_blank);
    csv_set_term_func(&r->p, is_term);
    csv_set_blk_size(&r->p, 4096);
    r->parser_ready = 1;
    return 0;
}

csv_reader *csv_reader_new(int fd, const void *prefix, size_t prefix_len, size_t chunk)
{
    csv_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = fd;
    r->prefix = prefix;
    r->prefix_len = prefix ? prefix_len : 0;
    r->chunk = chunk ? chunk : CSV_READER_CHUNK;
    r->line = 1;
    if (fd >= 0 && !(r->buf = malloc(r->chunk))) {
        free(r);
        return NULL;
    }
    if (parser_init(r)) {
        free(r->buf);
        free(r);
        return NULL;
    }
    return r;
}

void csv_reader_free(csv_reader *r)
{
    if (!r) return;
    if (r->parser_ready) csv_free(&r->p);
    free(r->buf);
    free(r->raw);
    free(r->arena);
    free(r->foff);
    free(r->flen);
    free(r->fptr);
    free(r);
}

const char *csv_reader_error(const csv_reader *r) { return r->err; }
uint64_t csv_reader_offset(const csv_reader *r) { return r->offset; }

/* The next piece of input: its length, 0 at the end, -1 on error. */
static long fill(csv_reader *r)
{
    r->piece_pos = 0;
    if (r->prefix_pos < r->prefix_len) {
        size_t n = r->prefix_len - r->prefix_pos;
        if (n > r->chunk) n = r->chunk;
        r->piece = r->prefix + r->prefix_pos;
        r->piece_len = n;
        r->prefix_pos += n;
        return (long)n;
    }
    r->piece_len = 0;
    if (r->fd < 0) return 0;
    for (;;) {
        ssize_t k = read(r->fd, r->buf, r->chunk);
        if (k >= 0) {
            r->piece = r->buf;
            r->piece_len = (size_t)k;
            return (long)k;
        }
        if (errno == EINTR && !sig_stopping()) continue;
        snprintf(r->err, sizeof r->err, "read: %s", errno == EINTR ? "interrupted" : strerror(errno));
        return -1;
    }
}

static void fill_record(csv_reader *r, csv_record *rec)
{
    for (int i = 0; i < r->nfields; i++) r->fptr[i] = r->arena + r->foff[i];
    size_t n = r->raw_len;
    if (n && r->raw[n - 1] == '\n') n--;
    if (n && r->raw[n - 1] == '\r') n--;
    rec->nfields = r->nfields;
    rec->field = r->fptr;
    rec->len = r->flen;
    rec->line = r->rec_line;
    rec->raw = r->raw ? r->raw : "";
    rec->raw_len = n;
    rec->too_long = r->too_long;
    r->delivered = 1;
}

static void reset_record(csv_reader *r)
{
    r->record_open = r->record_done = r->too_long = 0;
    r->nfields = 0;
    r->arena_len = 0;
    r->raw_len = 0;
    r->rec_bytes = 0;
    r->delivered = 0;
}

static int append_raw(csv_reader *r, const unsigned char *s, size_t n)
{
    if (dynbuf_reserve_array(&r->raw, &r->raw_cap, r->raw_len + n + 1, 1, RAW_MAX)) return -1;
    memcpy(r->raw + r->raw_len, s, n);
    r->raw_len += n;
    r->raw[r->raw_len] = '\0';
    return 0;
}

/*
 * One piece of a physical line (ends_line: it holds the line's '\n').
 * Returns 1 when a record is complete, 0 otherwise, -1 on error.
 */
static int segment(csv_reader *r, const unsigned char *s, size_t n, int ends_line)
{
    if (r->discarding) {
        if (ends_line) {
            r->discarding = 0;
            r->line++;
        }
        return 0;
    }
    r->rec_bytes += n;
    if (!r->record_open) {
        size_t content = ends_line ? n - 1 : n;
        for (size_t i = 0; i < content; i++) {
            if (!is_blank(s[i])) {
                r->record_open = 1;
                r->rec_line = r->line;
                break;
            }
        }
    }
    if (r->rec_bytes > CSV_RECORD_MAX) {
        if (!r->record_open) { /* a huge blank line: nothing to keep */
            if (ends_line) {
                r->line++;
                r->raw_len = r->rec_bytes = 0;
            }
            return 0;
        }
        size_t room = CSV_RECORD_MAX > r->raw_len ? CSV_RECORD_MAX - r->raw_len : 0;
        if (append_raw(r, s, n < room ? n : room)) goto oom;
        csv_fini(&r->p, NULL, NULL, NULL); /* reset the parser, drop the partial record */
        r->nfields = 0;
        r->arena_len = 0;
        r->too_long = 1;
        r->record_open = 0;
        if (ends_line) r->line++;
        else r->discarding = 1;
        return 1;
    }
    if (append_raw(r, s, n)) goto oom;
    if (r->record_open) {
        size_t done = csv_parse(&r->p, s, n, on_field, on_record, r);
        if (done != n) {
            snprintf(r->err, sizeof r->err, "csv: %s", csv_strerror(csv_error(&r->p)));
            return -1;
        }
        if (r->oom) goto oom;
    }
    if (ends_line) {
        r->line++;
        if (r->record_done) return 1;
        if (!r->record_open) r->raw_len = r->rec_bytes = 0; /* a blank line */
    }
    return 0;
oom:
    snprintf(r->err, sizeof r->err, "out of memory");
    return -1;
}

int csv_reader_next(csv_reader *r, csv_record *rec)
{
    if (r->delivered) reset_record(r);
    if (r->at_eof) return 0;
    for (;;) {
        if (r->piece_pos == r->piece_len) {
            long k = fill(r);
            if (k < 0) return -1;
            if (k == 0) {
                r->at_eof = 1;
                if (!r->bom_done && r->bom_match) { /* a file shorter than a BOM */
                    r->bom_done = 1;
                    if (segment(r, utf8_bom, r->bom_match, 0) < 0) return -1;
                }
                if (r->record_open && !r->discarding) {
                    csv_fini(&r->p, on_field, on_record, r);
                    if (r->oom) {
                        snprintf(r->err, sizeof r->err, "out of memory");
                        return -1;
                    }
                    fill_record(r, rec);
                    return 1;
                }
                return 0;
            }
        }
        if (!r->bom_done) {
            /* Match the BOM byte by byte (a read may return a single byte). */
            while (r->piece_pos < r->piece_len && r->bom_match < 3 &&
                   r->piece[r->piece_pos] == utf8_bom[r->bom_match]) {
                r->piece_pos++;
                r->bom_match++;
                r->offset++;
            }
            if (r->bom_match == 3) {
                r->bom_done = 1;
            } else if (r->piece_pos < r->piece_len) {
                /* Not a BOM: the bytes matched so far are data (no '\n' in them). */
                r->bom_done = 1;
                if (r->bom_match && segment(r, utf8_bom, r->bom_match, 0) < 0) return -1;
            }
            continue;
        }
        const unsigned char *s = r->piece + r->piece_pos;
        size_t avail = r->piece_len - r->piece_pos;
        const unsigned char *nl = memchr(s, '\n', avail);
        size_t n = nl ? (size_t)(nl - s) + 1 : avail;
        r->piece_pos += n;
        r->offset += n;
        int got = segment(r, s, n, nl != NULL);
        if (got < 0) return -1;
        if (got) {
            fill_record(r, rec);
            return 1;
        }
    }
}
