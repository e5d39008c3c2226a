#!/usr/bin/env python3
"""Independent oracle for the importer tests (Python stdlib only).

Nothing here calls the project's code: the input rules of DESIGN.md are
re-implemented with the csv module, re-, datetime and decimal.Decimal, and the
stream is read from Redis with a minimal RESP client.

  importer_oracle.py expect FILE [--now EPOCH] [--max-future-days N]
      expected totals of a CSV file, in txgen --expect format:
      '# good N', '# bad_<reason> N', then 'day<TAB>type<TAB>method<TAB>cents' sorted
  importer_oracle.py stream PORT
      the same totals computed from the stream `transactions`, plus
      '# entries N', '# distinct_src N', and from `transactions:rejected`
      '# bad_<reason> N'
  importer_oracle.py srcs PORT
      every src of the stream, one per line, in stream order
  importer_oracle.py rejected PORT
      every dead letter as 'reason<TAB>file<TAB>line<TAB>raw' (raw with \\n escaped)
"""
import csv
import datetime
import io
import re
import socket
import sys
import time
from collections import Counter, defaultdict
from decimal import Decimal

REASONS = ["field_count", "timestamp", "type", "payment_method", "amount", "sleep_ms"]
TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$")
METHOD_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
AMOUNT_RE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def parse_ts(s, now, max_future_days):
    m = TS_RE.match(s)
    if not m:
        return None
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    if y < 1970:
        return None
    try:
        local = datetime.datetime(y, mo, d, h, mi, se, tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    off = m.group(8)
    offset = datetime.timedelta(0)
    if off and off not in ("Z", "z"):
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        offset = datetime.timedelta(hours=oh, minutes=om) * (-1 if off[0] == "-" else 1)
    utc = local - offset
    if utc < EPOCH or utc.year > 9999:
        return None
    if (utc - EPOCH).total_seconds() > now + max_future_days * 86400:
        return None
    return utc


def check_row(row, cols, nfields, now, max_future_days):
    """(reason, None) or (None, (day, type, method, cents))."""
    if len(row) != nfields:
        return "field_count", None
    f = [x.strip(" \t") for x in row]
    utc = parse_ts(f[cols["timestamp"]], now, max_future_days)
    if utc is None:
        return "timestamp", None
    typ = f[cols["type"]].lower()
    if typ not in ("deposit", "withdrawal"):
        return "type", None
    method = f[cols["payment_method"]].lower()
    if not METHOD_RE.match(method):
        return "payment_method", None
    a = f[cols["amount"]]
    if not AMOUNT_RE.match(a):
        return "amount", None
    cents = int(Decimal(a) * 100)
    if cents < 1 or cents > 100000000000:
        return "amount", None
    if "sleep_ms" in cols:
        s = f[cols["sleep_ms"]]
        if s != "" and (not re.match(r"^\d+$", s) or int(s) > 60000):
            return "sleep_ms", None
    return None, (utc.strftime("%Y-%m-%d"), typ, method, cents)


def expect(path, now, max_future_days):
    with open(path, "rb") as fh:
        data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = None
    totals = defaultdict(int)
    bad = Counter()
    good = 0
    for row in rows:
        if not row or (len(row) == 1 and row[0].strip(" \t\r") == ""):
            continue  # blank line
        if header is None:
            header = [h.strip(" \t").lower() for h in row]
            cols = {}
            for i, h in enumerate(header):
                if h in ("timestamp", "type", "payment_method", "amount", "sleep_ms") and h not in cols:
                    cols[h] = i
            continue
        reason, ok = check_row(row, cols, len(header), now, max_future_days)
        if reason:
            bad[reason] += 1
        else:
            good += 1
            day, typ, method, cents = ok
            totals[(day, typ, method)] += cents
    return good, bad, totals


def print_totals(good, bad, totals, extra=()):
    print("# good %d" % good)
    for r in REASONS:
        print("# bad_%s %d" % (r, bad.get(r, 0)))
    for line in extra:
        print(line)
    for (day, typ, method) in sorted(totals):
        print("%s\t%s\t%s\t%d" % (day, typ, method, totals[(day, typ, method)]))


class Redis:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", int(port)))
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def entries(self, key, page=10000):
        start = "-"
        while True:
            batch = self.cmd("XRANGE", key, start, "+", "COUNT", page)
            if not batch:
                return
            for eid, fields in batch:
                yield eid.decode(), {fields[i].decode(): fields[i + 1] for i in range(0, len(fields), 2)}
            last = batch[-1][0].decode()
            ms, seq = last.split("-")
            start = "%s-%d" % (ms, int(seq) + 1)


def stream(port):
    r = Redis(port)
    totals = defaultdict(int)
    n = 0
    srcs = set()
    for _, f in r.entries("transactions"):
        n += 1
        srcs.add(f["src"])
        ts = f["ts"].decode()
        assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", ts), ts
        key = (ts[:10], f["type"].decode(), f["method"].decode())
        totals[key] += int(f["cents"])
    bad = Counter(f["reason"].decode() for _, f in r.entries("transactions:rejected"))
    print_totals(n, bad, totals, ["# entries %d" % n, "# distinct_src %d" % len(srcs)])


def main():
    argv = sys.argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "expect":
        now, mfd = int(time.time()), 366
        if "--now" in argv:
            now = int(argv[argv.index("--now") + 1])
        if "--max-future-days" in argv:
            mfd = int(argv[argv.index("--max-future-days") + 1])
        good, bad, totals = expect(argv[1], now, mfd)
        print_totals(good, bad, totals)
    elif argv[0] == "stream":
        stream(argv[1])
    elif argv[0] == "srcs":
        for _, f in Redis(argv[1]).entries("transactions"):
            print(f["src"].decode())
    elif argv[0] == "rejected":
        for _, f in Redis(argv[1]).entries("transactions:rejected"):
            raw = f["raw"].decode("utf-8", "replace").replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            print("%s\t%s\t%s\t%s" % (f["reason"].decode(), f["file"].decode(), f["line"].decode(), raw))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
