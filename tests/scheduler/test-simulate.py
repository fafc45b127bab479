#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""podwire-scheduler simulate: placements and reasons of the scenario files,
--json shape and order, scheduler-name filtering, --policy, --stats, the
cluster generator, and malformed input (clear error, exit 1, no crash).

Usage: test-simulate.py PODWIRE_SCHEDULER DATA_DIR GEN_CLUSTER_PY DEPLOY_YAML
"""
import json
import os
import re
import subprocess
import sys
import tempfile

BIN, DATA, GEN, DEPLOY = sys.argv[1:5]
failures = 0


def fail(what):
    global failures
    failures += 1
    f = sys._getframe(1)
    print("%s:%d: FAIL: %s" % (f.f_code.co_name, f.f_lineno, what), file=sys.stderr)


def run(*args, timeout=60):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode < 0:
        fail("%s: killed by signal %d\n%s" % (args, -p.returncode, p.stderr))
    return p


def simulate(name, *extra):
    p = run("simulate", "--cluster", os.path.join(DATA, name), "--json", *extra)
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (name, p.returncode, p.stderr))
        return []
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        fail("%s: output is not JSON (%s): %r" % (name, e, p.stdout[:300]))
        return []


def expect(name, got, want):
    """want: [(pod, node or None, substring of the reason)] in order."""
    if [g["pod"] for g in got] != [w[0] for w in want]:
        fail("%s: pods considered %s, want %s" % (name, [g["pod"] for g in got],
                                                   [w[0] for w in want]))
        return
    for g, (pod, node, why) in zip(got, want):
        if set(g) != {"pod", "node", "reason"}:
            fail("%s: %s: keys %s" % (name, pod, sorted(g)))
        if g["node"] != node or why not in g["reason"]:
            fail("%s: %s -> %s (%s), want %s with %r" % (name, pod, g["node"], g["reason"],
                                                         node, why))


def test_seed000():
    # Seed 000: DPDK node with 2 interfaces, OvS-DPDK node, plain node.
    expect("seed000", simulate("seed000.json"), [
        ("default/latency-100", None, "0/3 nodes fit: 3 no path <= 100us (best 800us)"),
        ("default/latency-800", "dpdk-node", "path dpdk 800us <= 800us, dpdk 1/2 in use"),
        ("default/latency-3000", "dpdk-node", "path dpdk 800us <= 3000us, dpdk 2/2 in use"),
        ("default/latency-7000", "ovs-node", "path ovs-dpdk 5000us <= 7000us"),
        ("default/latency-20000", "plain-node", "path kernel 10000us <= 20000us; 3/3 nodes fit"),
    ])
    # the text form says the same
    p = run("simulate", "--cluster", os.path.join(DATA, "seed000.json"))
    lines = p.stdout.splitlines()
    if p.returncode or len(lines) != 5 or lines[1] != (
            "default/latency-800 -> dpdk-node: path dpdk 800us <= 800us, dpdk 1/2 in use; "
            "1/3 nodes fit") or not lines[0].startswith("default/latency-100 -> (none): "):
        fail("text output: %r" % p.stdout)


def test_interfaces_run_out():
    expect("interfaces", simulate("interfaces.json"), [
        ("demo/fast-1", "sriov-b", "sriov 1/1 in use"),
        ("demo/fast-2", "dpdk-a", "dpdk 2/2 in use"),  # running-elsewhere holds one
        ("demo/fast-3", None, "1 no free dpdk, 1 no free sriov"),
        ("demo/slow-1", "plain-c", "path kernel"),
    ])
    # --all also considers the pod of another scheduler, which finds nothing left
    got = simulate("interfaces.json", "--all")
    if [g["pod"] for g in got][-1] != "demo/other-scheduler" or got[-1]["node"] is not None:
        fail("--all: %s" % got[-1:])
    got = simulate("interfaces.json", "--scheduler-name", "default-scheduler")
    if [g["pod"] for g in got] != ["demo/other-scheduler"] or got[0]["node"] != "sriov-b":
        fail("--scheduler-name: %s" % got)


def test_extended_resources():
    expect("extended", simulate("extended.json"), [
        ("demo/train-1", "gpu-1", "2/3 nodes fit"),
        ("demo/train-2", "gpu-2", ""),
        ("demo/train-3", "gpu-2", ""),
        ("demo/train-4", None, "3 insufficient example.com/gpu"),
        ("demo/huge-pages", "gpu-2", ""),
        ("demo/huge-pages-2", None, "3 insufficient hugepages-2Mi"),
        ("demo/gpu-fast", None, "2 no path <= 6000us (best 10000us), 1 insufficient example.com/gpu"),
        ("demo/fat", "cpu-only", ""),
        ("demo/fat-2", None, "3 insufficient cpu"),
    ])


def test_colocation():
    expect("colocation", simulate("colocation.json"), [
        ("demo/client", "shm-node", "path shm 3us <= 50us, with peer demo/server"),
        ("demo/client-2", None, "peer demo/server-2 is on no-podwire"),
        ("demo/ping", "shm-node", "for pending peer demo/pong"),
        ("demo/pong", "shm-node", "with peer demo/ping"),
        ("demo/lonely", None, "3 no path <= 100us (best 800us)"),
        # shm meets 3000 us next to the peer: the DPDK interface stays free
        ("demo/relaxed", "shm-node", "path shm"),
    ])


def test_policy_file():
    with tempfile.TemporaryDirectory() as d:
        pol = os.path.join(d, "policy.json")
        with open(pol, "w") as f:
            json.dump({"paths": [{"name": "dpdk", "latencyUs": 50}]}, f)
        got = simulate("seed000.json", "--policy", pol)
        if not got or got[0]["node"] != "dpdk-node" or "dpdk 50us <= 100us" not in got[0]["reason"]:
            fail("--policy: %s" % got[:1])
        with open(pol, "w") as f:
            f.write('{"paths": [{"name": "dpdk", "latencyUs": "fast"}]}')
        p = run("simulate", "--cluster", os.path.join(DATA, "seed000.json"), "--policy", pol)
        if p.returncode != 1 or "latencyUs" not in p.stderr or p.stdout:
            fail("bad policy: %d %r" % (p.returncode, p.stderr))
        p = run("policy", "--policy", pol)
        if p.returncode != 1:
            fail("policy command accepted a bad file")
        p = run("policy")
        if p.returncode or json.loads(p.stdout)["paths"][0]["latencyUs"] != 800:
            fail("policy: %r" % p.stdout[:200])
        # The ConfigMap in deploy/scheduler.yaml is valid and says the defaults.
        with open(DEPLOY) as f:
            m = re.search(r"policy.json: \|\n((?:    .*\n)+)", f.read())
        with open(pol, "w") as f:
            f.write("\n".join(line[4:] for line in m.group(1).splitlines()) if m else "")
        q = run("policy", "--policy", pol)
        if not m or q.returncode or json.loads(q.stdout) != json.loads(p.stdout):
            fail("deploy/scheduler.yaml policy: %r" % q.stderr)


def test_malformed():
    cases = [
        ("not JSON", "{nodes: [", "invalid JSON at line 1"),
        ("truncated", '{"nodes": [{"metadata": {"name": "a"}}], "pods": [{"metadata": {"na',
         "invalid JSON at line 1"),
        ("empty file", "", "invalid JSON"),
        ("top-level array", "[]", "want a v1 List"),
        ("no lists", '{"kind": "List"}', "want a v1 List"),
        ("nodes not an array", '{"nodes": {}}', "want a v1 List"),
        ("item without kind", '{"kind": "List", "items": [{"metadata": {"name": "a"}}]}',
         "items[0]: no kind"),
        ("node without name", '{"nodes": [{"metadata": {}}]}', "nodes[0]: node without metadata.name"),
        ("item not an object", '{"kind": "List", "items": [{"kind": "Node", "metadata": {"name": '
         '"a"}}, 5]}', "items[1]: no kind"),
        ("bad allocatable", '{"nodes": [{"metadata": {"name": "n"}, "status": {"allocatable": '
         '{"memory": "lots"}}}]}', "node n: allocatable memory: bad quantity \"lots\""),
        ("duplicate node", '{"nodes": [{"metadata": {"name": "n"}}, {"metadata": {"name": "n"}}]}',
         "duplicate node n"),
        ("duplicate pod", '{"pods": [{"metadata": {"name": "p"}}, {"metadata": {"name": "p", '
         '"namespace": "default"}}]}', "duplicate pod p"),
        ("bad taint", '{"nodes": [{"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", '
         '"effect": "Sometimes"}]}}]}', "spec.taints"),
        ("pod spec not an object", '{"pods": [{"metadata": {"name": "p"}, "spec": []}]}',
         "spec: want an object"),
        ("labels not strings", '{"nodes": [{"metadata": {"name": "n", "labels": {"a": [1]}}}]}',
         "labels.a: want a string"),
    ]
    with tempfile.TemporaryDirectory() as d:
        for what, text, err in cases:
            path = os.path.join(d, "c.json")
            with open(path, "w") as f:
                f.write(text)
            p = run("simulate", "--cluster", path, "--json")
            if p.returncode != 1 or err not in p.stderr or p.stdout:
                fail("%s: exit %d, stdout %r, stderr %r (want %r)" % (what, p.returncode,
                                                                     p.stdout, p.stderr, err))
        # a pod the scheduler cannot understand is a decision, not an input error
        path = os.path.join(d, "c.json")
        with open(path, "w") as f:
            json.dump({"nodes": [{"metadata": {"name": "n"}, "status": {"allocatable": {
                "cpu": "1", "memory": "1Gi", "pods": "10"}}}],
                "pods": [{"metadata": {"name": "p", "annotations": {"latency": "soon"}},
                          "spec": {"schedulerName": "podwire-scheduler"}},
                         {"metadata": {"name": "q"}, "spec": {
                             "schedulerName": "podwire-scheduler",
                             "containers": [{"name": "c", "resources": {"requests": {
                                 "cpu": "1.5.0"}}}]}}]}, f)
        got = json.loads(run("simulate", "--cluster", path, "--json").stdout)
        if (len(got) != 2 or got[0]["node"] is not None or
                'invalid pod: annotation latency="soon"' not in got[0]["reason"] or
                'bad quantity cpu="1.5.0"' not in got[1]["reason"]):
            fail("invalid pods: %s" % got)
        # missing file, usage errors
        p = run("simulate", "--cluster", os.path.join(d, "nope.json"))
        if p.returncode != 1 or "No such file" not in p.stderr:
            fail("missing file: %d %r" % (p.returncode, p.stderr))
    for args in (["simulate"], ["simulate", "--cluster"], ["simulate", "--bogus"],
                 ["simulate", "--cluster", "x", "extra"], ["frobnicate"], []):
        p = run(*args)
        if p.returncode != 2 or "Usage" not in p.stderr:
            fail("usage %s: %d %r" % (args, p.returncode, p.stderr[:200]))
    p = run("simulate", "--help")
    if p.returncode or "--cluster FILE" not in p.stdout:
        fail("--help")


def test_generated_and_stats():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gen.json")
        subprocess.run([sys.executable, GEN, "--nodes", "200", "--pending", "500", "--bound",
                        "200", "-o", path], check=True, timeout=60)
        p = run("simulate", "--cluster", path, "--json", "--stats")
        if p.returncode:
            fail("generated: exit %d %s" % (p.returncode, p.stderr))
            return
        got = json.loads(p.stdout)
        if len(got) != 500 or sum(1 for g in got if g["node"]) < 400:
            fail("generated: %d decisions, %d placed" % (len(got),
                                                       sum(1 for g in got if g["node"])))
        if "decisions/s" not in p.stderr or "peak RSS" not in p.stderr:
            fail("--stats: %r" % p.stderr)
        # The same input gives the same decisions.
        if json.loads(run("simulate", "--cluster", path, "--json").stdout) != got:
            fail("not deterministic")
        # No node is ever given more pods or cpu than it has, and no device twice.
        with open(path) as f:
            items = json.load(f)["items"]
        nodes = {i["metadata"]["name"]: i for i in items if i["kind"] == "Node"}
        count = {}
        for g in got:
            if g["node"]:
                count[g["node"]] = count.get(g["node"], 0) + 1
                for w in g["reason"].split(", "):
                    if " in use" in w:
                        used, cap = w.split(" ")[1].split("/")
                        if int(used) > int(cap):
                            fail("device overbooked: %s" % g)
        for n, c in count.items():
            if c > int(nodes[n]["status"]["allocatable"]["pods"]):
                fail("node %s got %d pods" % (n, c))


for t in (test_seed000, test_interfaces_run_out, test_extended_resources, test_colocation,
          test_policy_file, test_malformed, test_generated_and_stats):
    t()
print("simulate: %s" % ("FAIL" if failures else "ok"))
sys.exit(1 if failures else 0)
