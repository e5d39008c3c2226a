#!/usr/bin/env python3
"""apicheck — the Python oracle of the API's end-to-end tests (stdlib only).

Amounts are handled as integer cents and decimal.Decimal, never floats:
responses are parsed with json.loads(parse_float=Decimal).

  scenario SEED PREFIX
      Invent ground-truth daily totals (PREFIX.truth.json: {day: {type: {method: cents}}})
      and spread each day over the tiers the way the archive protocol can leave it at one
      instant — hot hash, MongoDB document (with applied batch ids), frozen hashes of a
      pending batch applied or not yet applied to the document, late rows hot again —
      writing the apiseed commands to PREFIX.seed.  Whatever the placement, /stats must
      answer the truth: this oracle never applies the API's merge rule.
  expect TRUTH FROM TO           print the exact body /stats must answer
  compare URL FROM TO TRUTH [TOKEN]
      GET /stats three times on one connection and compare each body with the truth,
      as text and as parsed JSON.
  consistency URL FROM TO BASE LATE_FROM LATE_TO STOPFILE READS THREADS [MIN_ROUNDS PROGRESS]
      Back-to-back full-range reads while a migration runs (apiseed migrate), at least
      READS of them and until the migration reports MIN_ROUNDS rounds in PROGRESS.  Every
      answer must hold the base amounts exactly and, on every day of the late range,
      the same number L of late cents, with L never decreasing along one reader.
      Touches STOPFILE when done.  Prints a summary; exit 1 on any wrong answer.
  final URL FROM TO BASE LATE_FROM LATE_TO ROUNDS
      After the migration: L equals the number of rounds on every late day.
"""
import datetime
import http.client
import json
import random
import sys
import threading
import urllib.parse
from decimal import Decimal

TYPES = ("deposit", "withdrawal")
PLURAL = {"deposit": "deposits", "withdrawal": "withdrawals"}


def day_range(a, b):
    d = datetime.date.fromisoformat(a)
    e = datetime.date.fromisoformat(b)
    while d <= e:
        yield d.isoformat()
        d += datetime.timedelta(days=1)


