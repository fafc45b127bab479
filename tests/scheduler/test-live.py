#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""podwire-scheduler run (and the extender) against the API-server double.

Usage: test-live.py SCENARIO PODWIRE_SCHEDULER APISERVER_PY DATA_DIR
SCENARIO: seed | restart | malformed | leader | extender | events

Each scenario starts its own double (127.0.0.1, a free port) and scheduler
processes, checks the double's request log and objects, and stops everything
at exit, also on failure. Exit 0 pass, 1 fail.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

SCENARIO, BIN, APISERVER, DATA = sys.argv[1:5]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..")]
import pwtest  # noqa: E402
from schedobj import node, pod  # noqa: E402
RUN = pwtest.Run("pw-sched-live-")
TMP = RUN.tmp
fail = RUN.fail
wait_for = pwtest.wait_for


def http(method, url, body=None, headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Double:
    def __init__(self, state, token=None):
        path = os.path.join(TMP, "state-%d.json" % len(RUN.procs))
        with open(path, "w") as f:
            json.dump(state, f)
        args = [sys.executable, APISERVER, "--port", "0", "--state", path,
                "--bookmark-interval", "0.5"]
        if token:
            args += ["--token", token]
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(
            os.path.join(TMP, "apiserver.log"), "w"), text=True)
        RUN.track(self.p)
        self.port = int(self.p.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def ctl(self, method, path, body=None):
        code, out = http(method, self.url + "/_test/" + path, body)
        if code != 200:
            raise RuntimeError("/_test/%s: %d %s" % (path, code, out))
        return json.loads(out)

    def state(self):
        return self.ctl("GET", "state")

    def pods(self):
        return {"%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]): p
                for p in self.state()["pods"]}

    def requests(self):
        return self.ctl("GET", "requests")["requests"]

    def bindings(self):
        """pod key -> list of (status, node) of its binding requests."""
        out = {}
        for r in self.requests():
            m = re.match(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/binding$", r["path"])
            if r["method"] == "POST" and m:
                node = (r.get("body") or {}).get("target", {}).get("name")
                out.setdefault(m.group(1) + "/" + m.group(2), []).append((r["status"], node))
        return out

    def events(self, reason):
        return [e for e in self.state()["events"] if e.get("reason") == reason]


def Sched(*args, name="sched"):
    return pwtest.Daemon(RUN, [BIN, *args], name)


def bound(d, keys):
    pods = d.pods()
    return all(pods.get(k, {}).get("spec", {}).get("nodeName") for k in keys)


def check_once(d, keys, where=None):
    """Every pod in keys was bound by exactly one successful binding, to where it runs."""
    b, pods = d.bindings(), d.pods()
    for k in keys:
        ok = [n for st, n in b.get(k, []) if st == 201]
        node_name = pods.get(k, {}).get("spec", {}).get("nodeName")
        if len(ok) != 1 or ok[0] != node_name:
            fail("%s: successful bindings %s, runs on %s (all: %s)" % (k, ok, node_name,
                                                                      b.get(k)))
        elif where and where.get(k) and node_name != where[k]:
            fail("%s: on %s, want %s" % (k, node_name, where[k]))


def seed_state():
    with open(os.path.join(DATA, "seed000.json")) as f:
        items = json.load(f)["items"]
    return {"nodes": [i for i in items if i["kind"] == "Node"],
            "pods": [i for i in items if i["kind"] == "Pod"]}


def scenario_seed():
    token = "t0k3n"
    d = Double(seed_state(), token=token)
    kc = os.path.join(TMP, "kubeconfig.json")
    with open(kc, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                   "clusters": [{"name": "k", "cluster": {"server": d.url}}],
                   "users": [{"name": "u", "user": {"token": token}}],
                   "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}, f)
    s = Sched("run", "--kubeconfig", kc)
    want = {"default/latency-800": "dpdk-node", "default/latency-3000": "dpdk-node",
            "default/latency-7000": "ovs-node", "default/latency-20000": "plain-node"}
    if not wait_for(lambda: bound(d, want)):
        fail("seed pods not bound: %s\n%s" % ({k: p["spec"].get("nodeName")
                                               for k, p in d.pods().items()}, s.text()))
        return
    check_once(d, want, want)
    # 100 us: a Warning event and PodScheduled=False/Unschedulable, no binding
    ev = wait_for(lambda: [e for e in d.events("FailedScheduling")
                           if e["involvedObject"]["name"] == "latency-100"])
    if not ev or ev[0]["type"] != "Warning" or "no path <= 100us" not in ev[0]["message"]:
        fail("FailedScheduling event: %s" % ev)
    cond = wait_for(lambda: [c for c in d.pods()["default/latency-100"].get("status", {}).get(
        "conditions", []) if c["type"] == "PodScheduled" and c["status"] == "False"])
    if not cond or cond[0].get("reason") != "Unschedulable":
        fail("PodScheduled condition: %s" % d.pods()["default/latency-100"].get("status"))
    if d.bindings().get("default/latency-100"):
        fail("latency-100 had a binding request")
    if not d.events("Scheduled"):
        fail("no Scheduled events")

    # interfaces ran out: a 900 us pod waits ...
    d.ctl("POST", "objects", {"pods": [pod("latency-900", {"latency": "900"})]})
    ev = wait_for(lambda: [e for e in d.events("FailedScheduling")
                           if e["involvedObject"]["name"] == "latency-900"])
    if not ev or "no free dpdk" not in ev[0]["message"]:
        fail("latency-900 event: %s" % ev)
    # ... until a DPDK pod goes away and gives its interface back
    d.ctl("DELETE", "objects/pods/default/latency-800")
    if not wait_for(lambda: bound(d, ["default/latency-900"]), 25):
        fail("latency-900 not bound after an interface was freed\n%s" % s.text())
    check_once(d, ["default/latency-900"], {"default/latency-900": "dpdk-node"})
    # a node with a measured 50 us kernel path appears: the 100 us pod is retried and fits
    d.ctl("POST", "objects", {"nodes": [node("fast-node", {"podwire.io/kernel-rtt-ns": "50000"})]})
    if not wait_for(lambda: bound(d, ["default/latency-100"]), 25):
        fail("latency-100 not retried after a node was added\n%s" % s.text())
    check_once(d, ["default/latency-100"], {"default/latency-100": "fast-node"})
    # co-location through the API: a 50 us pod next to its peer on a podwire node
    d.ctl("POST", "objects", {"nodes": [node("shm-node", {"podwire.io/podwired": "true"})]})
    srv = pod("server")
    srv["spec"]["nodeName"] = "shm-node"
    d.ctl("POST", "objects", {"pods": [srv]})
    d.ctl("POST", "objects", {"pods": [pod("client", {"podwire.io/max-latency-us": "100",
                                                      "podwire.io/peer": "server"})]})
    if not wait_for(lambda: bound(d, ["default/client"])):
        fail("client not bound")
    check_once(d, ["default/client"], {"default/client": "shm-node"})
    # pods of other schedulers are left alone
    d.ctl("POST", "objects", {"pods": [pod("not-mine", sched="default-scheduler")]})
    time.sleep(1.0)
    if d.bindings().get("default/not-mine"):
        fail("bound a pod of another scheduler")
    # every request carried the token
    if any(r.get("auth") != token for r in d.requests()):
        fail("a request without the token")
    st = s.stop()
    if st != 0:
        fail("exit status %s after SIGTERM\n%s" % (st, s.text()))


def scenario_restart():
    nodes = [node("plain-%d" % i) for i in range(3)] + [
        node("dpdk-0", {"podwire.io/dpdk-interfaces": "4"})]
    d = Double({"nodes": nodes, "pods": [pod("early", {"latency": "1000"})]})
    s = Sched("run", "--master", d.url, "--log-level", "debug")
    if not wait_for(lambda: bound(d, ["default/early"])):
        fail("early not bound\n%s" % s.text())
    wait_for(lambda: d.ctl("GET", "watches")["open"] >= 2)
    # The API server "restarts": every watch is cut and the history is gone,
    # so resuming from the old resourceVersion gets 410 and the scheduler re-lists.
    d.ctl("POST", "restart", {"compact": True})
    new = ["default/after-%d" % i for i in range(12)]
    d.ctl("POST", "objects", {"pods": [pod(k.split("/")[1], {"latency": str(
        1000 if i < 3 else 20000)}) for i, k in enumerate(new)]})
    if not wait_for(lambda: bound(d, new), 30):
        fail("pods created during the restart not bound\n%s" % s.text())
    check_once(d, new + ["default/early"])
    where = {k: p["spec"].get("nodeName") for k, p in d.pods().items()}
    dpdk = [k for k in new if where.get(k) == "dpdk-0"]
    if dpdk != new[:3]:  # early holds the 4th interface; 20000-us pods stay off it
        fail("after re-list, pods on dpdk-0: %s (want %s)" % (dpdk, new[:3]))
    if s.text().count("pod list:") < 2:
        fail("no re-list after 410:\n%s" % s.text())
    # An in-stream ERROR 410 works the same way.
    d.ctl("POST", "inject", {"what": "gone"})
    d.ctl("POST", "objects", {"pods": [pod("after-gone")]})
    if not wait_for(lambda: bound(d, ["default/after-gone"]), 30):
        fail("after-gone not bound\n%s" % s.text())
    check_once(d, ["default/after-gone"])
    # Binding fails twice with 500: retried with backoff, bound once.
    d.ctl("POST", "fail", {"count": 2, "code": 500, "match": "/binding"})
    d.ctl("POST", "objects", {"pods": [pod("flaky")]})
    if not wait_for(lambda: bound(d, ["default/flaky"]), 30):
        fail("flaky not bound after 500s\n%s" % s.text())
    b = d.bindings()["default/flaky"]
    if [st for st, _ in b] != [500, 500, 201]:
        fail("flaky bindings: %s" % b)
    # 409: a stale event shows a bound pod as pending; the bind conflicts, the
    # scheduler re-reads the pod and moves on.
    raced = pod("raced")
    raced["spec"]["nodeName"] = "plain-2"
    d.ctl("POST", "objects", {"pods": [raced]})
    wait_for(lambda: d.ctl("GET", "watches")["open"] >= 2)
    time.sleep(0.5)
    stale = d.pods()["default/raced"]
    del stale["spec"]["nodeName"]
    stale["kind"] = "Pod"
    d.ctl("POST", "inject", {"what": "raw", "data": json.dumps(
        {"type": "MODIFIED", "object": stale}) + "\n"})
    if not wait_for(lambda: d.bindings().get("default/raced")):
        fail("no bind attempt for the stale pod\n%s" % s.text())
    time.sleep(1.5)
    b = d.bindings().get("default/raced")
    if not b or len(b) != 1 or b[0][0] != 409:
        fail("raced: %s" % b)
    if d.pods()["default/raced"]["spec"].get("nodeName") != "plain-2":
        fail("raced moved: %s" % d.pods()["default/raced"]["spec"])
    if "conflict on bind" not in s.text():
        fail("no conflict in the log\n%s" % s.text())
    if s.p.poll() is not None:
        fail("scheduler died: %s" % s.text())
    if s.stop() != 0:
        fail("exit status after SIGTERM\n%s" % s.text())


def scenario_malformed():
    d = Double({"nodes": [node("n1"), node("n2", {"podwire.io/ovs-dpdk": "true"})], "pods": []})
    s = Sched("run", "--master", d.url)
    wait_for(lambda: d.ctl("GET", "watches")["open"] >= 2)
    d.ctl("POST", "objects", {"pods": [pod("first")]})
    if not wait_for(lambda: bound(d, ["default/first"])):
        fail("first not bound\n%s" % s.text())
    # A line that is not JSON, a line cut in half with the connection, garbage
    # JSON objects, and an event whose pod is broken: none may bind anything.
    injections = [
        {"what": "malformed"},
        {"what": "raw", "data": '{"type":"ADDED","object":{"kind":"Pod","metadata":{}}}\n'},
        {"what": "raw", "data": '{"type":"MODIFIED","object":[1,2,3]}\n'},
        {"what": "raw", "data": '[]\n'},
        {"what": "raw", "data": '{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":'
                                '"evil","namespace":"default"},"spec":{"schedulerName":'
                                '"podwire-scheduler","containers":5}}}\n'},
        {"what": "truncate"},
    ]
    for inj in injections:
        wait_for(lambda: d.ctl("GET", "watches")["open"] >= 2, 15)
        d.ctl("POST", "inject", inj)
        time.sleep(0.3)
    if s.p.poll() is not None:
        fail("scheduler died on malformed input (status %s)\n%s" % (s.p.returncode, s.text()))
        return
    text = s.text()
    for needle in ("watch", "retrying"):
        if needle not in text:
            fail("no %r in the log:\n%s" % (needle, text))
    later = ["default/later-%d" % i for i in range(5)]
    d.ctl("POST", "objects", {"pods": [pod(k.split("/")[1], {"latency": "6000"}) for k in later]})
    if not wait_for(lambda: bound(d, later), 30):
        fail("pods after malformed input not bound\n%s" % s.text())
    check_once(d, later + ["default/first"], {k: "n2" for k in later})
    b = d.bindings()
    extra = set(b) - set(later) - {"default/first"}
    if any(st == 201 for k in extra for st, _ in b[k]):
        fail("a binding for a pod that does not exist: %s" % {k: b[k] for k in extra})
    if s.stop() != 0:
        fail("exit status after SIGTERM\n%s" % s.text())


def scenario_leader():
    d = Double({"nodes": [node("n%d" % i) for i in range(3)], "pods": []})
    common = ["run", "--master", d.url, "--leader-elect", "--lease-namespace", "kube-system",
              "--lease-name", "podwire-scheduler", "--lease-duration", "3"]
    a = Sched(*common, "--identity", "replica-a", name="a")
    b = Sched(*common, "--identity", "replica-b", name="b")

    def holder():
        ls = [x for x in d.state()["leases"] if x["metadata"]["name"] == "podwire-scheduler"]
        return ls[0]["spec"].get("holderIdentity") if ls else None
    if not wait_for(holder):
        fail("nobody took the lease\n%s\n%s" % (a.text(), b.text()))
        return
    keys = ["default/p-%d" % i for i in range(20)]
    d.ctl("POST", "objects", {"pods": [pod(k.split("/")[1]) for k in keys]})
    if not wait_for(lambda: bound(d, keys), 30):
        fail("pods not bound\n%s\n%s" % (a.text(), b.text()))
    check_once(d, keys)
    leader, other = (a, b) if holder() == "replica-a" else (b, a)
    if other.text().count("bound default/") or not leader.text().count("bound default/"):
        fail("the non-leader bound pods:\n%s\n%s" % (a.text(), b.text()))
    # the leader leaves (and gives the lease up); the other takes over
    if leader.stop() != 0:
        fail("leader exit status")
    name = "replica-a" if other is a else "replica-b"
    if not wait_for(lambda: holder() == name, 15):
        fail("%s did not take over (holder %s)\n%s" % (name, holder(), other.text()))
    more = ["default/q-%d" % i for i in range(5)]
    d.ctl("POST", "objects", {"pods": [pod(k.split("/")[1]) for k in more]})
    if not wait_for(lambda: bound(d, more), 30):
        fail("pods not bound after failover\n%s" % other.text())
    check_once(d, keys + more)
    if [st for k, v in d.bindings().items() for st, _ in v if st != 201]:
        fail("failed binding requests: %s" % d.bindings())
    if other.stop() != 0:
        fail("exit status")


def scenario_events():
    """Retries of an unschedulable pod fold into one Event; the status is patched once."""
    d = Double({"nodes": [node("n1"), node("n2")], "pods": []})
    s = Sched("run", "--master", d.url)
    wait_for(lambda: d.ctl("GET", "watches")["open"] >= 2)
    d.ctl("POST", "objects", {"pods": [pod("huge", cpu="64")]})
    ev = wait_for(lambda: [e for e in d.events("FailedScheduling")
                           if e["involvedObject"]["name"] == "huge"])
    if not ev:
        fail("no FailedScheduling event\n%s" % s.text())
        return
    # Each deletion changes the cluster: the pod is tried again after its backoff
    # (1 s, 2 s, 4 s), and fails the same way.
    for i in range(3):
        gone = pod("gone-%d" % i, sched="default-scheduler")
        gone["spec"]["nodeName"] = "n1"
        d.ctl("POST", "objects", {"pods": [gone]})
        d.ctl("DELETE", "objects/pods/default/gone-%d" % i)
        time.sleep(1.2 * 2 ** i)
    evs = [e for e in d.events("FailedScheduling") if e["involvedObject"]["name"] == "huge"]
    if len(evs) != 1 or evs[0].get("count", 0) < 3:
        fail("want one FailedScheduling event with count >= 3: %s\n%s" % (evs, s.text()))
    reqs = d.requests()
    posts = [r for r in reqs if r["method"] == "POST" and r["path"].endswith("/events")
             and (r.get("body") or {}).get("involvedObject", {}).get("name") == "huge"]
    patches = [r for r in reqs if r["method"] == "PATCH" and "/events/" in r["path"]]
    status = [r for r in reqs if r["path"] == "/api/v1/namespaces/default/pods/huge/status"]
    if len(posts) != 1 or len(patches) < 2:
        fail("event requests: %d POST, %d PATCH" % (len(posts), len(patches)))
    if len(status) != 1:
        fail("pods/status requests: %s (want one: the message did not change)" %
             [(r["method"], r["status"]) for r in status])
    # A different reason (the message changes) is patched again.
    d.ctl("POST", "objects", {"nodes": [node("n3", cpu="2")]})
    if not wait_for(lambda: len([r for r in d.requests()
                                 if r["path"].endswith("/pods/huge/status")]) == 2, 15):
        fail("status not patched after the message changed\n%s" % s.text())
    if s.stop() != 0:
        fail("exit status after SIGTERM\n%s" % s.text())


def ext_post(url, verb, body):
    code, out = http("POST", url + "/" + verb, body)
    try:
        return code, json.loads(out)
    except ValueError:
        return code, out


def scenario_extender():
    state = seed_state()
    # stand-alone: candidate nodes in the request, bound pods from --cluster
    s = Sched("extender", "--listen", "127.0.0.1:0", "--cluster",
              os.path.join(DATA, "interfaces.json"))
    m = wait_for(lambda: re.search(r"extender listening on ([0-9.:]+)", s.text()))
    if not m:
        fail("extender did not start\n%s" % s.text())
        return
    url = "http://" + m.group(1)
    nodes = {"kind": "NodeList", "apiVersion": "v1", "items": state["nodes"]}
    p3000 = pod("p3000", {"latency": "3000"})
    code, r = ext_post(url, "filter", {"Pod": p3000, "Nodes": nodes})
    if code != 200 or r.get("Error") != "" or r.get("NodeNames") is not None:
        fail("filter: %d %s" % (code, r))
    else:
        names = [n["metadata"]["name"] for n in r["Nodes"]["items"]]
        fa = r["FailedAndUnresolvableNodes"]
        if names != ["dpdk-node"] or sorted(fa) != ["ovs-node", "plain-node"] or \
                "no path <= 3000us" not in fa["ovs-node"]:
            fail("filter result: %s" % r)
        # and in FailedNodes too, which kube-scheduler <= 1.20 reads alone
        if r["FailedNodes"] != fa:
            fail("unresolvable nodes not in FailedNodes: %s" % r)
        if r["Nodes"]["items"][0] != state["nodes"][0]:
            fail("filter changed the node object")
    # NodeNames: nodes from --cluster, with their bound pods (dpdk-a has 1 of 2 left)
    code, r = ext_post(url, "filter", {"Pod": pod("x", {"latency": "900"}),
                                       "NodeNames": ["dpdk-a", "sriov-b", "plain-c", "ghost"]})
    if code != 200 or r.get("Nodes") is not None or r.get("NodeNames") != ["dpdk-a", "sriov-b"] \
            or "unknown" not in r["FailedNodes"].get("ghost", ""):
        fail("filter by name: %s" % r)
    # prioritize: least capable first (plain 10 > ovs > dpdk), failing nodes 0
    code, r = ext_post(url, "prioritize", {"Pod": pod("y", {"latency": "20000"}), "Nodes": nodes})
    sc = {h["Host"]: h["Score"] for h in r} if code == 200 and isinstance(r, list) else {}
    if not sc or not (sc["plain-node"] == 10 > sc["ovs-node"] > sc["dpdk-node"] > 0):
        fail("prioritize: %d %s" % (code, r))
    code, r = ext_post(url, "prioritize", {"Pod": p3000, "Nodes": nodes})
    sc = {h["Host"]: h["Score"] for h in r} if code == 200 and isinstance(r, list) else {}
    if sc != {"dpdk-node": 10, "ovs-node": 0, "plain-node": 0}:
        fail("prioritize 3000us: %s" % r)
    # bind needs an API server here
    code, r = ext_post(url, "bind", {"PodName": "x", "PodNamespace": "default", "PodUID": "u",
                                     "Node": "dpdk-a"})
    if code != 200 or "no API server" not in r.get("Error", ""):
        fail("stand-alone bind: %d %s" % (code, r))
    # bad requests: clear errors, the server survives
    for verb, body, want in (("filter", b"{not json", 400), ("filter", b"[]", 400),
                             ("filter", {"Pod": p3000}, 400),
                             ("filter", {"Pod": p3000, "Nodes": {"items": [{"x": 1}]}}, 400),
                             ("bind", {"PodName": "x"}, 400), ("nope", {}, 404)):
        code, r = ext_post(url, verb, body)
        if code != want or not isinstance(r, dict) or not r.get("Error"):
            fail("%s %r: %d %r" % (verb, body, code, r))
    code, out = http("GET", url + "/healthz")
    if code != 200 or out != b"ok":
        fail("healthz: %d %r" % (code, out))
    code, _ = http("GET", url + "/filter")
    if code != 405:
        fail("GET /filter: %d" % code)
    if s.stop() != 0:
        fail("extender exit status\n%s" % s.text())

    # with an API server: /bind binds and the model charges the device
    d = Double({"nodes": state["nodes"], "pods": [
        pod("ext-1", {"latency": "1000"}, sched="default-scheduler"),
        pod("ext-2", {"latency": "1000"}, sched="default-scheduler"),
        pod("ext-3", {"latency": "1000"}, sched="default-scheduler")]})
    s = Sched("run", "--master", d.url, "--extender-listen", "127.0.0.1:0")
    m = wait_for(lambda: re.search(r"extender listening on ([0-9.:]+)", s.text()))
    wait_for(lambda: "pod list:" in s.text() and "node list:" in s.text())
    url = "http://" + m.group(1)
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in d.state()["pods"]}
    for name in ("ext-1", "ext-2"):
        code, r = ext_post(url, "bind", {"PodName": name, "PodNamespace": "default",
                                         "PodUID": uids[name], "Node": "dpdk-node"})
        if code != 200 or r.get("Error") != "":
            fail("bind %s: %d %s" % (name, code, r))
    check_once(d, ["default/ext-1", "default/ext-2"],
               {"default/ext-1": "dpdk-node", "default/ext-2": "dpdk-node"})
    # both interfaces are taken now: the filter says so
    code, r = ext_post(url, "filter", {"Pod": d.pods()["default/ext-3"], "NodeNames": [
        "dpdk-node", "ovs-node"]})
    if r.get("NodeNames") != [] or "no free dpdk (2/2 in use)" not in r["FailedNodes"].get(
            "dpdk-node", ""):
        fail("filter after binds: %s" % r)
    # a second bind of a bound pod: the API server's 409 comes back as an error
    code, r = ext_post(url, "bind", {"PodName": "ext-1", "PodNamespace": "default",
                                     "PodUID": uids["ext-1"], "Node": "ovs-node"})
    if code != 200 or "409" not in r.get("Error", "") and "onflict" not in r.get("Error", ""):
        fail("double bind: %d %s" % (code, r))
    if s.stop() != 0:
        fail("run exit status\n%s" % s.text())


{"seed": scenario_seed, "restart": scenario_restart, "malformed": scenario_malformed,
 "leader": scenario_leader, "extender": scenario_extender, "events": scenario_events}[SCENARIO]()
print("live %s: %s" % (SCENARIO, "FAIL" if RUN.failures else "ok"))
sys.exit(1 if RUN.failures else 0)
