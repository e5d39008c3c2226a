#!/usr/bin/env python3
"""tests/lib/oracle.py — the one independent oracle of the tests and the
deployment scripts (deploy/test-compose.sh, deploy/k8s/test-k8s.sh).

It owns: the input rules of docs/CONTRACTS.md ("CSV input") written again in
Python (csv, re, datetime, decimal.Decimal); truths, i.e. daily totals in
integer cents; and the one comparison of a /stats answer with a truth.
Invariants: nothing here calls or copies the project's code, so a wrong total
in the services cannot also be in the oracle; money is integer cents or
Decimal, never a float (answers are parsed with parse_float=Decimal); a
/stats answer is right only when its amounts are the truth's to the cent AND
its text is exactly the documented body.

Run it with Debian's /usr/bin/python3: the commands that read Redis use
python3-redis (scripts/deps.sh installs it).

A TRUTH file is either JSON {day: {type: {method: cents}}} or txgen's
--expect text ('day<TAB>type<TAB>method<TAB>cents' lines after '# …' lines);
every command taking a TRUTH reads both.

The input rules
  expect CSV [--now EPOCH] [--max-future-days N]
      totals of a CSV file in txgen --expect format: '# good N',
      '# bad_<reason> N', then 'day<TAB>type<TAB>method<TAB>cents' sorted
  maxts CSV [--now EPOCH]
      the greatest accepted timestamp, as the clock stores it
      (UTC, whole seconds: YYYY-MM-DDTHH:MM:SSZ); empty when none
  unsorted CSV           exit 0 when some valid row is earlier than the one before
  sleep-total CSV        the sum of the valid sleep_ms values (0 when absent)
Truths
  truth [--tsv] [--csv CSV]... [EXPECT]...
      the sum of CSV files (read by the input rules, a summary line each on
      stderr) and txgen --expect files: JSON on stdout, or with --tsv the
      --expect text
  csv-vs-expect CSV EXPECT   exit 1 when this reading of CSV disagrees with EXPECT
  agglines EXPECT...     the sums as agg_redis_totals prints them: 'agg:DAY:TYPE METHOD CENTS'
  range TRUTH            'FROM TO': the first and last day with data
  span TRUTH             days from the first to the last day with data, inclusive
  scenario SEED PREFIX
      invent ground-truth daily totals (PREFIX.truth.json) and spread each day
      over the tiers the way the archive protocol can leave it at one instant —
      hot hash, MongoDB document (with applied batch ids), frozen hashes of a
      pending batch applied or not yet applied to the document, late rows hot
      again — writing the apiseed commands to PREFIX.seed (and
      PREFIX.placements.json).  Whatever the placement, /stats must answer the
      truth: this oracle never applies the API's merge rule.
  body TRUTH FROM TO     the exact body /stats must answer
  body-csv TRUTH FROM TO the exact body /stats.csv must answer
The /stats comparison
  compare URL FROM TO TRUTH [TOKEN]
      GET /stats?from_date=FROM&to_date=TO three times on one keep-alive
      connection to URL's host and port (one api worker: its first snapshot
      goes through the script, the next ones through MULTI/EXEC); each answer
      must be the truth over [FROM, TO], to the cent and to the letter.
      Differences on stderr; on success one '# …' summary line on stdout.
  reads URL FROM TO TRUTH STOPFILE MIN_READS [PROGRESS [REDIS_PORT [WALK]]]
      back-to-back GET /stats on one keep-alive connection until STOPFILE exists
      and at least MIN_READS were answered; every 200 must be exactly the truth.
      Each read is over [FROM, TO], or with WALK > 0 over WALK days at a time,
      walking through [FROM, TO] and round again (ranges the api's cold cache
      has not covered yet at the current archive version, so they are read
      from MongoDB at that instant).  A 503 whose detail says the archive
      moved is counted, never taken for an answer.  Writes the number of reads
      answered so far to PROGRESS.  With REDIS_PORT, the archive state is
      sampled before and after each read (system:archive_version,
      system:archive:pending) to count the reads that overlapped the
      migration: "raced" (the version moved during the read) and "in_batch"
      (the same batch was pending before and after).  Prints "reads_ok=N
      reads_busy=N reads_wrong=N reads_raced=N reads_in_batch=N"; exit 1 on
      any wrong answer or other status.
  reads-failover URL FROM TO TRUTH STOPFILE MIN_READS
      as reads, for a failover: any 503 (a dependency unavailable, said in its
      detail) is counted as busy; every 200 must still be exactly the truth.
  watch URL FROM TO STOPFILE MAXFILE
      GET /stats again and again until STOPFILE exists, while the data grows:
      no amount may ever go down from one answer to the next, no day or method
      may vanish.  Writes the greatest amount seen per cell to MAXFILE (JSON,
      the truth's shape).  Prints "watch_reads=N watch_busy=N watch_wrong=N".
  bounded MAXFILE TRUTH
      every amount seen by watch is at most the final truth (a transient double
      count would exceed it); exit 1 and the cells otherwise
  consistency URL FROM TO BASE LATE_FROM LATE_TO STOPFILE READS THREADS [MIN_ROUNDS PROGRESS]
      back-to-back full-range reads while a migration runs (apiseed migrate), at
      least READS of them and until the migration reports MIN_ROUNDS rounds in
      PROGRESS.  Every answer must hold the base amounts exactly and, on every
      day of the late range, the same number L of late cents, with L never
      decreasing along one reader.  Touches STOPFILE when done.
  final URL FROM TO BASE LATE_FROM LATE_TO ROUNDS
      after the migration: L equals the number of rounds on every late day
The stream in Redis (python3-redis)
  stream PORT    the totals of the stream `transactions` as `expect` prints
                 them, plus '# entries N', '# distinct_src N', and from
                 `transactions:rejected` '# bad_<reason> N'
  srcs PORT      every src of the stream, one a line, in stream order
  rejected PORT  every dead letter as 'reason<TAB>file<TAB>line<TAB>raw' (raw with \\n escaped)
"""
import csv
import datetime
import http.client
import io
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from decimal import Decimal