def fmt_cents(c):
    """The documented amount text: shortest decimals, at least one."""
    s = "%s%d.%02d" % ("-" if c < 0 else "", abs(c) // 100, abs(c) % 100)
    s = s.rstrip("0")
    return s + "0" if s.endswith(".") else s


def expected_body(truth, frm, to):
    days = []
    for day in sorted(d for d in truth if frm <= d <= to):
        sides = []
        for t in TYPES:
            m = truth[day].get(t, {})
            items = ",".join('"%s":%s' % (k, fmt_cents(m[k])) for k in sorted(m))
            sides.append('"%s":{%s}' % (PLURAL[t], items))
        days.append('"%s":{%s}' % (day, ",".join(sides)))
    return '{"data":{%s}}' % ",".join(days)


def to_cents(body):
    """{day: {type: {method: cents}}} from a parsed body (Decimal amounts)."""
    out = {}
    for day, sides in body["data"].items():
        assert set(sides) == {"deposits", "withdrawals"}, "day %s lacks a side: %s" % (day, sorted(sides))
        out[day] = {}
        for t in TYPES:
            for m, v in sides[PLURAL[t]].items():
                assert isinstance(v, Decimal), "%s %s %s is not a decimal number" % (day, t, m)
                c = v * 100
                assert c == c.to_integral_value(), "%s %s %s = %s is not whole cents" % (day, t, m, v)
                out[day].setdefault(t, {})[m] = int(c)
    return out


def split(total, parts, rnd):
    """total cents cut into `parts` non-negative pieces."""
    cuts = sorted(rnd.randint(0, total) for _ in range(parts - 1))
    pieces, prev = [], 0
    for c in cuts + [total]:
        pieces.append(c - prev)
        prev = c
    return pieces


def scenario(seed, prefix):
    rnd = random.Random(seed)
    methods = ["visa", "paypal", "crypto", "apple_pay", "bank_transfer", "zz-9_x", "0cash"]
    days = [d for d in day_range("2025-12-01", "2026-01-31") if rnd.random() < 0.8]
    through = "2026-01-10"
    batch = "B%d" % rnd.randint(100, 999)
    # The pending batch freezes late rows of two archived days and four new ones.
    bdays = ["2025-12-05", "2026-01-08", "2026-01-11", "2026-01-12", "2026-01-13", "2026-01-14"]
    for d in bdays:
        if d not in days:
            days.append(d)
    days.sort()
    truth, cmds = {}, ["version %d" % rnd.randint(1, 10**6), "through " + through,
                       "pending %s %s" % (batch, ",".join(bdays))]
    placements = {}
    for d in days:
        truth[d] = {}
        for t in TYPES:
            for m in rnd.sample(methods, rnd.randint(1, len(methods))):
                big = rnd.random() < 0.05
                cents = rnd.randint(10**15, 9 * 10**15) if big else rnd.randint(1, 10**8)
                truth[d].setdefault(t, {})[m] = cents
        if d in bdays:
            kind = rnd.choice(["frozen-not-applied", "frozen-applied"])
        elif d <= through:
            kind = rnd.choice(["cold", "cold+late"])
        else:
            kind = "hot"
        placements[d] = kind
        applied = ["old%d" % rnd.randint(1, 50)] if d <= through else []
        if kind == "frozen-applied":
            applied.append(batch)
        for t in TYPES:
            for m, cents in truth[d].get(t, {}).items():
                if kind == "hot":
                    hot, doc, frozen = cents, 0, 0
                elif kind == "cold":
                    hot, doc, frozen = 0, cents, 0
                elif kind == "cold+late":
                    hot, doc = split(cents, 2, rnd)
                    frozen = 0
                else:
                    hot, frozen, earlier = split(cents, 3, rnd)
                    if d > through:
                        earlier_total = 0
                        hot += earlier  # a never-archived day has no earlier document
                    else:
                        earlier_total = earlier
                    # applied: the document holds the earlier part plus the frozen copy
                    doc = earlier_total + (frozen if kind == "frozen-applied" else 0)
                if hot:
                    cmds.append("hot %s %s %s %d" % (d, t, m, hot))
                if doc:
                    cmds.append("doc %s %s %s %d" % (d, t, m, doc))
                if frozen:
                    cmds.append("frozen %s %s %s %s %d" % (batch, d, t, m, frozen))
        for b in applied:
            cmds.append("docbatch %s %s" % (d, b))
    # A document beyond archived_through must be ignored (never archived: stale data).
    cmds.append("doc 2026-01-30 deposit ghost 12345")
    tail = cmds[3:]
    rnd.shuffle(tail)
    cmds = cmds[:3] + tail
    with open(prefix + ".seed", "w") as f:
        f.write("\n".join(cmds) + "\n")
    with open(prefix + ".truth.json", "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
    with open(prefix + ".placements.json", "w") as f:
        json.dump(placements, f, indent=1, sort_keys=True)


def get(conn, path, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    return r.status, r.read().decode()


def connect(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def stats_path(frm, to):
    return "/stats?from_date=%s&to_date=%s" % (frm, to)


def compare(url, frm, to, truth_file, token=None):
    """Three reads on one keep-alive connection (one worker thread: its first
    snapshot goes through the script, the next ones through MULTI/EXEC)."""
    conn = connect(url)
    for _ in range(3):
        rv = compare_once(conn, frm, to, truth_file, token)
        if rv:
            return rv
    return 0


def compare_once(conn, frm, to, truth_file, token=None):
    truth = json.load(open(truth_file))
    status, body = get(conn, stats_path(frm, to), token)
    want = expected_body(truth, frm, to)
    if status != 200:
        print("status %d: %s" % (status, body[:500]), file=sys.stderr)
        return 1
    got = to_cents(json.loads(body, parse_float=Decimal))
    sub = {d: {t: v for t, v in s.items() if v} for d, s in truth.items() if frm <= d <= to}
    sub = {d: s for d, s in sub.items() if s}
    if got != sub:
        for d in sorted(set(got) | set(sub)):
            if got.get(d) != sub.get(d):
                print("day %s: got %s want %s" % (d, got.get(d), sub.get(d)), file=sys.stderr)
        return 1
    if body != want:
        print("same amounts, different text:\n got  %s\n want %s" % (body[:400], want[:400]), file=sys.stderr)
        return 1
    return 0


def check_answer(body, base, late_days):
    """Problems of one consistency answer (a list), and its L."""
    problems = []
    got = to_cents(json.loads(body, parse_float=Decimal))
    ls = set()
    for d in sorted(set(base) | set(got)):
        g = got.get(d, {})
        late = g.get("deposit", {}).pop("late", None) if g else None
        if d in late_days:
            ls.add(late or 0)  # absent = no late row yet
        elif late is not None:
            problems.append("%s has late cents outside the late range" % d)
        want = {t: m for t, m in base.get(d, {}).items() if m}
        g = {t: m for t, m in g.items() if m}
        if g != want:
            problems.append("%s: got %s want %s" % (d, g, want))
    if len(ls) != 1:
        problems.append("late cents differ between days: %s" % sorted(ls, key=str))
    L = ls.pop() if len(ls) == 1 else None
    return problems, L


def rounds_done(progress):
    try:
        return int(open(progress).read().strip() or 0)
    except (OSError, ValueError):
        return 0


def consistency(url, frm, to, base_file, late_from, late_to, stopfile, reads, threads, min_rounds=0, progress=None):
    base = json.load(open(base_file))
    late_days = set(day_range(late_from, late_to))
    per = (reads + threads - 1) // threads
    results = []
    lock = threading.Lock()

    def reader(idx):
        conn = connect(url)
        last, ok, bad, busy, seen, n = -1, 0, 0, 0, set(), 0
        while n < per or (progress and rounds_done(progress) < min_rounds and n < 100 * per):
            n += 1
            status, body = get(conn, stats_path(frm, to))
            if status == 503 and "moved" in body:
                busy += 1  # allowed: the archive kept moving; never a wrong answer
                continue
            if status != 200:
                bad += 1
                with lock:
                    print("reader %d: status %d %s" % (idx, status, body[:300]), file=sys.stderr)
                continue
            problems, L = check_answer(body, base, late_days)
            if L is None or L < last:
                problems.append("late cents went from %s to %s" % (last, L))
            if problems:
                bad += 1
                with lock:
                    print("reader %d: wrong answer: %s" % (idx, "; ".join(problems[:5])), file=sys.stderr)
            else:
                ok += 1
                last = L
                seen.add(L)
        with lock:
            results.append((ok, bad, busy, seen))

    ts = [threading.Thread(target=reader, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    open(stopfile, "w").close()
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    busy = sum(r[2] for r in results)
    seen = set().union(*(r[3] for r in results))
    print("reads_ok=%d reads_wrong=%d reads_busy=%d distinct_late_values=%d rounds_during_reads=%d"
          % (ok, bad, busy, len(seen), rounds_done(progress) if progress else -1))
    return 1 if bad or ok == 0 else 0


def final(url, frm, to, base_file, late_from, late_to, rounds):
    base = json.load(open(base_file))
    status, body = get(connect(url), stats_path(frm, to))
    if status != 200:
        print("status %d %s" % (status, body[:300]), file=sys.stderr)
        return 1
    problems, L = check_answer(body, base, set(day_range(late_from, late_to)))
    if L is None or L != int(rounds):
        problems.append("late cents %s after %s rounds" % (L, rounds))
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "scenario":
        scenario(int(args[0]), args[1])
        return 0
    if cmd == "expect":
        print(expected_body(json.load(open(args[0])), args[1], args[2]))
        return 0
    if cmd == "compare":
        return compare(*args[:4], token=args[4] if len(args) > 4 else None)
    if cmd == "consistency":
        extra = (int(args[9]), args[10]) if len(args) > 10 else ()
        return consistency(*args[:7], int(args[7]), int(args[8]), *extra)
    if cmd == "final":
        return final(*args)
    print("apicheck: unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
