#!/usr/bin/python3
"""promcheck — the oracle of the metrics and Prometheus-rules tests.

Run with Debian's /usr/bin/python3: it imports python3-prometheus-client (the
strict text parser, `text_string_to_metric_families`) and python3-yaml.  The
families each service must export, with their types, are written out below —
independently of the code — so a rename, a lost metric or a wrong type is a
finding.

  page SERVICE FILE
      FILE is SERVICE's /metrics page (importer, aggregator, persistor, api):
      Python's parser reads it; every family comes once, none is `unknown`,
      the set of families and their types are exactly the expected ones, and a
      counter's samples end in _total.
  help FILE…
      a family on several pages has the same HELP text and TYPE on each
  documented DOC FILE…
      every family of the pages FILE… is named in DOC (the api's /docs page,
      /openapi.json, a markdown file)
  rules RULES
      every txagg metric name in the rules' expressions is one a service exports
  alerts RULES TESTS RUNBOOK
      every alert has summary, description and runbook annotations, a section
      in RUNBOOK headed by its name, and unit tests in TESTS (promtool's format)
      that expect it firing and expect it silent
  alert-state URL NAME
      prints the state of alert NAME from Prometheus's /api/v1/alerts (firing,
      pending, or inactive when absent)
  targets URL JOB…
      every JOB has at least one active target and all its targets are up;
      prints "job up/total" per job

Exit status 0 when there is no finding; findings go to stdout, one a line.
"""
import json
import re
import sys
import urllib.request

COMMON = {
    "txagg_build_info": "gauge",
    "process_resident_memory_bytes": "gauge",
    "txagg_redis_errors_total": "counter",
    "txagg_redis_reconnects_total": "counter",
    "txagg_redis_up": "gauge",
}
MONGO = {
    "txagg_mongo_errors_total": "counter",
    "txagg_mongo_up": "gauge",
}
EXPECTED = {
    "importer": dict(COMMON, **{
        "txagg_importer_rows_read_total": "counter",
        "txagg_importer_rows_skipped_total": "counter",
        "txagg_importer_rows_published_total": "counter",
        "txagg_importer_rows_rejected_total": "counter",
        "txagg_importer_batches_total": "counter",
        "txagg_importer_backpressure_waits_total": "counter",
        "txagg_importer_backlog": "gauge",
    }),
    "aggregator": dict(COMMON, **{
        "txagg_aggregator_entries_applied_total": "counter",
        "txagg_aggregator_rows_counted_total": "counter",
        "txagg_aggregator_batches_total": "counter",
        "txagg_aggregator_claimed_entries_total": "counter",
        "txagg_aggregator_stale_batches_total": "counter",
        "txagg_aggregator_trims_total": "counter",
        "txagg_aggregator_entries_trimmed_total": "counter",
        "txagg_aggregator_rejected_total": "counter",
        "txagg_aggregator_refused_entries_total": "counter",
        "txagg_aggregator_gone_entries_total": "counter",
        "txagg_aggregator_consumers_reaped_total": "counter",
        "txagg_aggregator_dead_letters_added_total": "counter",
        "txagg_aggregator_lag": "gauge",
        "txagg_aggregator_pending": "gauge",
        "txagg_aggregator_virtual_clock_timestamp_seconds": "gauge",
    }),
    "persistor": dict(COMMON, **MONGO, **{
        "txagg_persistor_leader": "gauge",
        "txagg_persistor_lease_acquisitions_total": "counter",
        "txagg_persistor_lease_losses_total": "counter",
        "txagg_persistor_batches_frozen_total": "counter",
        "txagg_persistor_batches_completed_total": "counter",
        "txagg_persistor_day_documents_archived_total": "counter",
        "txagg_persistor_recoveries_total": "counter",
        "txagg_persistor_cycle_duration_seconds": "histogram",
        "txagg_persistor_oldest_hot_day_age_seconds": "gauge",
        "txagg_persistor_retention_seconds": "gauge",
    }),
    "api": dict(COMMON, **MONGO, **{
        "txagg_api_requests_total": "counter",
        "txagg_api_request_duration_seconds": "histogram",
        "txagg_api_redis_failures_total": "counter",
        "txagg_api_consistency_retries_total": "counter",
        "txagg_api_consistency_exhausted_total": "counter",
        "txagg_api_cold_cache_hits_total": "counter",
        "txagg_api_cold_cache_misses_total": "counter",
        "txagg_api_cold_cache_bytes": "gauge",
        "txagg_api_snapshots_total": "counter",
        "txagg_api_mongo_reads_total": "counter",
    }),
}
ALL = {n: t for svc in EXPECTED.values() for n, t in svc.items()}


def family_of(name, typ):
    """The name Python's parser gives a family: counters lose _total."""
    return name[:-len("_total")] if typ == "counter" and name.endswith("_total") else name


