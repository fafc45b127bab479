#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bind throughput of `podwire-scheduler run` against the API-server double,
or against a real kube-apiserver and etcd (--real).

Makes --nodes nodes and --pods pending pods of podwire-scheduler with
tools/gen-cluster.py (the same mix as the simulate benchmark), starts the
scheduler, and times until every pod the scheduler can place is bound (the
number placeable comes from `simulate` on the same file). Every pod must end
on the node `simulate` chose for it. Prints binds/s.

--real starts etcd and kube-apiserver from the cache tools/kube-build.sh
fills (tests/kube/realkube.py), creates the objects through the API (not
timed), then starts the scheduler with the podwire-scheduler service
account's RBAC from deploy/scheduler.yaml.

Usage: tools/bench-sched-live.py BUILD_DIR [--nodes N] [--pods N] [--apiserver PY]
                                 [--real] [--concurrency N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=500)
    ap.add_argument("--apiserver", default=os.path.join(ROOT, "tests", "kube", "apiserver.py"))
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--real", action="store_true", help="a real kube-apiserver and etcd")
    ap.add_argument("--concurrency", type=int, default=0,
                    help="the scheduler's --concurrency (default: its own)")
    a = ap.parse_args()
    sched = os.path.join(a.build, "src", "scheduler", "podwire-scheduler")
    tmp = tempfile.mkdtemp(prefix="pw-bench-sched-")
    procs = []
    try:
        cluster = os.path.join(tmp, "cluster.json")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen-cluster.py"),
                        "--nodes", str(a.nodes), "--pending", str(a.pods), "--bound", "0",
                        "-o", cluster], check=True)
        sim = json.loads(subprocess.run([sched, "simulate", "--cluster", cluster, "--json"],
                                        check=True, capture_output=True, text=True).stdout)
        placeable = sum(1 for d in sim if d["node"])
        chosen = {d["pod"]: d["node"] for d in sim if d["node"]}
        with open(cluster) as f:
            items = json.load(f)["items"]
        extra = ["--concurrency", str(a.concurrency)] if a.concurrency else []
        if a.real:
            return real(a, sched, tmp, items, placeable, chosen, extra, procs)
        state = os.path.join(tmp, "state.json")
        with open(state, "w") as f:
            json.dump({"nodes": [i for i in items if i["kind"] == "Node"],
                       "pods": [i for i in items if i["kind"] == "Pod"]}, f)
        d = subprocess.Popen([sys.executable, a.apiserver, "--port", "0", "--state", state,
                              "--history", str(4 * (a.nodes + a.pods) + 1000)],
                             stdout=subprocess.PIPE, text=True)
        procs.append(d)
        url = "http://127.0.0.1:%d" % int(d.stdout.readline())
        t0 = time.monotonic()
        s = subprocess.Popen([sched, "run", "--master", url, "--log-level", "warn", *extra])
        procs.append(s)
        n = 0
        while time.monotonic() - t0 < a.timeout:
            n = sum(1 for p in get(url + "/_test/state")["pods"] if p["spec"].get("nodeName"))
            if n >= placeable:
                break
            time.sleep(0.2)
        dt = time.monotonic() - t0
        wrong = misplaced(chosen, {"%s/%s" % (p["metadata"].get("namespace", "default"),
                                              p["metadata"]["name"]): p["spec"].get("nodeName")
                                   for p in get(url + "/_test/state")["pods"]})
        reqs = get(url + "/_test/requests")["requests"]
        binds = sum(1 for r in reqs if r["path"].endswith("/binding") and r["status"] == 201)
        conflicts = sum(1 for r in reqs if r["path"].endswith("/binding") and r["status"] != 201)
        print("double: %d nodes, %d pending pods, %d placeable (simulate); bound %d in %.2f s "
              "= %.0f binds/s (from scheduler start, incl. list); %d binding requests 201, "
              "%d other; %d API requests in all" % (a.nodes, a.pods, placeable, n, dt, n / dt,
                                                    binds, conflicts, len(reqs)))
        if wrong:
            print("%d pods not where simulate put them, e.g. %s" % (len(wrong), wrong[:3]))
        return 0 if n >= placeable and conflicts == 0 and not wrong else 1
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def misplaced(chosen, where):
    """Pods not on the node simulate chose: [(pod, node, simulate's node)]."""
    return [(k, where.get(k), v) for k, v in sorted(chosen.items()) if where.get(k) != v]