TYPES = ("deposit", "withdrawal")
PLURAL = {"deposit": "deposits", "withdrawal": "withdrawals"}
MAX_FUTURE_DAYS = 366


# --- the input rules (docs/CONTRACTS.md "CSV input") ------------------------------

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
    """(reason, None) or (None, (utc, type, method, cents))."""
    if len(row) != nfields:
        return "field_count", None
    f = [x.strip(" \t") for x in row]
    utc = parse_ts(f[cols["timestamp"]], now, max_future_days)
    if utc is None:
        return "timestamp", None
    typ = f[cols["type"]].lower()
    if typ not in TYPES:
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
    return None, (utc, typ, method, cents)


def csv_rows(path, now, max_future_days):
    """Each record of a CSV file after its header: (reason, tx, fields), with
    reason None and tx (utc, type, method, cents) for an accepted row."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    header, cols = None, {}
    for row in csv.reader(io.StringIO(data.decode("utf-8"), newline="")):
        if not row or (len(row) == 1 and row[0].strip(" \t\r") == ""):
            continue  # blank line
        if header is None:
            header = [h.strip(" \t").lower() for h in row]
            for i, h in enumerate(header):
                if h in ("timestamp", "type", "payment_method", "amount", "sleep_ms") and h not in cols:
                    cols[h] = i
            continue
        reason, tx = check_row(row, cols, len(header), now, max_future_days)
        yield reason, tx, {h: row[i].strip(" \t") for h, i in cols.items() if i < len(row)}


def expect(path, now, max_future_days=MAX_FUTURE_DAYS):
    """(accepted rows, Counter of rejection reasons, {(day, type, method): cents})."""
    totals, bad, good = defaultdict(int), Counter(), 0
    for reason, tx, _ in csv_rows(path, now, max_future_days):
        if reason:
            bad[reason] += 1
        else:
            good += 1
            utc, typ, method, cents = tx
            totals[(utc.strftime("%Y-%m-%d"), typ, method)] += cents
    return good, bad, totals


def print_totals(good, bad, totals, extra=()):
    print("# good %d" % good)
    for r in REASONS:
        print("# bad_%s %d" % (r, bad.get(r, 0)))
    for line in extra:
        print(line)
    for (day, typ, method) in sorted(totals):
        print("%s\t%s\t%s\t%d" % (day, typ, method, totals[(day, typ, method)]))


def maxts(path, now):
    best = max((tx[0] for reason, tx, _ in csv_rows(path, now, MAX_FUTURE_DAYS) if not reason), default=None)
    return best.strftime("%Y-%m-%dT%H:%M:%SZ") if best else ""


def unsorted(path):
    prev = None
    for _, _, f in csv_rows(path, time.time(), MAX_FUTURE_DAYS):
        ts = f.get("timestamp", "")
        if TS_RE.match(ts):
            if prev is not None and ts < prev:
                return True
            prev = ts
    return False


def sleep_total(path):
    """What the importer paces by: valid values only (digits, at most 60000
    ms); txgen's invalid rows carry e.g. 60001."""
    return sum(int(s) for s in (f.get("sleep_ms", "") for _, _, f in csv_rows(path, time.time(), MAX_FUTURE_DAYS))
               if s.isdigit() and int(s) <= 60000)


