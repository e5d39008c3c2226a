#!/usr/bin/env python3
"""tests/lib/partcheck.py — the partitioned streams of the importer, read
independently of the project's code (python3-redis; the entry and the totals
through tests/lib/oracle.py, the one oracle).

  stream PORT N S CSV [--cluster]
      the totals of the N partition streams `transactions{p<i>:<k>}` and
      their dead-letter streams `transactions:rejected{p<i>:<k>}`, as
      `oracle.py stream` prints them ('# good', '# bad_<reason>', '# entries',
      '# distinct_src', then the cells), plus
        # streams K          partition streams found (each tag once)
        # per_partition a,b,…   entries (accepted + rejected) in partition 0…N-1
        # misplaced M        records in another partition than stripe
                             i // S mod N says, i = the record's index among
                             the data records of CSV (found by its first line,
                             blank lines skipped, with Python's csv module);
                             S = 0: not checked
        # untagged U         entries in the untagged `transactions` (must be 0)
      PORT: the Redis, or (--cluster) any node of the cluster.

Run it with Debian's /usr/bin/python3.
"""
import os
import re
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402

TAG_RE = re.compile(r"^(transactions|transactions:rejected)\{p(\d+):(\d+)\}$")


def client(port, cluster):
    import redis
    if cluster:
        from redis.cluster import RedisCluster
        return RedisCluster(host="127.0.0.1", port=int(port))
    return redis.Redis(host="127.0.0.1", port=int(port))


def record_index(path):
    """{first physical line: 0-based index of the data record} of a CSV file."""
    import csv
    index = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rd = csv.reader(f)
        prev = 0
        i = -1  # the header is record -1
        for row in rd:
            start = prev + 1
            prev = rd.line_num
            if not row or (len(row) == 1 and not row[0].strip(" \t\r")):
                continue
            if i >= 0:
                index[start] = i
            i += 1
    return index


def stream(port, n, stripe, path, cluster):
    r = client(port, cluster)
    index = record_index(path) if stripe else {}
    keys = {}
    for k in r.scan_iter(match="transactions*", count=1000):
        k = k.decode()
        m = TAG_RE.match(k)
        if m:
            keys.setdefault(m.group(1), {}).setdefault(int(m.group(2)), set()).add(k)
    totals = defaultdict(int)
    per = [0] * n
    srcs = set()
    bad = Counter()
    good = misplaced = 0

    def check_place(p, line):
        nonlocal misplaced
        if stripe and (int(line) not in index or (index[int(line)] // stripe) % n != p):
            misplaced += 1

    streams = 0
    for p, names in sorted(keys.get("transactions", {}).items()):
        streams += len(names)
        for key in sorted(names):
            for _, f in oracle.entries(r, key):
                ts, typ, method, cents, src = oracle.entry_words(f)
                good += 1
                per[p] += 1
                srcs.add(src)
                totals[(ts[:10], typ, method)] += cents
                check_place(p, src.rsplit(":", 1)[1])
    for p, names in sorted(keys.get("transactions:rejected", {}).items()):
        for key in sorted(names):
            for _, f in oracle.entries(r, key):
                bad[f["reason"].decode()] += 1
                per[p] += 1
                check_place(p, f["line"].decode())
    untagged = r.xlen("transactions") if r.exists("transactions") else 0
    oracle.print_totals(good, bad, totals, [
        "# entries %d" % good, "# distinct_src %d" % len(srcs), "# streams %d" % streams,
        "# per_partition %s" % ",".join(str(x) for x in per), "# misplaced %d" % misplaced,
        "# untagged %d" % untagged])


def main(argv):
    if len(argv) < 6 or argv[1] != "stream":
        print(__doc__, file=sys.stderr)
        return 2
    stream(argv[2], int(argv[3]), int(argv[4]), argv[5], "--cluster" in argv[6:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
