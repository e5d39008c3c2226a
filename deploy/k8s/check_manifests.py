#!/usr/bin/env python3
"""check_manifests.py — what test-k8s.sh asserts about the rendered overlays.

  check_manifests.py VERSION SELF.json TEST.json EXTERNAL.json
  check_manifests.py importer-job TEST.json NAME CSV_PATH
      the overlay's importer Job renamed NAME and reading CSV_PATH (JSON on
      stdout): test-k8s.sh's second import

Each file is an overlay rendered by `kubectl kustomize` and converted to a
JSON List (`kubectl create --dry-run=client -o json`).  Prints one line per
check, "PASS <what>" or "FAIL <what>: <why>"; test-k8s.sh turns them into TAP.
The requirements come from the issue (non-root, read-only root filesystem,
no service-account token, probes on /health and /ready, requests and limits
that fit a 2-core node, Redis with AOF, …), not from the manifests.
"""
import base64
import copy
import json
import sys

CORES = 2000  # millicores of the node
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass"}


def items(path):
    """The objects of a file holding one List or several concatenated objects."""
    text, pos, out, dec = open(path).read(), 0, [], json.JSONDecoder()
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        doc, pos = dec.raw_decode(text, pos)
        out.extend(doc["items"] if doc.get("kind") == "List" else [doc])


def find(objs, kind, name=None):
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def millicores(q):
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def report(ok, what, why=""):
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else ": " + why))


def workloads(objs):
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet", "Job")]


def pod_spec(w):
    return w["spec"]["template"]["spec"]


def check_self(objs, version):
    for kind, name in [("Namespace", "txagg"), ("Deployment", "aggregator"), ("Deployment", "persistor"),
                       ("Deployment", "api"), ("StatefulSet", "redis"), ("StatefulSet", "mongo"),
                       ("Job", "importer"), ("Service", "api"), ("Service", "redis"), ("Service", "mongo"),
                       ("PodDisruptionBudget", "aggregator"), ("PodDisruptionBudget", "persistor"),
                       ("PodDisruptionBudget", "api")]:
        report(len(find(objs, kind, name)) == 1, f"self-contained has {kind} {name}")
    stray = [f"{o['kind']}/{o['metadata']['name']}" for o in objs
             if o["kind"] not in CLUSTER_SCOPED and o["metadata"].get("namespace") != "txagg"]
    report(not stray, "self-contained: every namespaced object is in the namespace txagg", ", ".join(stray))
    report(len(find(objs, "ConfigMap")) == 1 and len(find(objs, "Secret")) == 1, "self-contained has one ConfigMap and one Secret")
    for name in ("aggregator", "api"):
        h = find(objs, "HorizontalPodAutoscaler", name)
        report(len(h) == 1 and h[0]["apiVersion"] == "autoscaling/v2"
               and h[0]["spec"]["scaleTargetRef"]["name"] == name, f"HorizontalPodAutoscaler autoscaling/v2 for {name}")

    problems = []
    for w in workloads(objs):
        n, ps = f"{w['kind']}/{w['metadata']['name']}", pod_spec(w)
        if ps.get("automountServiceAccountToken") is not False:
            problems.append(f"{n}: service-account token mounted")
        psc = ps.get("securityContext", {})
        for c in ps["containers"] + ps.get("initContainers", []):
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
                problems.append(f"{n}/{c['name']}: runAsNonRoot not set")
            if (sc.get("runAsUser", psc.get("runAsUser")) or 0) == 0:
                problems.append(f"{n}/{c['name']}: no non-zero runAsUser")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{n}/{c['name']}: root filesystem writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{n}/{c['name']}: privilege escalation allowed")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{n}/{c['name']}: capabilities not dropped")
            r = c.get("resources", {})
            for k in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    if res not in r.get(k, {}):
                        problems.append(f"{n}/{c['name']}: no {res} {k[:-1]}")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{n}: no RuntimeDefault seccomp profile")
    report(not problems, "every workload: non-root, read-only root fs, no escalation, no capabilities, seccomp, "
           "no service-account token, requests and limits", "; ".join(problems))

    problems = []
    # the api's probes go to its probe port, not to the port slow clients can hold
    ports = {"aggregator": 9101, "persistor": 9102, "api": 8001}
    for name, port in ports.items():
        d = find(objs, "Deployment", name)[0]
        c = pod_spec(d)["containers"][0]
        if c.get("command") != [name]:
            problems.append(f"{name}: command {c.get('command')}")
        if c.get("image") != f"txagg:{version}":
            problems.append(f"{name}: image {c.get('image')}")
        named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        # the api's readiness needs Redis only: hot ranges answer without MongoDB
        ready = "/ready?deps=redis" if name == "api" else "/ready"
        for probe, path in (("livenessProbe", "/health"), ("readinessProbe", ready)):
            g = c.get(probe, {}).get("httpGet", {})
            p = named.get(g.get("port"), g.get("port"))
            if g.get("path") != path or p != port:
                problems.append(f"{name}: {probe} is {g}, want {path} on {port}")
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if name != "api" and env.get("METRICS_PORT") != str(port):
            problems.append(f"{name}: METRICS_PORT {env.get('METRICS_PORT')}")
    job = pod_spec(find(objs, "Job", "importer")[0])["containers"][0]
    if job.get("command") != ["importer"] or job.get("image") != f"txagg:{version}":
        problems.append(f"importer Job: command {job.get('command')} image {job.get('image')}")
    report(not problems, "aggregator/persistor/api/importer run the one image by command; probes on /health "
           "(liveness) and /ready (readiness; the api's /ready?deps=redis) on 9101/9102/8001", "; ".join(problems))

    cm = find(objs, "ConfigMap")[0]["data"]
    report(cm.get("METRICS_HOST") == "0.0.0.0" and cm.get("API_PORT") == "8000" and cm.get("API_PROBE_PORT") == "8001",
           "the ConfigMap binds the listeners to 0.0.0.0, api on 8000, its probes on 8001", str(cm))

    redis = pod_spec(find(objs, "StatefulSet", "redis")[0])["containers"][0]
    a = redis.get("args", []) + redis.get("command", [])
    report("--appendonly" in a and a[a.index("--appendonly") + 1] == "yes", "Redis runs with --appendonly yes", str(a))
    for s in ("redis", "mongo"):
        st = find(objs, "StatefulSet", s)[0]
        report(bool(st["spec"].get("volumeClaimTemplates")), f"StatefulSet {s} keeps its data on a volume claim")

    def cpu(w, replicas=None):
        n = replicas if replicas is not None else w["spec"].get("replicas", 1)
        return n * sum(millicores(c["resources"]["requests"]["cpu"]) for c in pod_spec(w)["containers"])

    total = sum(cpu(w) for w in workloads(objs))
    agg = find(objs, "Deployment", "aggregator")[0]
    scaled = total - cpu(agg) + cpu(agg, 3)
    report(scaled <= CORES * 0.9, f"CPU requests fit a 2-core node: {total}m as deployed, {scaled}m with 3 aggregators "
           f"(<= {CORES * 0.9:.0f}m)", f"{scaled}m")