def headers(text):
    """{family: (help, type)} from the # HELP / # TYPE lines of a page."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+) ?(.*)$", line)
        if m:
            h = out.setdefault(m.group(2), ["", ""])
            h[0 if m.group(1) == "HELP" else 1] = m.group(3)
    return {k: tuple(v) for k, v in out.items()}


def check_page(service, path):
    from prometheus_client.parser import text_string_to_metric_families
    text = open(path).read()
    findings = []
    try:
        fams = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser refuses the page
        return ["%s: prometheus_client cannot parse the page: %s" % (service, e)]
    seen = {}
    for f in fams:
        seen.setdefault(f.name, []).append(f.type)
        if f.type == "unknown":
            findings.append("%s: family %s has type unknown" % (service, f.name))
        if f.type == "counter":
            for s in f.samples:
                if not s.name.endswith(("_total", "_created")):
                    findings.append("%s: counter sample %s does not end in _total" % (service, s.name))
    for name, types in seen.items():
        if len(types) > 1:
            findings.append("%s: family %s comes %d times (groups: %s)" % (service, name, len(types), types))
    want = {family_of(n, t): t for n, t in EXPECTED[service].items()}
    for name, typ in sorted(want.items()):
        if name not in seen:
            findings.append("%s: expected family %s (%s) is missing" % (service, name, typ))
        elif seen[name][0] != typ:
            findings.append("%s: family %s is a %s, expected a %s" % (service, name, seen[name][0], typ))
    for name in sorted(set(seen) - set(want)):
        findings.append("%s: unexpected family %s (%s)" % (service, name, seen[name][0]))
    return findings


def check_help(paths):
    findings, first = [], {}
    for p in paths:
        for name, ht in headers(open(p).read()).items():
            if name in first and first[name][0] != ht:
                findings.append("%s: HELP/TYPE %r in %s, %r in %s" % (name, ht, p, *first[name]))
            first.setdefault(name, (ht, p))
    return findings


def check_documented(doc, paths):
    text = open(doc).read()
    names = set()
    for p in paths:
        names |= set(headers(open(p).read()))
    return ["%s does not name %s" % (doc, n) for n in sorted(names) if not re.search(r"\b%s\b" % re.escape(n), text)]


def load_yaml(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def rule_list(path):
    return [r for g in load_yaml(path)["groups"] for r in g["rules"]]


def check_rules(path):
    findings = []
    for r in rule_list(path):
        for name in re.findall(r"\b(txagg_[a-z0-9_]+|process_[a-z0-9_]+)", r["expr"]):
            if name not in ALL and ALL.get(re.sub(r"_(bucket|sum|count)$", "", name)) != "histogram":
                findings.append("rule %s uses %s, which no service exports" % (r.get("alert") or r.get("record"), name))
    return findings


def anchor(title):
    """GitHub's anchor of a markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", title.strip().lower()).replace(" ", "-")


def check_alerts(rules, tests, runbook):
    findings = []
    alerts = [r for r in rule_list(rules) if "alert" in r]
    if not alerts:
        return ["no alert in %s" % rules]
    cases = [c for t in load_yaml(tests)["tests"] for c in t.get("alert_rule_test", [])]
    headings = {anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", open(runbook).read(), re.M)}
    for a in alerts:
        name, ann = a["alert"], a.get("annotations", {})
        for k in ("summary", "description", "runbook"):
            if not ann.get(k):
                findings.append("%s has no %s annotation" % (name, k))
        want = anchor(name)
        if want not in headings:
            findings.append("%s has no section '%s' in %s" % (name, name, runbook))
        if ann.get("runbook") and not ann["runbook"].endswith("#" + want):
            findings.append("%s: runbook annotation %s does not point at #%s" % (name, ann["runbook"], want))
        mine = [c for c in cases if c["alertname"] == name]
        if not any(c.get("exp_alerts") for c in mine):
            findings.append("%s: no unit test expects it firing" % name)
        if not any(not c.get("exp_alerts") for c in mine):
            findings.append("%s: no unit test expects it silent" % name)
    return findings


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def alert_state(url, name):
    states = [a["state"] for a in get_json(url + "/api/v1/alerts")["data"]["alerts"] if a["labels"].get("alertname") == name]
    return "firing" if "firing" in states else states[0] if states else "inactive"


def check_targets(url, jobs):
    findings, counts = [], {}
    for t in get_json(url + "/api/v1/targets?state=active")["data"]["activeTargets"]:
        c = counts.setdefault(t["labels"].get("job"), [0, 0])
        c[1] += 1
        c[0] += t["health"] == "up"
    for j in jobs:
        up, total = counts.get(j, [0, 0])
        print("# %s %d/%d" % (j, up, total))
        if total == 0 or up != total:
            findings.append("job %s: %d of %d targets up" % (j, up, total))
    return findings


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "page":
        findings = check_page(args[0], args[1])
    elif cmd == "help":
        findings = check_help(args)
    elif cmd == "documented":
        findings = check_documented(args[0], args[1:])
    elif cmd == "rules":
        findings = check_rules(args[0])
    elif cmd == "alerts":
        findings = check_alerts(*args)
    elif cmd == "alert-state":
        print(alert_state(*args))
        return 0
    elif cmd == "targets":
        findings = check_targets(args[0], args[1:])
    else:
        print("promcheck: unknown command %s" % cmd)
        return 2
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
