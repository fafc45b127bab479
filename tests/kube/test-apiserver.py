#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The API-server double's own wire format, for what the C tests do not reach:
seeding and --port-file, label selectors, create/PUT/DELETE semantics,
strategic merge and JSON patch details, chunk framing of watches, legacy watch
paths, auth, and a clean SIGTERM. Usage: test-apiserver.py APISERVER.py"""

import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SCRIPT = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="pwkube-double.")
PROCS = []


def check(cond, msg):
    if not cond:
        line = inspect.currentframe().f_back.f_lineno
        print("test-apiserver.py:%d: FAIL: %s" % (line, msg), file=sys.stderr)
        sys.exit(1)


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


class Double:
    def __init__(self, *args):
        self.p = subprocess.Popen([sys.executable, SCRIPT, "--port", "0", *args],
                                  stdout=subprocess.PIPE, text=True)
        PROCS.append(self.p)
        self.port = int(self.p.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None, ctype="application/json", token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def ok(self, method, path, body=None, ctype="application/json", want=200):
        code, out = self.call(method, path, body, ctype)
        check(code == want, "%s %s: %d (want %d) %s" % (method, path, code, want, out))
        return out

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        return self.p.wait(10)


def names(lst):
    return sorted(i["metadata"]["name"] for i in lst["items"])


def test_seed_and_selectors():
    state = os.path.join(TMP, "state.json")
    portfile = os.path.join(TMP, "port")
    with open(state, "w") as f:
        json.dump({"nodes": [
            {"metadata": {"name": "n1", "labels": {"zone": "a", "dpdk": "true"}}},
            {"metadata": {"name": "n2", "labels": {"zone": "b"}}},
            {"metadata": {"name": "n3", "labels": {"zone": "c"}}, "spec": {"unschedulable": True}},
        ], "pods": [{"metadata": {"name": "p", "namespace": "x"}}]}, f)
    d = Double("--state", state, "--port-file", portfile)
    with open(portfile) as f:
        check(int(f.read()) == d.port, "--port-file")
    for sel, want in [("zone=a", ["n1"]), ("zone==a", ["n1"]), ("zone!=a", ["n2", "n3"]),
                      ("dpdk", ["n1"]), ("!dpdk", ["n2", "n3"]),
                      ("zone in (a,c)", ["n1", "n3"]), ("zone notin (a,c)", ["n2"]),
                      ("zone in (a,b),!dpdk", ["n2"])]:
        q = urllib.parse.quote(sel)
        got = names(d.ok("GET", "/api/v1/nodes?labelSelector=" + q))
        check(got == want, "labelSelector %r: %s" % (sel, got))
    got = names(d.ok("GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue"))
    check(got == ["n3"], "bool field: %s" % got)
    got = names(d.ok("GET", "/api/v1/nodes?fieldSelector=metadata.name!%3Dn1"))
    check(got == ["n2", "n3"], "!=: %s" % got)
    pods = d.ok("GET", "/api/v1/namespaces/x/pods")
    check(pods["kind"] == "PodList" and pods["apiVersion"] == "v1", "list kind")
    item = pods["items"][0]
    check("kind" not in item and item["spec"]["schedulerName"] == "default-scheduler"
          and item["status"]["phase"] == "Pending", "defaults, items without kind: %s" % item)
    check(d.ok("GET", "/api/v1/namespaces/y/pods")["items"] == [], "other namespace")
    check(d.stop() == 0, "SIGTERM exit status")


def test_crud_and_patches():
    d = Double()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w", "labels": {"a": "1"}},
           "spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]}}
    made = d.ok("POST", "/api/v1/namespaces/ns/pods", pod, want=201)
    meta = made["metadata"]
    check(meta["namespace"] == "ns" and meta["uid"] and meta["creationTimestamp"]
          and meta["resourceVersion"].isdigit(), "created: %s" % meta)
    code, st = d.call("POST", "/api/v1/namespaces/ns/pods", pod)
    check(code == 409 and st["reason"] == "AlreadyExists" and st["kind"] == "Status", st)
    code, st = d.call("GET", "/api/v1/namespaces/ns/pods/nope")
    check(code == 404 and st["reason"] == "NotFound" and st["code"] == 404, st)
    code, st = d.call("GET", "/api/v1/bogus")
    check(code == 404 and st["kind"] == "Status", st)

    # PUT keeps status on the main resource; stale resourceVersion: 409; no-op: same RV.
    cur = d.ok("GET", "/api/v1/namespaces/ns/pods/w")
    cur["status"]["phase"] = "Running"
    cur["metadata"]["labels"]["b"] = "2"
    put = d.ok("PUT", "/api/v1/namespaces/ns/pods/w", cur)
    check(put["status"]["phase"] == "Pending" and put["metadata"]["labels"]["b"] == "2",
          "PUT main resource: %s" % put)
    code, st = d.call("PUT", "/api/v1/namespaces/ns/pods/w", cur)
    check(code == 409 and st["reason"] == "Conflict", "stale PUT: %s" % st)
    again = d.ok("PUT", "/api/v1/namespaces/ns/pods/w", put)
    check(again["metadata"]["resourceVersion"] == put["metadata"]["resourceVersion"], "no-op")
    stat = d.ok("PUT", "/api/v1/namespaces/ns/pods/w/status",
                dict(put, status={"phase": "Running"}, spec={"containers": []}))
    check(stat["status"]["phase"] == "Running" and len(stat["spec"]["containers"]) == 2,
          "status PUT changes status only")

    # Strategic merge: containers by name, $patch: delete, directives ignored.
    smp = "application/strategic-merge-patch+json"
    out = d.ok("PATCH", "/api/v1/namespaces/ns/pods/w", {
        "metadata": {"labels": {"a": None}},
        "spec": {"$setElementOrder/containers": [{"name": "c1"}, {"name": "c2"}],
                 "containers": [{"name": "c2", "image": "i2b"}]}}, smp)
    cs = {c["name"]: c["image"] for c in out["spec"]["containers"]}
    check(cs == {"c1": "i1", "c2": "i2b"} and "a" not in out["metadata"]["labels"], out)
    d.ok("PATCH", "/api/v1/namespaces/ns/pods/w/status", {"status": {"conditions": [
        {"type": "A", "status": "True"}, {"type": "B", "status": "True"}]}}, smp)
    out = d.ok("PATCH", "/api/v1/namespaces/ns/pods/w/status", {"status": {"conditions": [
        {"type": "A", "$patch": "delete"}, {"type": "B", "status": "False"}]}}, smp)
    check(out["status"]["conditions"] == [{"type": "B", "status": "False"}], out["status"])
    # Merge patch replaces lists.
    out = d.ok("PATCH", "/api/v1/namespaces/ns/pods/w",
               {"spec": {"containers": [{"name": "c3"}]}}, "application/merge-patch+json")
    check([c["name"] for c in out["spec"]["containers"]] == ["c3"], "merge patch list")
    # JSON patch: copy/move; a missing parent fails with 422.
    jp = "application/json-patch+json"
    out = d.ok("PATCH", "/api/v1/namespaces/ns/pods/w", [
        {"op": "copy", "from": "/metadata/labels/b", "path": "/metadata/labels/c"},
        {"op": "move", "from": "/metadata/labels/b", "path": "/metadata/labels/d~1e"}], jp)
    check(out["metadata"]["labels"] == {"c": "2", "d/e": "2"}, out["metadata"]["labels"])
    code, st = d.call("PATCH", "/api/v1/namespaces/ns/pods/w",
                      [{"op": "add", "path": "/metadata/annotations/x", "value": "y"}], jp)
    check(code == 422 and st["reason"] == "Invalid", "missing parent: %d %s" % (code, st))
    code, st = d.call("PATCH", "/api/v1/namespaces/ns/pods/w",
                      [{"op": "replace", "path": "/metadata/labels/zz", "value": "y"}], jp)
    check(code == 422, "replace of a missing key: %d" % code)

    # Leases list; DELETE answers the object, then 404.
    d.ok("POST", "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
         {"metadata": {"name": "l"}, "spec": {}}, want=201)
    ll = d.ok("GET", "/apis/coordination.k8s.io/v1/leases")
    check(ll["kind"] == "LeaseList" and ll["apiVersion"] == "coordination.k8s.io/v1"
          and names(ll) == ["l"], ll)
    gone = d.ok("DELETE", "/api/v1/namespaces/ns/pods/w")
    check(gone["metadata"]["name"] == "w", "DELETE body")
    check(d.call("DELETE", "/api/v1/namespaces/ns/pods/w")[0] == 404, "DELETE twice")
    check(d.stop() == 0, "SIGTERM exit status")


def read_chunks(sock, want_lines, timeout=5):
    """Read raw chunked framing from sock: returns (headers, [chunk payloads])."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    chunks, lines = [], 0
    end = time.monotonic() + timeout
    while lines < want_lines and time.monotonic() < end:
        while b"\r\n" not in buf:
            buf += sock.recv(4096)
        size_line, buf = buf.split(b"\r\n", 1)
        n = int(size_line, 16)
        while len(buf) < n + 2:
            buf += sock.recv(4096)
        chunks.append(buf[:n])
        buf = buf[n + 2:]
        lines += chunks[-1].count(b"\n")
    return head.decode(), chunks


