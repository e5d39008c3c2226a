/*
 * tierkeys — the partitioned key layout as the product computes it
 * (common/keys), for shell tests that must name a partition's keys.
 *
 *   tierkeys N [untagged]
 *
 * One line per partition: index, slot, tag, then the names of its stream,
 * dead-letter stream, tracked days, virtual clock, hot version, archive
 * version, archived-through and archive pending set, separated by one space.
 * Tagged unless "untagged" (then N must be 1: today's names, tag "-").
 * Exits 0, or 2 on bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"

int main(int argc, char **argv)
{
    char *end = NULL;
    long n = argc >= 2 ? strtol(argv[1], &end, 10) : 0;
    int tagged = !(argc == 3 && !strcmp(argv[2], "untagged"));
    if (argc < 2 || argc > 3 || !end || *end || n < 1 || n > 1024 || (argc == 3 && tagged)) {
        fprintf(stderr, "usage: tierkeys N [untagged]\n");
        return 2;
    }
    keys_part *parts = calloc((size_t)n, sizeof *parts);
    if (!parts || keys_parts_init(parts, (int)n, tagged) != 0) {
        fprintf(stderr, "tierkeys: no layout for N=%ld%s\n", n, tagged ? "" : " untagged");
        free(parts);
        return 2;
    }
    for (long i = 0; i < n; i++) {
        const keys_part *p = &parts[i];
        printf("%d %d %s %s %s %s %s %s %s %s %s\n", p->index, p->slot, p->tag[0] ? p->tag : "-", p->stream,
               p->rejected, p->tracked, p->clock, p->hot_version, p->archive_version, p->archived_through,
               p->archive_pending);
    }
    free(parts);
    return 0;
}
