#!/usr/bin/env python3
"""syscheck — the oracle of the whole-system end-to-end tests (stdlib only).

Independent of the project's code: expectations come from txgen's --expect
files (integers it generated) and from the CSV itself through
tests/e2e/importer_oracle.py (the input rules in Python); answers of /stats
are parsed with json.loads(parse_float=Decimal) and compared through
tests/lib/apicheck.py (exact text and exact cents).  Never a float.

  truth EXPECT…
      the sum of txgen --expect files as {day: {type: {method: cents}}} (JSON on stdout)
  agglines EXPECT…
      the same sums as agg_redis_totals prints them: 'agg:DAY:TYPE METHOD CENTS' (unsorted)
  maxts CSV [--now EPOCH]
      the greatest timestamp of the accepted rows, as the clock stores it
      (UTC, whole seconds: YYYY-MM-DDTHH:MM:SSZ); empty when none
  compare URL FROM TO TRUTH
      one GET /stats; the body must be exactly the truth (text and amounts)
  reads URL FROM TO TRUTH STOPFILE MIN_READS [PROGRESS [REDIS_PORT [WALK]]]
      back-to-back GET /stats on one keep-alive connection until STOPFILE exists
      and at least MIN_READS were answered; every 200 must be exactly the truth.
      Each read is over [FROM, TO], or with WALK > 0 over WALK days at a time,
      walking through [FROM, TO] and round again (ranges the api's cold cache
      has not covered yet at the current archive version, so they are read
      from MongoDB at that instant).
      A 503 whose detail says the archive moved (bounded retries ran out) is
      counted, never taken for an answer.  Writes the number of reads answered
      so far to PROGRESS.  With REDIS_PORT, the archive state is sampled before
      and after each read (system:archive_version, system:archive:pending) to
      count the reads that overlapped the migration: "raced" (the version moved
      during the read: a freeze or clean-up happened meanwhile) and "in_batch"
      (the same batch was pending before and after).  Prints "reads_ok=N
      reads_busy=N reads_wrong=N reads_raced=N reads_in_batch=N"; exit 1 on any
      wrong answer or other status.
  watch URL FROM TO STOPFILE MAXFILE
      GET /stats again and again until STOPFILE exists, while the data grows:
      no amount may ever go down from one answer to the next (rows only add
      cents), no day or method may vanish.  Writes the greatest amount seen per
      cell to MAXFILE (JSON, the truth's shape).  Prints "watch_reads=N
      watch_busy=N watch_wrong=N"; exit 1 on a decrease or a bad status.
  bounded MAXFILE TRUTH
      every amount seen by watch is at most the final truth (a transient double
      count would exceed it); exit 1 and the cells otherwise
"""
import json
import os
import sys
import time
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import apicheck  # noqa: E402  (expected_body, to_cents, connect, get, stats_path)
import importer_oracle  # noqa: E402  (parse_ts, check_row: the input rules)


def truth(expects):
    out = {}
    for path in expects:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                day, typ, method, cents = line.rstrip("\n").split("\t")
                cell = out.setdefault(day, {}).setdefault(typ, {})
                cell[method] = cell.get(method, 0) + int(cents)
    return out


def maxts(path, now):
    """Walk the CSV like importer_oracle.expect, keeping the greatest accepted time."""
    import csv
    import io
    with open(path, "rb") as fh:
        data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    header, cols, best = None, None, None
    for row in csv.reader(io.StringIO(data.decode("utf-8"), newline="")):
        if not row or (len(row) == 1 and row[0].strip(" \t\r") == ""):
            continue
        if header is None:
            header = [h.strip(" \t").lower() for h in row]
            cols = {}
            for i, h in enumerate(header):
                if h not in cols:
                    cols[h] = i
            continue
        reason, _ = importer_oracle.check_row(row, cols, len(header), now, 366)
        if reason:
            continue
        utc = importer_oracle.parse_ts(row[cols["timestamp"]].strip(" \t"), now, 366)
        if best is None or utc > best:
            best = utc
    return best.strftime("%Y-%m-%dT%H:%M:%SZ") if best else ""


def answer_problems(body, want_cells, want_text):
    """Why one 200 body is not exactly the truth (empty list = exact)."""
    problems = []
    try:
        got = apicheck.to_cents(json.loads(body, parse_float=Decimal))
    except (ValueError, AssertionError) as e:
        return ["unparsable answer: %s" % e]
    if got != want_cells:
        for d in sorted(set(got) | set(want_cells)):
            if got.get(d) != want_cells.get(d):
                problems.append("day %s: got %s want %s" % (d, got.get(d), want_cells.get(d)))
    elif body != want_text:
        problems.append("same amounts, different text: %s" % body[:300])
    return problems


def cells_in(t, frm, to):
    """The truth restricted to [frm, to], without empty sides or days."""
    sub = {}
    for d, sides in t.items():
        if frm <= d <= to:
            s = {typ: dict(m) for typ, m in sides.items() if m}
            if s:
                sub[d] = s
    return sub


def moved(status, body):
    return status == 503 and "moved" in body


def compare(url, frm, to, truth_file):
    t = json.load(open(truth_file))
    status, body = apicheck.get(apicheck.connect(url), apicheck.stats_path(frm, to))
    if status != 200:
        print("status %d: %s" % (status, body[:300]), file=sys.stderr)
        return 1
    problems = answer_problems(body, cells_in(t, frm, to), apicheck.expected_body(t, frm, to))
    for p in problems[:10]:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def archive_state(r):
    if r is None:
        return None
    return r.cmd("GET", "system:archive_version"), tuple(sorted(r.cmd("SMEMBERS", "system:archive:pending")))