# --- truths: {day: {type: {method: cents}}} ----------------------------------------

def cells(truth):
    """{(day, type, method): cents} without zero cells."""
    return {(d, t, m): c for d, sides in truth.items() for t, ms in sides.items() for m, c in ms.items() if c}


def from_cells(cs):
    out = {}
    for (d, t, m), c in cs.items():
        if c:
            out.setdefault(d, {}).setdefault(t, {})[m] = c
    return out


def read_expect(path, totals):
    """Adds a txgen --expect file to totals {(day, type, method): cents}."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):  # txgen's "# rows N" summary lines
                continue
            parts = line.split("\t")
            if len(parts) != 4 or parts[1] not in TYPES or not re.match(r"^-?\d+$", parts[3]):
                raise SystemExit("%s:%d: not day<TAB>type<TAB>method<TAB>cents: %r" % (path, n, line))
            totals[(parts[0], parts[1], parts[2])] += int(parts[3])


def load_truth(path):
    """A TRUTH file, JSON or txgen --expect text."""
    with open(path) as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        return json.loads(text)
    totals = defaultdict(int)
    read_expect(path, totals)
    return from_cells(totals)


def truth_of(args):
    """[--csv CSV | EXPECT]... summed; a summary line per CSV on stderr."""
    totals, it = defaultdict(int), iter(args)
    for a in it:
        if a == "--csv":
            path = next(it)
            good, bad, t = expect(path, int(time.time()))
            for k, c in t.items():
                totals[k] += c
            print("# oracle: %s: %d rows accepted, %d records rejected" % (path, good, sum(bad.values())),
                  file=sys.stderr)
        else:
            read_expect(a, totals)
    return from_cells(totals)


def write_tsv(truth, out):
    for (d, t, m), c in sorted(cells(truth).items()):
        out.write("%s\t%s\t%s\t%d\n" % (d, t, m, c))


def days_of(truth):
    days = sorted({d for d, _, _ in cells(truth)})
    if not days:
        raise SystemExit("oracle: the truth holds no day")
    return days


def day_range(a, b):
    d = datetime.date.fromisoformat(a)
    e = datetime.date.fromisoformat(b)
    while d <= e:
        yield d.isoformat()
        d += datetime.timedelta(days=1)


def cells_in(truth, frm, to):
    """The truth restricted to [frm, to], without empty sides or days."""
    return from_cells({k: c for k, c in cells(truth).items() if frm <= k[0] <= to})


def csv_vs_expect(csv_path, expect_path):
    good, bad, mine = expect(csv_path, int(time.time()))
    mine = {k: v for k, v in mine.items() if v}
    theirs = cells(load_truth(expect_path))
    if mine == theirs:
        print("# oracle: %s: %d rows accepted, %d records rejected; agrees with %s"
              % (csv_path, good, sum(bad.values()), expect_path))
        return 0
    for k in sorted(set(mine) ^ set(theirs) | {k for k in mine if k in theirs and mine[k] != theirs[k]})[:10]:
        print("#   %s: python %s, expect file %s" % (k, mine.get(k), theirs.get(k)))
    return 1


# --- the /stats answer ---------------------------------------------------------------

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


def expected_csv(truth, frm, to):
    """date,type,method,amount lines, amounts with exactly two decimals."""
    lines = ["date,type,method,amount"]
    for day in sorted(d for d in truth if frm <= d <= to):
        for t in TYPES:
            m = truth[day].get(t, {})
            lines += ["%s,%s,%s,%d.%02d" % (day, t, k, m[k] // 100, m[k] % 100) for k in sorted(m)]
    return "".join(line + "\r\n" for line in lines)


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


def connect(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def get(conn, path, token=None):
    """One GET on a keep-alive connection.  The api closes a connection idle
    for 500 ms (keep_alive_timeout_ms, api/server.c); on a loaded machine a
    request can cross that close and find the connection gone before any
    answer: it is sent once more, on a new connection (an api that is really
    down refuses that one)."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    for again in (False, True):
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            return r.status, r.read().decode()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            conn.close()
            if again:
                raise


