#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""podwire-webhook in front of a real kube-apiserver (tests/kube/realkube.py).

Usage: test-webhook-real.py PODWIRE_WEBHOOK KUBE_BUILD DEPLOY_DIR

deploy/webhook-install.sh installs the manifests on the server (Secret,
caBundle); the MutatingWebhookConfiguration's clientConfig is then pointed at
a podwire-webhook on 127.0.0.1 (no pods run here), keeping its selectors,
rules and failurePolicy. Pods created through the API come back mutated as
docs/DEPLOY.md says, or untouched where they did not opt in; with the webhook
stopped, pod creation still succeeds. Exit 0 pass, 1 fail, 77 skip.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time

BIN, KUBE_BUILD, DEPLOY = sys.argv[1:4]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "kube")]
import pwtest  # noqa: E402
import realkube  # noqa: E402

RUN = pwtest.Run("pw-webhook-real-")
TMP = RUN.tmp
fail = RUN.fail
PRELOAD = "/run/podwire/preload/$LIB/libpodwire.so:/run/podwire/preload/$LIB/libpodwire-verbs.so"


def openssl(*args):
    subprocess.run(["openssl", *args], cwd=TMP, check=True, capture_output=True)


def pod(name, ns, labels=None, env=None):
    c = {"name": "app", "image": "busybox"}
    if env:
        c["env"] = env
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"containers": [c]}}


def injected(p):
    """What the webhook added to pod p: (annotation, volume, mount, env dict)."""
    c = p["spec"]["containers"][0]
    vol = [v for v in p["spec"].get("volumes", []) if v["name"] == "podwire"]
    mnt = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/run/podwire"]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    return (p["metadata"].get("annotations", {}).get("podwire.io/injected"), vol, mnt, env)


def check_injected(p, ld=PRELOAD):
    ann, vol, mnt, env = injected(p)
    if ann != "true":
        fail("%s: annotation %s" % (p["metadata"]["name"], ann))
    if vol != [{"name": "podwire", "hostPath": {"path": "/run/podwire", "type": "Directory"}}]:
        fail("%s: volume %s" % (p["metadata"]["name"], vol))
    if len(mnt) != 1 or not mnt[0].get("readOnly") or mnt[0]["name"] != "podwire":
        fail("%s: mount %s" % (p["metadata"]["name"], mnt))
    if env.get("LD_PRELOAD") != ld or env.get("PODWIRE_SOCKET") != "/run/podwire/podwired.sock":
        fail("%s: env %s" % (p["metadata"]["name"], env))


def check_plain(p):
    ann, vol, mnt, env = injected(p)
    if ann or vol or mnt or "LD_PRELOAD" in env:
        fail("%s was injected: %s" % (p["metadata"]["name"], (ann, vol, mnt, env)))