def real(a, sched, tmp, items, placeable, chosen, extra, procs):
    from concurrent.futures import ThreadPoolExecutor
    sys.path.insert(0, os.path.join(ROOT, "tests", "kube"))
    import realkube
    bindir = realkube.bindir_find(os.path.join(ROOT, "tools", "kube-build.sh"))
    if not bindir:
        print("no cached control plane: run tools/kube-build.sh as root", file=sys.stderr)
        return 77
    cp = realkube.ControlPlane(tmp, bindir).start()
    try:
        cp.kubectl("apply", "-f", os.path.join(ROOT, "deploy", "scheduler.yaml"))
        nodes = [i for i in items if i["kind"] == "Node"]
        pods = [i for i in items if i["kind"] == "Pod"]
        for p in pods:
            p.pop("status", None)
        for ns in sorted({p["metadata"].get("namespace", "default") for p in pods} - {"default"}):
            cp.create({"kind": "Namespace", "metadata": {"name": ns}})
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(cp.create, nodes))
            list(ex.map(cp.create, pods))

        def where():
            out = cp.must("GET", "/api/v1/pods")["items"]
            return {"%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]):
                    p["spec"].get("nodeName") for p in out}
        rv = cp.must("GET", "/api/v1/pods?limit=1")["metadata"]["resourceVersion"]
        # A watch counts the bindings as they happen (listing 2000 pods over
        # and over would load the server being measured).
        import urllib.request
        req = urllib.request.Request(cp.url + "/api/v1/pods?watch=1&resourceVersion=%s&"
                                     "timeoutSeconds=%d" % (rv, int(a.timeout)))
        req.add_header("Authorization", "Bearer " + cp.tokens["admin"])
        stream = urllib.request.urlopen(req, timeout=a.timeout + 30, context=cp.ctx)
        t0 = time.monotonic()
        s = subprocess.Popen([sched, "run", "--kubeconfig", cp.kubeconfig("scheduler"),
                              "--log-level", "warn", *extra])
        procs.append(s)
        seen = set()
        n = 0
        for line in stream:
            ev = json.loads(line)
            o = ev.get("object", {})
            if ev.get("type") == "MODIFIED" and o.get("spec", {}).get("nodeName"):
                seen.add(o["metadata"]["uid"])
                n = len(seen)
                if n >= placeable:
                    break
            if time.monotonic() - t0 > a.timeout:
                break
        stream.close()
        dt = time.monotonic() - t0
        wrong = misplaced(chosen, where())

        def scheduled_events():
            return sum(1 for e in cp.must("GET", "/api/v1/events")["items"]
                       if e["reason"] == "Scheduled")
        at_bound = scheduled_events()
        # Scheduled events trail the binds (they wait until no bind does).
        ev = at_bound
        while ev < n and time.monotonic() - t0 < a.timeout:
            time.sleep(0.2)
            ev = scheduled_events()
        dt_ev = time.monotonic() - t0
        print("kube-apiserver %s + etcd: %d nodes, %d pending pods, %d placeable (simulate); "
              "bound %d in %.2f s = %.0f binds/s (from scheduler start, incl. list); "
              "%d Scheduled events by then, %d after %.2f s; %d pods not where simulate put "
              "them%s" % (cp.must("GET", "/version")["gitVersion"], a.nodes, a.pods, placeable,
                          n, dt, n / dt, at_bound, ev, dt_ev, len(wrong),
                          (", e.g. %s" % wrong[:3]) if wrong else ""))
        return 0 if n >= placeable and not wrong else 1
    finally:
        for p in reversed(procs):  # the scheduler goes before its server
            p.terminate()
            p.wait()
        cp.stop()


if __name__ == "__main__":
    sys.exit(main())