def stats_path(frm, to):
    return "/stats?from_date=%s&to_date=%s" % (frm, to)


def moved(status, body):
    """A 503 saying the archive moved (bounded retries ran out): never an answer."""
    return status == 503 and "moved" in body


def answer_problems(body, want_cells, want_text):
    """Why one 200 body is not exactly the truth (empty list = exact)."""
    try:
        got = to_cents(json.loads(body, parse_float=Decimal))
    except (ValueError, AssertionError, KeyError, TypeError, AttributeError) as e:
        return ["unparsable answer: %s: %s" % (e, body[:300])]
    if got != want_cells:
        return ["day %s: got %s want %s" % (d, got.get(d), want_cells.get(d))
                for d in sorted(set(got) | set(want_cells)) if got.get(d) != want_cells.get(d)]
    if body != want_text:
        return ["same amounts, different text:\n got  %s\n want %s" % (body[:400], want_text[:400])]
    return []


def compare(url, frm, to, truth_file, token=None):
    truth = load_truth(truth_file)
    want_cells, want_text = cells_in(truth, frm, to), expected_body(truth, frm, to)
    conn = connect(url)
    for _ in range(3):
        status, body = get(conn, stats_path(frm, to), token)
        if status != 200:
            print("status %d: %s" % (status, body[:500]), file=sys.stderr)
            return 1
        problems = answer_problems(body, want_cells, want_text)
        for p in problems[:20]:
            print(p, file=sys.stderr)
        if problems:
            return 1
    c = cells(want_cells)
    print("# oracle: /stats %s..%s equals the truth: %d days, %d day/type/method totals, sum %s, exact to the cent"
          % (frm, to, len(want_cells), len(c), Decimal(sum(c.values())).scaleb(-2)))
    return 0


# --- reads under load -------------------------------------------------------------------

def reads(url, frm, to, truth_file, stopfile, min_reads, progress=None, redis_port=None, walk=0, any503=False):
    t = load_truth(truth_file)
    if walk > 0:
        days = list(day_range(frm, to))
        ranges = [(days[i], days[min(i + walk, len(days)) - 1]) for i in range(0, len(days), walk)]
    else:
        ranges = [(frm, to)]
    want = {rg: (cells_in(t, *rg), expected_body(t, *rg)) for rg in ranges}
    conn = connect(url)
    r = redis_client(redis_port) if redis_port else None
    ok = busy = wrong = raced = in_batch = n = 0
    deadline = time.time() + 600
    while (ok < min_reads or not os.path.exists(stopfile)) and time.time() < deadline:
        rg = ranges[n % len(ranges)]
        n += 1
        want_cells, want_text = want[rg]
        before = archive_state(r) if r is not None else None
        status, body = get(conn, stats_path(*rg))
        after = archive_state(r) if r is not None else None
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
        elif moved(status, body) or (any503 and status == 503):
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
    conn = connect(url)
    path = stats_path(frm, to)
    last, n, busy, wrong = {}, 0, 0, 0
    while not os.path.exists(stopfile):
        try:
            status, body = get(conn, path)
        except OSError as e:  # the api is never killed here: a lost connection is a failure
            print("watch: %s" % e, file=sys.stderr)
            wrong += 1
            conn = connect(url)
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
        got = to_cents(json.loads(body, parse_float=Decimal))
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
    seen, t = json.load(open(maxfile)), load_truth(truth_file)
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



# --- an invented scenario over every tier (apiseed) ---------------------------------

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



# --- the stream in Redis (python3-redis) ---------------------------------------------

def redis_client(port):
    import redis  # Debian's python3-redis; only the commands that read Redis need it
    return redis.Redis(host="127.0.0.1", port=int(port))


def archive_state(r):
    return r.get("system:archive_version"), tuple(sorted(r.smembers("system:archive:pending")))


def entries(r, key, page=10000):
    start = "-"
    while True:
        batch = r.xrange(key, start, "+", count=page)
        if not batch:
            return
        for eid, fields in batch:
            yield eid.decode(), {k.decode(): v for k, v in fields.items()}
        ms, seq = batch[-1][0].decode().split("-")
        start = "%s-%d" % (ms, int(seq) + 1)


ENTRY_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z) (deposit|withdrawal) ([a-z0-9_-]{1,32}) "
                      r"(\d{1,10}\.\d{1,2}) (.+)$", re.S)