def reads(url, frm, to, truth_file, stopfile, min_reads, progress=None, redis_port=None, walk=0):
    t = json.load(open(truth_file))
    if walk > 0:
        days = list(apicheck.day_range(frm, to))
        ranges = [(days[i], days[min(i + walk, len(days)) - 1]) for i in range(0, len(days), walk)]
    else:
        ranges = [(frm, to)]
    want = {rg: (cells_in(t, *rg), apicheck.expected_body(t, *rg)) for rg in ranges}
    conn = apicheck.connect(url)
    r = importer_oracle.Redis(redis_port) if redis_port else None
    ok = busy = wrong = raced = in_batch = n = 0
    deadline = time.time() + 600
    while (ok < min_reads or not os.path.exists(stopfile)) and time.time() < deadline:
        rg = ranges[n % len(ranges)]
        n += 1
        want_cells, want_text = want[rg]
        before = archive_state(r)
        status, body = apicheck.get(conn, apicheck.stats_path(*rg))
        after = archive_state(r)
        if r is not None:
            raced += before[0] != after[0]
            in_batch += bool(before[1]) and before == after
        if status == 200:
            problems = answer_problems(body, want_cells, want_text)
            if problems:
                wrong += 1
                if wrong <= 5:
                    print("read %d (%s..%s): wrong answer: %s" % (n, rg[0], rg[1], "; ".join(problems[:4])),
                          file=sys.stderr)
            else:
                ok += 1
        elif moved(status, body):
            busy += 1
        else:
            wrong += 1
            if wrong <= 5:
                print("status %d: %s" % (status, body[:300]), file=sys.stderr)
        if progress and (ok + busy + wrong) % 10 == 0:
            with open(progress + ".tmp", "w") as f:
                f.write("%d\n" % ok)
            os.replace(progress + ".tmp", progress)
    if progress:
        with open(progress, "w") as f:
            f.write("%d\n" % ok)
    print("reads_ok=%d reads_busy=%d reads_wrong=%d reads_raced=%d reads_in_batch=%d"
          % (ok, busy, wrong, raced, in_batch))
    return 1 if wrong or ok < min_reads else 0


def watch(url, frm, to, stopfile, maxfile):
    conn = apicheck.connect(url)
    path = apicheck.stats_path(frm, to)
    last, n, busy, wrong = {}, 0, 0, 0
    while not os.path.exists(stopfile):
        try:
            status, body = apicheck.get(conn, path)
        except OSError as e:  # the api is never killed here: a lost connection is a failure
            print("watch: %s" % e, file=sys.stderr)
            wrong += 1
            conn = apicheck.connect(url)
            time.sleep(0.2)
            continue
        if moved(status, body):
            busy += 1
            continue
        if status != 200:
            wrong += 1
            if wrong <= 5:
                print("watch: status %d: %s" % (status, body[:300]), file=sys.stderr)
            continue
        n += 1
        got = apicheck.to_cents(json.loads(body, parse_float=Decimal))
        cur = {}
        for d, sides in got.items():
            for typ, methods in sides.items():
                for m, c in methods.items():
                    cur[(d, typ, m)] = c
        for k, c in last.items():
            if cur.get(k, 0) < c:
                wrong += 1
                if wrong <= 5:
                    print("watch: %s went down from %d to %s (read %d)" % (k, c, cur.get(k), n), file=sys.stderr)
        for k, c in cur.items():
            last[k] = max(c, last.get(k, 0))
        time.sleep(0.05)
    out = {}
    for (d, typ, m), c in last.items():
        out.setdefault(d, {}).setdefault(typ, {})[m] = c
    with open(maxfile, "w") as f:
        json.dump(out, f, sort_keys=True)
    print("watch_reads=%d watch_busy=%d watch_wrong=%d" % (n, busy, wrong))
    return 1 if wrong or n == 0 else 0


def bounded(maxfile, truth_file):
    seen, t = json.load(open(maxfile)), json.load(open(truth_file))
    bad = []
    for d, sides in seen.items():
        for typ, methods in sides.items():
            for m, c in methods.items():
                want = t.get(d, {}).get(typ, {}).get(m)
                if want is None or c > want:
                    bad.append("%s %s %s: seen %d, final %s" % (d, typ, m, c, want))
    for b in bad[:10]:
        print(b, file=sys.stderr)
    return 1 if bad else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, a = argv[1], argv[2:]
    if cmd == "truth":
        json.dump(truth(a), sys.stdout, sort_keys=True)
        print()
        return 0
    if cmd == "agglines":
        for day, sides in truth(a).items():
            for typ, methods in sides.items():
                for m, c in methods.items():
                    print("agg:%s:%s %s %d" % (day, typ, m, c))
        return 0
    if cmd == "maxts":
        now = int(a[a.index("--now") + 1]) if "--now" in a else int(time.time())
        print(maxts(a[0], now))
        return 0
    if cmd == "compare":
        return compare(*a[:4])
    if cmd == "reads":
        return reads(a[0], a[1], a[2], a[3], a[4], int(a[5]), a[6] if len(a) > 6 else None,
                     a[7] if len(a) > 7 else None, int(a[8]) if len(a) > 8 else 0)
    if cmd == "watch":
        return watch(*a[:5])
    if cmd == "bounded":
        return bounded(*a[:2])
    print("syscheck: unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