def test_watch_framing_and_auth():
    d = Double("--token", "t0p", "--bookmark-interval", "0")
    code, st = d.call("GET", "/api/v1/nodes")
    check(code == 401 and st["reason"] == "Unauthorized", "no token: %d" % code)
    check(d.call("GET", "/api/v1/nodes", token="t0p")[0] == 200, "token")
    d.ok("POST", "/_test/objects", {"pods": [{"metadata": {"name": "a"}}]})
    rv = d.ok("GET", "/_test/state")["resourceVersion"]

    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(("GET /api/v1/watch/namespaces/default/pods?resourceVersion=%s HTTP/1.1\r\n"
               "Host: x\r\nAuthorization: Bearer t0p\r\n\r\n" % rv).encode())
    time.sleep(0.3)
    d.ok("POST", "/_test/objects", {"pods": [{"metadata": {"name": "b"}},
                                             {"metadata": {"name": "c"}}]})
    head, chunks = read_chunks(s, 2)
    check("200 OK" in head.split("\r\n")[0] and "chunked" in head.lower(), head)
    check(len(chunks) == 1 and chunks[0].count(b"\n") == 2, "two events, one chunk: %s" % chunks)
    evs = [json.loads(x) for x in chunks[0].splitlines()]
    check([e["type"] for e in evs] == ["ADDED", "ADDED"]
          and [e["object"]["metadata"]["name"] for e in evs] == ["b", "c"]
          and evs[0]["object"]["kind"] == "Pod", evs)

    # Split mode: one event over several chunks.
    d.ok("POST", "/_test/split", {"bytes": 16})
    d.ok("POST", "/_test/objects", {"pods": [{"metadata": {"name": "d"}}]})
    _, chunks = read_chunks_more(s)
    check(len(chunks) > 3 and all(len(c) <= 16 for c in chunks), "split: %d" % len(chunks))
    check(json.loads(b"".join(chunks))["object"]["metadata"]["name"] == "d", "reassembled")
    s.close()

    # The double notices the closed watch.
    end = time.monotonic() + 5
    while d.ok("GET", "/_test/watches")["open"] and time.monotonic() < end:
        time.sleep(0.05)
    check(d.ok("GET", "/_test/watches")["open"] == 0, "closed watch still counted")
    log = d.ok("GET", "/_test/requests")["requests"]
    check(all(not r["path"].startswith("/_test") for r in log), "control requests not logged")
    check(log[0]["status"] == 401 and log[1]["auth"] == "t0p", log[:2])
    check(d.stop() == 0, "SIGTERM exit status")


def read_chunks_more(sock):
    """Chunks until one ends with a newline (one whole event)."""
    sock.settimeout(5)
    buf, chunks = b"", []
    while not chunks or not chunks[-1].endswith(b"\n"):
        while b"\r\n" not in buf:
            buf += sock.recv(4096)
        size_line, buf = buf.split(b"\r\n", 1)
        n = int(size_line, 16)
        while len(buf) < n + 2:
            buf += sock.recv(4096)
        chunks.append(buf[:n])
        buf = buf[n + 2:]
    return None, chunks


def main():
    try:
        test_seed_and_selectors()
        test_crud_and_patches()
        test_watch_framing_and_auth()
    finally:
        cleanup()
    print("kube-apiserver: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