def main():
    bindir = realkube.bindir_find(KUBE_BUILD)
    if not bindir:
        print("SKIP: no cached Kubernetes control plane (run tools/kube-build.sh as root)")
        return 77
    if not shutil.which("openssl"):
        print("SKIP: needs openssl")
        return 77
    cp = realkube.ControlPlane(TMP, bindir).start()

    # The install script against the real server.
    env = dict(os.environ, KUBECTL="%s --kubeconfig %s" % (
        os.path.join(bindir, "kubectl"), cp.kubeconfig()))
    out = subprocess.run([os.path.join(DEPLOY, "webhook-install.sh")], env=env,
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        fail("webhook-install.sh: %s%s" % (out.stdout, out.stderr))
        return 1
    sec = cp.must("GET", "/api/v1/namespaces/podwire/secrets/podwire-webhook-tls")
    mwc = cp.must("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"
                  "podwire-webhook")
    ca = base64.b64decode(mwc["webhooks"][0]["clientConfig"]["caBundle"])
    if b"BEGIN CERTIFICATE" not in ca or sec["type"] != "kubernetes.io/tls":
        fail("install: caBundle %r, secret type %s" % (ca[:40], sec["type"]))
    with open(os.path.join(TMP, "installed.crt"), "wb") as f:
        f.write(base64.b64decode(sec["data"]["tls.crt"]))
    v = subprocess.run(["openssl", "verify", "-CAfile", "/dev/stdin", "installed.crt"],
                       input=ca, cwd=TMP, capture_output=True)
    if v.returncode != 0:
        fail("the installed certificate is not signed by caBundle: %s" % v.stdout)
    san = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                          "installed.crt"], cwd=TMP, capture_output=True, text=True).stdout
    if "DNS:podwire-webhook.podwire.svc" not in san:
        fail("certificate names: %s" % san)

    # A webhook on loopback with a certificate for 127.0.0.1.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "1", "-subj", "/CN=test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "wh.key", "-out", "wh.csr",
            "-subj", "/CN=webhook")
    with open(os.path.join(TMP, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "wh.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "wh.crt", "-days", "1", "-extfile", "san.cnf")
    port = realkube.free_port()
    log = os.path.join(TMP, "webhook.log")
    wh = subprocess.Popen([BIN, "--listen", "127.0.0.1:%d" % port, "--tls-cert",
                           os.path.join(TMP, "wh.crt"), "--tls-key", os.path.join(TMP, "wh.key"),
                           "--log-level", "debug"], stderr=open(log, "w"))
    RUN.track(wh)
    with open(os.path.join(TMP, "ca.crt"), "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    for w in mwc["webhooks"]:
        w["clientConfig"] = {"url": "https://127.0.0.1:%d/mutate" % port, "caBundle": ca}
    cp.must("PUT", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"
            "podwire-webhook", mwc)
    cp.create({"kind": "Namespace", "metadata": {"name": "inj",
                                                 "labels": {"podwire.io/inject": "enabled"}}})
    cp.create({"kind": "Namespace", "metadata": {"name": "plain"}})

    def text():
        with open(log) as f:
            return f.read()
    # The configuration takes a moment to reach the server's admission chain.
    deadline = time.time() + 20
    n = 0
    while True:
        p = cp.create(pod("probe-%d" % n, "inj"))
        n += 1
        if injected(p)[0] or time.time() > deadline:
            break
        time.sleep(0.5)
    check_injected(p)

    check_injected(cp.create(pod("own-preload", "inj", env=[
        {"name": "A", "value": "1"}, {"name": "LD_PRELOAD", "value": "/opt/jemalloc.so"}])),
        ld="/opt/jemalloc.so:" + PRELOAD)
    check_plain(cp.create(pod("opted-out", "inj", labels={"podwire.io/inject": "disabled"})))
    check_plain(cp.create(pod("elsewhere", "plain")))
    check_injected(cp.create(pod("opted-in", "plain", labels={"podwire.io/inject": "enabled"})))
    # A pod that already has it is created unchanged (no second volume).
    again = cp.must("GET", "/api/v1/namespaces/inj/pods/own-preload")
    for k in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        again["metadata"].pop(k, None)
    again["metadata"]["name"] = "again"
    again.pop("status", None)
    p = cp.create(again)
    if len(p["spec"]["volumes"]) != len(again["spec"]["volumes"]):
        fail("injected twice: %s" % p["spec"]["volumes"])
    if "review inj/" not in text():
        fail("the webhook logged no review:\n%s" % text())

    # The webhook is down: pods are still created (failurePolicy: Ignore).
    wh.send_signal(signal.SIGTERM)
    if wh.wait(10) != 0:
        fail("webhook exit status %s:\n%s" % (wh.returncode, text()))
    t0 = time.time()
    code, p = cp.api("POST", "/api/v1/namespaces/inj/pods", pod("while-down", "inj"))
    if code != 201:
        fail("pod creation with the webhook down: %d %s" % (code, p))
    else:
        check_plain(p)
    if time.time() - t0 > 10:
        fail("creation waited %.1f s for the webhook" % (time.time() - t0))
    if "5 pods injected" not in text() and "pods injected" not in text():
        fail("no summary at exit:\n%s" % text())
    return 0


rc = main()
print("webhook real: %s" % ("FAIL" if RUN.failures or rc == 1 else "skip" if rc == 77 else "ok"))
sys.exit(77 if rc == 77 and not RUN.failures else 1 if RUN.failures or rc else 0)
