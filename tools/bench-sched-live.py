#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bind throughput of `podwire-scheduler run` against the API-server double.

Starts tests/kube/apiserver.py with --nodes nodes and --pods pending pods of
podwire-scheduler (made by tools/gen-cluster.py, so the same mix as the
simulate benchmark), starts the scheduler, and times until every pod the
scheduler can place is bound (the number placeable comes from `simulate` on
the same file). Prints binds/s and the double's request counts.

Usage: tools/bench-sched-live.py BUILD_DIR [--nodes N] [--pods N] [--apiserver PY]
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
        with open(cluster) as f:
            items = json.load(f)["items"]
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
        s = subprocess.Popen([sched, "run", "--master", url, "--log-level", "warn"])
        procs.append(s)
        n = 0
        while time.monotonic() - t0 < a.timeout:
            n = sum(1 for p in get(url + "/_test/state")["pods"] if p["spec"].get("nodeName"))
            if n >= placeable:
                break
            time.sleep(0.2)
        dt = time.monotonic() - t0
        reqs = get(url + "/_test/requests")["requests"]
        binds = sum(1 for r in reqs if r["path"].endswith("/binding") and r["status"] == 201)
        conflicts = sum(1 for r in reqs if r["path"].endswith("/binding") and r["status"] != 201)
        print("double: %d nodes, %d pending pods, %d placeable (simulate); bound %d in %.2f s "
              "= %.0f binds/s (from scheduler start, incl. list); %d binding requests 201, "
              "%d other; %d API requests in all" % (a.nodes, a.pods, placeable, n, dt, n / dt,
                                                    binds, conflicts, len(reqs)))
        return 0 if n >= placeable and conflicts == 0 else 1
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
