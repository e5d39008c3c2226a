#!/usr/bin/env python3
"""oracle.py — the independent computation test-k8s.sh checks /stats against.

Written from DESIGN.md's input rules alone (stdlib only, decimal.Decimal, no
txagg code: the rules are tests/e2e/importer_oracle.py, shared by every
oracle), so a wrong total in the services cannot also be in the oracle.

  oracle.py expect [--csv FILE]... [--expect-file FILE]... > expected.json
      daily totals in cents: CSV files through the input rules, plus txgen
      --expect files ("day<TAB>type<TAB>method<TAB>cents" lines), summed.
  oracle.py range expected.json
      "FROM TO": the first and last day with data.
  oracle.py compare expected.json stats.json
      exit 0 when the /stats answer equals the expectation exactly (amounts
      parsed as Decimal, never float); else print the differences, exit 1.
"""
import os
import datetime as dt
import json
import sys
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import importer_oracle  # noqa: E402  the input rules in Python, shared by every oracle

MAX_FUTURE_DAYS = 366


def add(totals, day, typ, method, c):
    kind = "deposits" if typ == "deposit" else "withdrawals"
    daymap = totals.setdefault(day, {"deposits": {}, "withdrawals": {}})
    daymap[kind][method] = daymap[kind].get(method, 0) + c


def read_csv(path, totals, now):
    good, bad, t = importer_oracle.expect(path, int(now.timestamp()), MAX_FUTURE_DAYS)
    for (day, typ, method), c in sorted(t.items()):
        add(totals, day, typ, method, c)
    print(f"oracle: {path}: {good} rows accepted, {sum(bad.values())} rejected", file=sys.stderr)


def read_expect(path, totals):
    n = 0
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            day, typ, method, c = line.split("\t")
            typ = typ.lower().rstrip("s")  # "deposit" or "deposits"
            add(totals, day, typ, method, int(c))
            n += 1
    print(f"oracle: {path}: {n} expected totals", file=sys.stderr)


def as_decimal(totals):
    return {
        day: {k: {m: Decimal(c) / 100 for m, c in v[k].items()} for k in ("deposits", "withdrawals")}
        for day, v in totals.items()
    }


def main(argv):
    if len(argv) >= 2 and argv[1] == "expect":
        now = dt.datetime.now(dt.timezone.utc)
        totals, args = {}, argv[2:]
        while args:
            opt, path, args = args[0], args[1], args[2:]
            if opt == "--csv":
                read_csv(path, totals, now)
            elif opt == "--expect-file":
                read_expect(path, totals)
            else:
                raise SystemExit(f"oracle: unknown option {opt}")
        json.dump({d: {k: {m: str(c) for m, c in v[k].items()} for k in v} for d, v in sorted(totals.items())},
                  sys.stdout, indent=1, sort_keys=True)
        return 0
    if len(argv) == 3 and argv[1] == "range":
        days = sorted(json.load(open(argv[2])))
        print(days[0], days[-1])
        return 0
    if len(argv) == 4 and argv[1] == "compare":
        exp = as_decimal({d: {k: {m: int(c) for m, c in v[k].items()} for k in v}
                          for d, v in json.load(open(argv[2])).items()})
        got = json.load(open(argv[3]), parse_float=Decimal, parse_int=Decimal)
        if not isinstance(got, dict) or "data" not in got:
            print(f"oracle: the answer has no 'data': {str(got)[:300]}")
            return 1
        got = got["data"]
        diffs = []
        for day in sorted(set(exp) | set(got)):
            e, g = exp.get(day), got.get(day)
            if e is None or g is None:
                diffs.append(f"{day}: expected {'nothing' if e is None else 'data'}, got {'nothing' if g is None else 'data'}")
                continue
            for k in ("deposits", "withdrawals"):
                if k not in g:
                    diffs.append(f"{day}: '{k}' missing from the answer")
                    continue
                for m in sorted(set(e[k]) | set(g[k])):
                    ev, gv = e[k].get(m), g[k].get(m)
                    if ev != gv:
                        diffs.append(f"{day} {k} {m}: expected {ev}, got {gv}")
        if diffs:
            print(f"oracle: {len(diffs)} difference(s):")
            for d in diffs[:20]:
                print("  " + d)
            return 1
        n = sum(len(v[k]) for v in exp.values() for k in v)
        print(f"oracle: /stats equals the expectation: {len(exp)} days, {n} day/type/method totals, exact to the cent")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
