#!/usr/bin/env python3
"""test-compose-oracle.py — the independent side of deploy/test-compose.sh.

Python's own reading of the input rules (DESIGN.md "Input rules", in
tests/e2e/importer_oracle.py, shared by every oracle), with decimal money, and
a comparison of GET /stats against it exact to the cent.  Nothing here shares
code with the services.

  expect OUT [--csv FILE]... [--expect FILE]...
        sums the accepted rows of each CSV (read here) and each txgen --expect
        file ("day<TAB>type<TAB>method<TAB>cents" lines after "# …" summary
        lines) into OUT, same format
  csv-vs-expect CSV EXPECT   exit 1 when this reading of CSV disagrees with EXPECT
  range EXPECTED             "FROM TO": the first and last day with data
  span EXPECTED              days from the first to the last day, inclusive
  unsorted CSV               exit 0 when some row is earlier than the row before it
  sleep-total CSV            the sum of the sleep_ms column (0 when absent)
  compare EXPECTED URL       GET URL; exit 1 unless the answer holds exactly the
                             expected days, methods and amounts (parse_float=Decimal)
"""
import csv
import os
import time
import datetime as dt
import json
import re
import sys
import urllib.request
from collections import defaultdict
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import importer_oracle  # noqa: E402  the input rules in Python, shared by every oracle

MAX_FUTURE_DAYS = 366


def read_csv(path, totals):
    """Adds the accepted rows of path to totals; returns (accepted, rejected)."""
    good, bad, t = importer_oracle.expect(path, int(time.time()), MAX_FUTURE_DAYS)
    for key, cents in t.items():
        totals[key] += cents
    return good, sum(bad.values())


def read_expect(path, totals):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):  # txgen's "# rows N" summary lines
                continue
            parts = line.split("\t")
            if len(parts) != 4 or parts[1] not in ("deposit", "withdrawal") or not re.match(r"^-?\d+$", parts[3]):
                raise SystemExit(f"{path}:{n}: not day<TAB>type<TAB>method<TAB>cents: {line!r}")
            totals[(parts[0], parts[1], parts[2])] += int(parts[3])


def write(totals, path):
    with open(path, "w") as f:
        for (day, typ, method), cents in sorted(totals.items()):
            if cents:
                f.write(f"{day}\t{typ}\t{method}\t{cents}\n")


def load(path):
    totals = defaultdict(int)
    read_expect(path, totals)
    return totals


def cmd_expect(args):
    out, totals = args[0], defaultdict(int)
    it = iter(args[1:])
    for flag in it:
        path = next(it)
        if flag == "--csv":
            ok, bad = read_csv(path, totals)
            print(f"# oracle: {path}: {ok} rows accepted, {bad} records rejected")
        elif flag == "--expect":
            read_expect(path, totals)
        else:
            raise SystemExit(f"unknown flag {flag}")
    write(totals, out)


def cmd_csv_vs_expect(args):
    mine = defaultdict(int)
    ok, bad = read_csv(args[0], mine)
    theirs = load(args[1])
    mine = {k: v for k, v in mine.items() if v}
    theirs = {k: v for k, v in theirs.items() if v}
    if mine == theirs:
        print(f"# oracle: {args[0]}: {ok} rows accepted, {bad} records rejected; agrees with {args[1]}")
        return 0
    diff = sorted(set(mine) ^ set(theirs) | {k for k in mine if k in theirs and mine[k] != theirs[k]})
    for k in diff[:10]:
        print(f"#   {k}: python {mine.get(k)}, expect file {theirs.get(k)}")
    return 1


def cmd_compare(args):
    want = {k: v for k, v in load(args[0]).items() if v}
    with urllib.request.urlopen(args[1], timeout=60) as r:
        body = r.read()
    doc = json.loads(body, parse_float=Decimal, parse_int=Decimal)
    got, problems = {}, []
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        print(f"#   no data object in the answer: {body[:300]!r}")
        return 1
    for day, sides in data.items():
        if not isinstance(sides, dict) or set(sides) != {"deposits", "withdrawals"}:
            problems.append(f"{day}: keys {sorted(sides) if isinstance(sides, dict) else sides!r}")
            continue
        for side, typ in (("deposits", "deposit"), ("withdrawals", "withdrawal")):
            for method, amount in sides[side].items():
                if not isinstance(amount, Decimal):
                    problems.append(f"{day} {side} {method}: not a number: {amount!r}")
                    continue
                got[(day, typ, method)] = amount
    for k in sorted(set(want) | set(got)):
        w = Decimal(want[k]).scaleb(-2) if k in want else None
        if got.get(k) != w:
            problems.append(f"{k[0]} {k[1]} {k[2]}: /stats {got.get(k)}, expected {w}")
    days_without_data = [d for d, s in data.items() if isinstance(s, dict) and not any(s.values())]
    problems += [f"{d}: listed without data" for d in days_without_data]
    if problems:
        print(f"#   /stats differs from the independent computation in {len(problems)} places:")
        for p in problems[:20]:
            print(f"#   {p}")
        return 1
    total = sum(want.values())
    print(f"# /stats: {len({k[0] for k in want})} days, {len(want)} day/type/method totals, "
          f"sum {Decimal(total).scaleb(-2)} — exact")
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "expect":
        cmd_expect(args)
    elif cmd == "csv-vs-expect":
        return cmd_csv_vs_expect(args)
    elif cmd == "compare":
        return cmd_compare(args)
    elif cmd in ("range", "span"):
        days = sorted({k[0] for k, v in load(args[0]).items() if v})
        if not days:
            raise SystemExit("no days")
        if cmd == "range":
            print(days[0], days[-1])
        else:
            print((dt.date.fromisoformat(days[-1]) - dt.date.fromisoformat(days[0])).days + 1)
    elif cmd in ("unsorted", "sleep-total"):
        with open(args[0], newline="", encoding="utf-8-sig") as f:
            rows = [[x.strip(" \t") for x in r] for r in csv.reader(f) if r]
        col = {n.lower(): i for i, n in enumerate(rows[0])}
        if cmd == "sleep-total":
            i = col.get("sleep_ms")
            print(sum(int(r[i]) for r in rows[1:] if i is not None and len(r) > i and r[i].isdigit()))
            return 0
        i, prev = col["timestamp"], None
        for r in rows[1:]:
            if len(r) > i and importer_oracle.TS_RE.match(r[i]):
                if prev is not None and r[i] < prev:
                    return 0
                prev = r[i]
        return 1
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