def strip_test_changes(objs):
    out = []
    for o in copy.deepcopy(objs):
        if o["kind"] == "PersistentVolume":
            continue
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            for c in pod_spec(o)["containers"]:
                c.pop("imagePullPolicy", None)
        out.append(o)
    return sorted(out, key=lambda o: (o["kind"], o["metadata"]["name"]))


def check_test(self_objs, test_objs):
    bad = [f"{w['kind']}/{w['metadata']['name']}" for w in workloads(test_objs)
           if any(c.get("imagePullPolicy") != "Never" for c in pod_spec(w)["containers"])]
    report(not bad, "test overlay: imagePullPolicy Never on every container", ", ".join(bad))
    pvs = find(test_objs, "PersistentVolume")
    claims = sorted(f"{p['spec']['claimRef']['namespace']}/{p['spec']['claimRef']['name']}" for p in pvs)
    want = sorted(["txagg/import-data", "txagg/data-redis-0", "txagg/data-mongo-0"])
    report(claims == want and all("hostPath" in p["spec"] for p in pvs),
           "test overlay: each claim bound to a pre-created hostPath PersistentVolume", str(claims))
    a, b = strip_test_changes(self_objs), strip_test_changes(test_objs)
    diff = [f"{x['kind']}/{x['metadata']['name']}" for x, y in zip(a, b) if x != y]
    if len(a) != len(b):
        diff.append(f"{len(a)} vs {len(b)} objects")
    report(not diff, "test overlay changes nothing else than volumes and imagePullPolicy", ", ".join(diff))


def check_external(ext_objs):
    stray = [f"{o['kind']}/{o['metadata']['name']}" for o in ext_objs
             if o["kind"] not in CLUSTER_SCOPED and o["metadata"].get("namespace") != "txagg"]
    report(not stray, "external: every namespaced object is in the namespace txagg", ", ".join(stray))
    report(not find(ext_objs, "StatefulSet"), "external overlay runs no database in the cluster")
    sec = find(ext_objs, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in (sec[0].get("data", {}) if sec else {}).items()}
    report({"REDIS_HOST", "REDIS_PASSWORD", "MONGODB_URI"} <= set(data) and "replicaSet=" in data.get("MONGODB_URI", ""),
           "external overlay: Redis and a MongoDB replica set come from the Secret", str(sorted(data)))
    envfrom_ok = all(
        [e.get("configMapRef") and "configMapRef" or "secretRef" for e in c.get("envFrom", [])] == ["configMapRef", "secretRef"]
        for w in workloads(ext_objs) for c in pod_spec(w)["containers"])
    report(envfrom_ok, "every service reads the ConfigMap, then the Secret (the Secret's values win)")


def importer_job(test_objs, name, csv_path):
    job = copy.deepcopy(find(test_objs, "Job", "importer")[0])
    job["metadata"]["name"] = name
    c = job["spec"]["template"]["spec"]["containers"][0]
    c["env"] = [e for e in c["env"] if e["name"] != "CSV_PATH"] + [{"name": "CSV_PATH", "value": csv_path}]
    return job


def main(argv):
    if len(argv) == 5 and argv[1] == "importer-job":
        json.dump(importer_job(items(argv[2]), argv[3], argv[4]), sys.stdout)
        return 0
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    version, self_objs, test_objs, ext_objs = argv[1], items(argv[2]), items(argv[3]), items(argv[4])
    check_self(self_objs, version)
    check_test(self_objs, test_objs)
    check_external(ext_objs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
