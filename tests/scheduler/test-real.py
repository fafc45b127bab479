#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""podwire-scheduler against a real kube-apiserver and etcd (tests/kube/realkube.py).

Usage: test-real.py SCENARIO PODWIRE_SCHEDULER KUBE_BUILD DATA_DIR DEPLOY_DIR
SCENARIO:
  seed     seed 000's placement, retries when the cluster changes, one folded
           FailedScheduling Event, PodScheduled=False patched only on change,
           pods of other schedulers left alone; as the podwire-scheduler
           service account with exactly deploy/scheduler.yaml's RBAC
  leader   two replicas with a Lease: one binds; the other takes over when it
           leaves
  restart  kube-apiserver restarts: every watch is cut; pods created after it
           are bound, each exactly once
  deploy   every object in deploy/ is accepted by the server (dry run), then
           applied

Exit 0 pass, 1 fail, 77 skip (no cached control plane: run tools/kube-build.sh
as root, which `make test` does).
"""
import glob
import json
import os
import sys
import time

SCENARIO, BIN, KUBE_BUILD, DATA, DEPLOY = sys.argv[1:6]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, ".."), os.path.join(HERE, "..", "kube")]
import pwtest  # noqa: E402
import realkube  # noqa: E402
from schedobj import node, pod  # noqa: E402

RUN = pwtest.Run("pw-sched-real-")
TMP = RUN.tmp
fail = RUN.fail


def wait_for(cond, timeout=30.0):
    return pwtest.wait_for(cond, timeout, 0.2)


def Sched(*args, name="sched"):
    return pwtest.Daemon(RUN, [BIN, *args], name)


def where(cp, ns="default"):
    items = cp.must("GET", "/api/v1/namespaces/%s/pods" % ns)["items"]
    return {"%s/%s" % (ns, p["metadata"]["name"]): p["spec"].get("nodeName") for p in items}


def bound(cp, keys):
    w = where(cp)
    return all(w.get(k) for k in keys)


def check_on(cp, want, sched):
    w = where(cp)
    for k, n in want.items():
        if w.get(k) != n:
            fail("%s on %s, want %s\n%s" % (k, w.get(k), n, sched.text()))


def events(cp, name, reason):
    items = cp.must("GET", "/api/v1/namespaces/default/events")["items"]
    return [e for e in items if e["involvedObject"]["name"] == name and e["reason"] == reason]


def start(rbac=("scheduler.yaml",)):
    bindir = realkube.bindir_find(KUBE_BUILD)
    if not bindir:
        print("SKIP: no cached Kubernetes control plane (run tools/kube-build.sh as root)")
        sys.exit(77)
    cp = realkube.ControlPlane(TMP, bindir).start()
    for f in rbac:
        cp.kubectl("apply", "-f", os.path.join(DEPLOY, f))
    return cp


def scenario_seed():
    cp = start()
    with open(os.path.join(DATA, "seed000.json")) as f:
        items = json.load(f)["items"]
    for it in items:
        if it["kind"] == "Node":
            cp.create(it)
    for it in items:
        if it["kind"] == "Pod":
            it.pop("status", None)
            cp.create(it)
    s = Sched("run", "--kubeconfig", cp.kubeconfig("scheduler"))
    want = {"default/latency-800": "dpdk-node", "default/latency-3000": "dpdk-node",
            "default/latency-7000": "ovs-node", "default/latency-20000": "plain-node"}
    if not wait_for(lambda: bound(cp, want)):
        fail("seed pods not bound: %s\n%s" % (where(cp), s.text()))
        return
    check_on(cp, want, s)
    ev = wait_for(lambda: events(cp, "latency-100", "FailedScheduling"))
    if not ev or ev[0]["type"] != "Warning" or "no path <= 100us" not in ev[0]["message"]:
        fail("FailedScheduling event: %s" % ev)
    p = cp.must("GET", "/api/v1/namespaces/default/pods/latency-100")
    cond = [c for c in p["status"].get("conditions", []) if c["type"] == "PodScheduled"]
    if not cond or cond[0]["status"] != "False" or cond[0].get("reason") != "Unschedulable":
        fail("PodScheduled condition: %s" % p["status"])
    if where(cp).get("default/latency-100"):
        fail("latency-100 was bound")
    if not wait_for(lambda: events(cp, "latency-800", "Scheduled")):
        fail("no Scheduled event")

    # Retries fold: the cluster changes (a pod goes) but latency-100 fails the
    # same way; one Event counts them, and the status keeps its one patch.
    rv0 = cp.must("GET", "/api/v1/namespaces/default/pods/latency-100")["metadata"][
        "resourceVersion"]
    for i in range(2):
        cp.create(pod("other-%d" % i, sched="default-scheduler", node_name="plain-node"))
        cp.must("DELETE", "/api/v1/namespaces/default/pods/other-%d?gracePeriodSeconds=0" % i)
        time.sleep(1.3 * 2 ** i)
    ev = wait_for(lambda: [e for e in events(cp, "latency-100", "FailedScheduling")
                           if e.get("count", 1) >= 3], 10)
    allev = events(cp, "latency-100", "FailedScheduling")
    if not ev or len(allev) != 1:
        fail("want one FailedScheduling event with count >= 3: %s\n%s" % (allev, s.text()))
    rv1 = cp.must("GET", "/api/v1/namespaces/default/pods/latency-100")["metadata"][
        "resourceVersion"]
    if rv1 != rv0:
        fail("latency-100 was written again (resourceVersion %s -> %s) with nothing new" %
             (rv0, rv1))

    # interfaces ran out: a 900 us pod waits ...
    cp.create(pod("latency-900", {"latency": "900"}))
    ev = wait_for(lambda: events(cp, "latency-900", "FailedScheduling"))
    if not ev or "no free dpdk" not in ev[0]["message"]:
        fail("latency-900 event: %s" % ev)
    # ... until a DPDK pod goes away and gives its interface back
    cp.must("DELETE", "/api/v1/namespaces/default/pods/latency-800?gracePeriodSeconds=0")
    if not wait_for(lambda: bound(cp, ["default/latency-900"]), 25):
        fail("latency-900 not bound after an interface was freed\n%s" % s.text())
    check_on(cp, {"default/latency-900": "dpdk-node"}, s)
    # a node with a measured 50 us kernel path appears: latency-100 is retried and fits
    cp.create(node("fast-node", {"podwire.io/kernel-rtt-ns": "50000"}))
    if not wait_for(lambda: bound(cp, ["default/latency-100"]), 25):
        fail("latency-100 not retried after a node was added\n%s" % s.text())
    check_on(cp, {"default/latency-100": "fast-node"}, s)
    # co-location: a 100 us pod next to its peer on a podwire node
    cp.create(node("shm-node", {"podwire.io/podwired": "true"}))
    cp.create(pod("server", node_name="shm-node"))
    cp.create(pod("client", {"podwire.io/max-latency-us": "100", "podwire.io/peer": "server"}))
    if not wait_for(lambda: bound(cp, ["default/client"])):
        fail("client not bound\n%s" % s.text())
    check_on(cp, {"default/client": "shm-node"}, s)
    # pods of other schedulers are left alone
    cp.create(pod("not-mine", sched="default-scheduler"))
    time.sleep(1.0)
    if where(cp).get("default/not-mine"):
        fail("bound a pod of another scheduler")
    if "403" in s.text() or "forbidden" in s.text().lower():
        fail("RBAC refused a request of the scheduler:\n%s" % s.text())
    if s.stop() != 0:
        fail("exit status after SIGTERM\n%s" % s.text())


def scenario_leader():
    cp = start()
    for i in range(3):
        cp.create(node("n%d" % i))
    common = ["run", "--kubeconfig", cp.kubeconfig("scheduler"), "--leader-elect",
              "--lease-namespace", "kube-system", "--lease-name", "podwire-scheduler",
              "--lease-duration", "3"]
    a = Sched(*common, "--identity", "replica-a", name="a")
    b = Sched(*common, "--identity", "replica-b", name="b")

    def holder():
        code, lease = cp.api("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/"
                             "leases/podwire-scheduler")
        return lease["spec"].get("holderIdentity") if code == 200 else None
    if not wait_for(holder):
        fail("nobody took the lease\n%s\n%s" % (a.text(), b.text()))
        return
    keys = ["default/p-%d" % i for i in range(20)]
    for k in keys:
        cp.create(pod(k.split("/")[1]))
    if not wait_for(lambda: bound(cp, keys)):
        fail("pods not bound\n%s\n%s" % (a.text(), b.text()))
    leader, other = (a, b) if holder() == "replica-a" else (b, a)
    if other.text().count("bound default/") or leader.text().count("bound default/") != 20:
        fail("binds: leader %d, other %d\n%s\n%s" % (
            leader.text().count("bound default/"), other.text().count("bound default/"),
            a.text(), b.text()))
    if leader.stop() != 0:
        fail("leader exit status")
    name = "replica-a" if other is a else "replica-b"
    if not wait_for(lambda: holder() == name, 15):
        fail("%s did not take over (holder %s)\n%s" % (name, holder(), other.text()))
    more = ["default/q-%d" % i for i in range(5)]
    for k in more:
        cp.create(pod(k.split("/")[1]))
    if not wait_for(lambda: bound(cp, more)):
        fail("pods not bound after failover\n%s" % other.text())
    if "conflict on bind" in a.text() + b.text():
        fail("a bind conflicted:\n%s\n%s" % (a.text(), b.text()))
    if other.stop() != 0:
        fail("exit status")


def scenario_restart():
    cp = start()
    for i in range(3):
        cp.create(node("plain-%d" % i))
    cp.create(node("dpdk-0", {"podwire.io/dpdk-interfaces": "4"}))
    cp.create(pod("early", {"latency": "1000"}))
    s = Sched("run", "--kubeconfig", cp.kubeconfig("scheduler"))
    if not wait_for(lambda: bound(cp, ["default/early"])):
        fail("early not bound\n%s" % s.text())
    # The server goes away for a while; the scheduler keeps retrying its watches.
    cp.stop_apiserver()
    time.sleep(2)
    cp.restart_apiserver()
    new = ["default/after-%d" % i for i in range(12)]
    for i, k in enumerate(new):
        cp.create(pod(k.split("/")[1], {"latency": str(1000 if i < 3 else 20000)}))
    if not wait_for(lambda: bound(cp, new), 60):
        fail("pods created after the restart not bound\n%s" % s.text())
    w = where(cp)
    dpdk = sorted(k for k in new if w.get(k) == "dpdk-0")
    if dpdk != sorted(new[:3]):  # early holds the 4th interface
        fail("pods on dpdk-0: %s (want %s)" % (dpdk, new[:3]))
    text = s.text()
    if "watch" not in text:
        fail("no watch error logged across the restart:\n%s" % text)
    if "conflict on bind" in text:
        fail("a bind conflicted:\n%s" % text)
    if s.p.poll() is not None:
        fail("scheduler died: %s" % text)
    if s.stop() != 0:
        fail("exit status after SIGTERM\n%s" % text)


def scenario_deploy():
    cp = start(rbac=())
    files = sorted(glob.glob(os.path.join(DEPLOY, "*.yaml")))
    if not files:
        fail("no manifests in %s" % DEPLOY)
    # A dry run creates no namespace: make the manifests' own first.
    for f in files:
        out = cp.kubectl("create", "--dry-run=client", "-o", "name", "-f", f)
        for line in out.stdout.split():
            if line.startswith("namespace/"):
                cp.kubectl("create", "namespace", line.split("/", 1)[1], check=False)
    for f in files:
        out = cp.kubectl("apply", "--dry-run=server", "-f", f, check=False)
        if out.returncode != 0:
            fail("%s refused (dry run): %s%s" % (os.path.basename(f), out.stdout, out.stderr))
    for f in files:
        out = cp.kubectl("apply", "-f", f, check=False)
        if out.returncode != 0:
            fail("%s refused: %s%s" % (os.path.basename(f), out.stdout, out.stderr))
    # What the service accounts may do, as the server's RBAC decides it.
    for user, verb, res, ok in [("scheduler", "create", "pods/binding", True),
                                ("scheduler", "delete", "pods", False),
                                ("nfd", "patch", "nodes", True),
                                ("nfd", "create", "pods/binding", False)]:
        r, _, sub = res.partition("/")
        out = cp.kubectl("auth", "can-i", verb, r, *(["--subresource", sub] if sub else []),
                         user=user, check=False)
        if (out.stdout.strip() == "yes") != ok:
            fail("%s can-i %s %s: %s" % (user, verb, res, out.stdout.strip()))


{"seed": scenario_seed, "leader": scenario_leader, "restart": scenario_restart,
 "deploy": scenario_deploy}[SCENARIO]()
print("real %s: %s" % (SCENARIO, "FAIL" if RUN.failures else "ok"))
sys.exit(1 if RUN.failures else 0)
