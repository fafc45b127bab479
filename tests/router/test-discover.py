#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""podwired --kube-peers: routers that find each other from a real kube-apiserver.

Usage: test-discover.py PODWIRED KUBE_BUILD DEPLOY_DIR

Three routers on loopback addresses (127.0.0.11-13, one peer port), each
with its own secret file and no static peer list, run as the podwired
service account with deploy/podwired-daemonset.yaml's RBAC. Node objects
drive them: n1 and n2 find each other; n3, whose Node does not exist yet, is
refused; once its Node is created it is reached without a restart; a
deleted node and a NotReady one lose their links, so their routes go; a
rotated secret is taken up without dropping the links that are up, and new
handshakes need it on both sides. Exit 0 pass, 1 fail, 77 skip.
"""
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

BIN, KUBE_BUILD, DEPLOY = sys.argv[1:4]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "kube")]
import pwtest  # noqa: E402
import realkube  # noqa: E402

RUN = pwtest.Run("pw-discover-")
TMP = RUN.tmp
fail = RUN.fail
NODES = ["n1", "n2", "n3"]
IP = {n: "127.0.0.%d" % (11 + i) for i, n in enumerate(NODES)}
CIDR = {n: "198.19.%d.0/24" % (i + 1) for i, n in enumerate(NODES)}


def node(name, ready=True):
    return {"kind": "Node", "metadata": {"name": name},
            "spec": {"podCIDR": CIDR[name], "podCIDRs": [CIDR[name]]},
            "status": {"addresses": [{"type": "InternalIP", "address": IP[name]},
                                     {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}}


class Router:
    def __init__(self, name, kubeconfig, peer_port):
        self.name = name
        self.mport = realkube.free_port()
        self.secret = os.path.join(TMP, "secret-" + name)
        self.write_secret("a" * 40)
        self.log = os.path.join(TMP, name + ".log")
        self.p = RUN.track(subprocess.Popen(
            [BIN, "--foreground", "--socket", os.path.join(TMP, name + ".sock"),
             "--metrics", "127.0.0.1:%d" % self.mport, "--node-name", name,
             "--peer-listen", "%s:%d" % (IP[name], peer_port), "--kube-peers",
             "--kubeconfig", kubeconfig, "--secret-file", self.secret],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w")))

    def write_secret(self, text):
        """As the kubelet updates a mounted Secret: a new file renamed over the old."""
        tmp = self.secret + ".new"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.rename(tmp, self.secret)

    def metric(self, name):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.mport,
                                        timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
        return int(m.group(1)) if m else None

    def links(self):
        return self.metric("podwire_peer_links")

    def text(self):
        with open(self.log) as f:
            return f.read()


def main():
    bindir = realkube.bindir_find(KUBE_BUILD)
    if not bindir:
        print("SKIP: no cached Kubernetes control plane (run tools/kube-build.sh as root)")
        return 77
    if os.geteuid() != 0:
        print("SKIP: podwired needs root")
        return 77
    cp = realkube.ControlPlane(TMP, bindir).start()
    cp.kubectl("apply", "-f", os.path.join(DEPLOY, "podwired-daemonset.yaml"))
    cp.create(node("n1"))
    cp.create(node("n2"))
    port = realkube.free_port()
    kc = cp.kubeconfig("podwired")
    r = {n: Router(n, kc, port) for n in NODES}

    def logs():
        return "\n".join("--- %s\n%s" % (n, r[n].text()[-3000:]) for n in NODES)

    # n1 and n2 find each other (a link each way); n3 is not a Node: refused.
    if not pwtest.wait_for(lambda: r["n1"].links() == 2 and r["n2"].links() == 2):
        fail("n1, n2 links: %s %s\n%s" % (r["n1"].links(), r["n2"].links(), logs()))
    if "peer n2: 1 pod prefix(es)" not in r["n1"].text():
        fail("n1 has no route to n2's pods\n%s" % logs())
    time.sleep(1.5)
    # (Read once: the message shows what was checked.)
    l1, l3 = r["n1"].links(), r["n3"].links()
    if l1 != 2 or l3 != 0:
        fail("n3 was let in before its Node existed: n1 %s, n3 %s\n%s" % (l1, l3, logs()))
    # Nor did n3 count a link up, even for the moment before n1 or n2 refuse it.
    if "authenticated" in r["n3"].text():
        fail("n3 counted a link to a router that refuses it as up\n%s" % logs())
    # n3 has the secret: refused for not being a Node, not counted as a bad proof.
    if any(r[n].metric("podwire_peer_auth_failures_total") != 0 for n in ("n1", "n2")):
        fail("n3's refusals counted as auth failures: %s" % [
            r[n].metric("podwire_peer_auth_failures_total") for n in ("n1", "n2")])
    if any(r[n].metric("podwire_peer_dial_targets") != 1 for n in ("n1", "n2")):
        fail("dial targets: %s" % [r[n].metric("podwire_peer_dial_targets") for n in NODES])

    # n3 joins: reached without restarting anything.
    cp.create(node("n3"))
    if not pwtest.wait_for(lambda: all(r[n].links() == 4 for n in NODES)):
        fail("after n3 joined: %s\n%s" % ([r[n].links() for n in NODES], logs()))
    if "peer n3: 1 pod prefix(es)" not in r["n1"].text():
        fail("n1 has no route to n3's pods\n%s" % logs())

    # n2 is deleted: its links (and with them its routes) go, and stay gone.
    cp.must("DELETE", "/api/v1/nodes/n2")
    if not pwtest.wait_for(lambda: r["n1"].links() == 2 and r["n3"].links() == 2):
        fail("after n2 left: %s\n%s" % ([r[n].links() for n in NODES], logs()))
    time.sleep(1.5)
    if r["n1"].links() != 2 or "peer n2: link lost" not in r["n1"].text():
        fail("n2 still linked to n1 (%s)\n%s" % (r["n1"].links(), logs()))

    # n3 turns NotReady, then Ready again.
    cp.node_status("n3", {"conditions": [{"type": "Ready", "status": "False"}]})
    if not pwtest.wait_for(lambda: r["n1"].links() == 0):
        fail("NotReady n3 still linked: %s\n%s" % (r["n1"].links(), logs()))
    cp.node_status("n3", {"conditions": [{"type": "Ready", "status": "True"}]})
    if not pwtest.wait_for(lambda: r["n1"].links() == 2 and r["n3"].links() == 2):
        fail("Ready n3 not linked again: %s\n%s" % ([r[n].links() for n in NODES], logs()))

    # The secret is rotated on n1 only: the links that are up stay up.
    lost0 = r["n1"].text().count("link lost")
    r["n1"].write_secret("b" * 40)
    if not pwtest.wait_for(lambda: r["n1"].metric("podwire_peer_secret_rotations_total") == 1, 10):
        fail("n1 did not take the new secret\n%s" % logs())
    time.sleep(1.5)
    if r["n1"].links() != 2 or r["n1"].text().count("link lost") != lost0:
        fail("links dropped by the rotation: %s\n%s" % (r["n1"].links(), logs()))
    # A new handshake (n3 leaves and comes back) needs the secret on both sides ...
    cp.node_status("n3", {"conditions": [{"type": "Ready", "status": "False"}]})
    pwtest.wait_for(lambda: r["n1"].links() == 0)
    cp.node_status("n3", {"conditions": [{"type": "Ready", "status": "True"}]})
    time.sleep(2)
    # (n1's side says nothing: a link it dialled is up only once n3 takes its
    # proof, and n3 counts the failure.)
    if r["n3"].links() != 0 or not r["n3"].metric("podwire_peer_auth_failures_total"):
        fail("n1 (new secret) and n3 (old) linked: n3 links %s, auth failures %s\n%s" % (
            r["n3"].links(), r["n3"].metric("podwire_peer_auth_failures_total"), logs()))
    # ... and n3 taking it up makes it work.
    r["n3"].write_secret("b" * 40)
    if not pwtest.wait_for(lambda: r["n1"].links() == 2 and r["n3"].links() == 2):
        fail("links after both rotated: %s\n%s" % ([r[n].links() for n in NODES], logs()))

    for n in NODES:
        r[n].p.send_signal(signal.SIGTERM)
        if r[n].p.wait(10) != 0:
            fail("%s exit status %s\n%s" % (n, r[n].p.returncode, r[n].text()[-2000:]))
    return 0


rc = main()
print("discover: %s" % ("FAIL" if RUN.failures or rc == 1 else "skip" if rc == 77 else "ok"))
sys.exit(77 if rc == 77 and not RUN.failures else 1 if RUN.failures or rc else 0)