def entry_words(f):
    """(ts, type, method, cents, src) of a stream entry: the one-field entry
    (tx = "<ts> <type> <method> <amount> <src>", the amount read with Decimal)
    or the previous format (fields ts, type, method, cents, src)."""
    if "tx" in f:
        m = ENTRY_RE.match(f["tx"].decode())
        assert m, f["tx"]
        cents = Decimal(m.group(4)) * 100
        assert cents == int(cents), m.group(4)
        return m.group(1), m.group(2), m.group(3), int(cents), m.group(5)
    return f["ts"].decode(), f["type"].decode(), f["method"].decode(), int(f["cents"]), f["src"].decode()


def stream(port):
    r = redis_client(port)
    totals = defaultdict(int)
    n = 0
    srcs = set()
    for _, f in entries(r, "transactions"):
        n += 1
        ts, typ, method, cents, src = entry_words(f)
        srcs.add(src)
        assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", ts), ts
        totals[(ts[:10], typ, method)] += cents
    bad = Counter(f["reason"].decode() for _, f in entries(r, "transactions:rejected"))
    print_totals(n, bad, totals, ["# entries %d" % n, "# distinct_src %d" % len(srcs)])


def rejected(port):
    for _, f in entries(redis_client(port), "transactions:rejected"):
        raw = f["raw"].decode("utf-8", "replace").replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        print("%s\t%s\t%s\t%s" % (f["reason"].decode(), f["file"].decode(), f["line"].decode(), raw))


# --- the command line -------------------------------------------------------------------

def opt(args, name, default):
    return int(args[args.index(name) + 1]) if name in args else default


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, a = argv[1], argv[2:]
    if cmd == "expect":
        print_totals(*expect(a[0], opt(a, "--now", int(time.time())), opt(a, "--max-future-days", MAX_FUTURE_DAYS)))
    elif cmd == "maxts":
        print(maxts(a[0], opt(a, "--now", int(time.time()))))
    elif cmd == "unsorted":
        return 0 if unsorted(a[0]) else 1
    elif cmd == "sleep-total":
        print(sleep_total(a[0]))
    elif cmd == "truth":
        t = truth_of([x for x in a if x != "--tsv"])
        if "--tsv" in a:
            write_tsv(t, sys.stdout)
        else:
            json.dump(t, sys.stdout, sort_keys=True)
            print()
    elif cmd == "csv-vs-expect":
        return csv_vs_expect(a[0], a[1])
    elif cmd == "agglines":
        for (d, t, m), c in cells(truth_of(a)).items():
            print("agg:%s:%s %s %d" % (d, t, m, c))
    elif cmd == "range":
        days = days_of(load_truth(a[0]))
        print(days[0], days[-1])
    elif cmd == "span":
        days = days_of(load_truth(a[0]))
        print((datetime.date.fromisoformat(days[-1]) - datetime.date.fromisoformat(days[0])).days + 1)
    elif cmd == "scenario":
        scenario(int(a[0]), a[1])
    elif cmd == "body":
        print(expected_body(load_truth(a[0]), a[1], a[2]))
    elif cmd == "body-csv":
        sys.stdout.write(expected_csv(load_truth(a[0]), a[1], a[2]))
    elif cmd == "compare":
        return compare(*a[:4], token=a[4] if len(a) > 4 else None)
    elif cmd == "reads":
        return reads(a[0], a[1], a[2], a[3], a[4], int(a[5]), a[6] if len(a) > 6 else None,
                     a[7] if len(a) > 7 else None, int(a[8]) if len(a) > 8 else 0)
    elif cmd == "reads-failover":  # as reads; any 503 (a dependency unavailable) counts as busy, never as wrong
        return reads(a[0], a[1], a[2], a[3], a[4], int(a[5]), any503=True)
    elif cmd == "watch":
        return watch(*a[:5])
    elif cmd == "bounded":
        return bounded(*a[:2])
    elif cmd == "consistency":
        extra = (int(a[9]), a[10]) if len(a) > 10 else ()
        return consistency(*a[:7], int(a[7]), int(a[8]), *extra)
    elif cmd == "final":
        return final(*a)
    elif cmd == "stream":
        stream(a[0])
    elif cmd == "srcs":
        for _, f in entries(redis_client(a[0]), "transactions"):
            print(entry_words(f)[4])
    elif cmd == "rejected":
        rejected(a[0])
    else:
        print("oracle: unknown command %s\n%s" % (cmd, __doc__), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
