# SPDX-License-Identifier: MIT
"""A real Kubernetes control plane for podwire's tests: etcd from Debian's
etcd-server and kube-apiserver built from Debian's kubernetes source package
by tools/kube-build.sh (which caches it under /var/cache/podwire/kube).

Everything listens on 127.0.0.1 on free ports and lives in a temporary
directory; stop() (also called at exit) ends the processes and removes it.

    cp = ControlPlane(tmp, bindir)          # bindir: kube-build.sh's output
    cp.start()
    code, obj = cp.api("GET", "/api/v1/nodes")
    cp.kubeconfig("scheduler")             # path of a kubeconfig for a user
    cp.restart_apiserver()

Users (bearer tokens in a token file; RBAC decides what they may do):
  admin       system:masters
  scheduler   system:serviceaccount:kube-system:podwire-scheduler
  nfd         system:serviceaccount:kube-system:podwire-nfd
  podwired    system:serviceaccount:podwire:podwired
The service-account users get exactly what deploy/ grants their accounts.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

USERS = {
    "admin": ("admin", ["system:masters"]),
    "scheduler": ("system:serviceaccount:kube-system:podwire-scheduler",
                  ["system:serviceaccounts", "system:serviceaccounts:kube-system"]),
    "nfd": ("system:serviceaccount:kube-system:podwire-nfd",
            ["system:serviceaccounts", "system:serviceaccounts:kube-system"]),
    "podwired": ("system:serviceaccount:podwire:podwired",
                 ["system:serviceaccounts", "system:serviceaccounts:podwire"]),
}
SERVICE_CIDR = "198.19.240.0/20"


def bindir_find(kube_build):
    """The cached control plane's directory, or None (tools/kube-build.sh --check)."""
    try:
        out = subprocess.run([kube_build, "--check"], capture_output=True, text=True,
                             timeout=60)
    except OSError:
        return None
    d = out.stdout.strip()
    return d if out.returncode == 0 and d and shutil.which("etcd") else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class ControlPlane:
    def __init__(self, tmp, bindir, verbose=0):
        self.dir = os.path.join(tmp, "kube")
        os.makedirs(self.dir, exist_ok=True)
        self.bindir = bindir
        self.verbose = verbose
        self.etcd = self.apiserver = None
        self.port = None
        self.url = None
        self.tokens = {u: "pw-%s-%s" % (u, os.urandom(8).hex()) for u in USERS}
        self.ctx = None
        atexit.register(self.stop)

    # ---- setup ---------------------------------------------------------
    def _certs(self):
        d = self.dir
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                 "-out", "ca.crt", "-days", "2", "-subj", "/CN=podwire-test-ca", cwd=d)
        with open(os.path.join(d, "san.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,IP:198.19.240.1,"
                    "DNS:kubernetes.default.svc\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
                 "-out", "server.csr", "-subj", "/CN=kube-apiserver", cwd=d)
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf",
                 cwd=d)
        _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
        _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
        with open(os.path.join(d, "tokens.csv"), "w") as f:
            for u, (name, groups) in USERS.items():
                f.write('%s,%s,%s,"%s"\n' % (self.tokens[u], name, u, ",".join(groups)))
        self.ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))

    def _start_etcd(self):
        self.etcd_port = free_port()
        peer = free_port()
        log = open(os.path.join(self.dir, "etcd.log"), "w")
        self.etcd = subprocess.Popen(
            ["etcd", "--name", "pw", "--data-dir", os.path.join(self.dir, "etcd"),
             "--listen-client-urls", "http://127.0.0.1:%d" % self.etcd_port,
             "--advertise-client-urls", "http://127.0.0.1:%d" % self.etcd_port,
             "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
             "--initial-cluster", "pw=http://127.0.0.1:%d" % peer,
             "--listen-metrics-urls", "http://127.0.0.1:%d" % free_port()],
            stdout=log, stderr=log, start_new_session=True)

    def _start_apiserver(self):
        d = self.dir
        log = open(os.path.join(d, "apiserver.log"), "a")
        self.apiserver = subprocess.Popen(
            [os.path.join(self.bindir, "kube-apiserver"),
             "--etcd-servers", "http://127.0.0.1:%d" % self.etcd_port,
             "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
             "--secure-port", str(self.port),
             "--tls-cert-file", os.path.join(d, "server.crt"),
             "--tls-private-key-file", os.path.join(d, "server.key"),
             "--token-auth-file", os.path.join(d, "tokens.csv"),
             "--authorization-mode", "RBAC",
             "--service-account-issuer", "https://kubernetes.default.svc",
             "--service-account-key-file", os.path.join(d, "sa.pub"),
             "--service-account-signing-key-file", os.path.join(d, "sa.key"),
             "--service-cluster-ip-range", SERVICE_CIDR,
             # No controller-manager makes the namespaces' "default" accounts.
             "--disable-admission-plugins", "ServiceAccount",
             "--allow-privileged=true", "--profiling=false",
             "--endpoint-reconciler-type", "none",
             "-v", str(self.verbose)],
            stdout=log, stderr=log, start_new_session=True)

    def wait_ready(self, timeout=90):
        end = time.time() + timeout
        while time.time() < end:
            for p, name in ((self.etcd, "etcd"), (self.apiserver, "kube-apiserver")):
                if p.poll() is not None:
                    raise RuntimeError("%s exited with %s:\n%s" % (name, p.returncode,
                                                                   self.log_tail(name)))
            try:
                code, _ = self.api("GET", "/readyz", timeout=2)
                if code == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError("kube-apiserver not ready in %d s:\n%s" % (
            timeout, self.log_tail("kube-apiserver")))

    def start(self):
        self._certs()
        self._start_etcd()
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self._start_apiserver()
        self.wait_ready()
        return self

    def log_tail(self, name, lines=30):
        path = os.path.join(self.dir, "apiserver.log" if name == "kube-apiserver" else "etcd.log")
        try:
            with open(path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    @staticmethod
    def _end(p, timeout=15):
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop_apiserver(self):
        self._end(self.apiserver)

    def restart_apiserver(self):
        """Stop kube-apiserver (every watch is cut), start it again on the same port."""
        self.stop_apiserver()
        self._start_apiserver()
        self.wait_ready()

    def stop(self):
        self._end(self.apiserver)
        self._end(self.etcd)
        self.apiserver = self.etcd = None

    # ---- clients -------------------------------------------------------
    def kubeconfig(self, user="admin"):
        path = os.path.join(self.dir, "kubeconfig-%s.json" % user)
        with open(path, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "pw",
                       "clusters": [{"name": "pw", "cluster": {
                           "server": self.url,
                           "certificate-authority": os.path.join(self.dir, "ca.crt")}}],
                       "users": [{"name": user, "user": {"token": self.tokens[user]}}],
                       "contexts": [{"name": "pw", "context": {"cluster": "pw",
                                                               "user": user}}]}, f)
        return path

    def api(self, method, path, body=None, user="admin", content_type=None, timeout=30):
        """(status, parsed body or None)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.tokens[user])
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type or "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ctx) as r:
                code, out = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, out = e.code, e.read()
        try:
            return code, json.loads(out) if out else None
        except ValueError:
            return code, None

    def must(self, method, path, body=None, user="admin", content_type=None):
        code, out = self.api(method, path, body, user, content_type)
        if code // 100 != 2:
            raise RuntimeError("%s %s: %d %s" % (method, path, code, out))
        return out

    def kubectl(self, *args, user="admin", input=None, check=True):
        out = subprocess.run([os.path.join(self.bindir, "kubectl"), "--kubeconfig",
                              self.kubeconfig(user), *args], input=input,
                             capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise RuntimeError("kubectl %s: %s%s" % (" ".join(args), out.stdout, out.stderr))
        return out

    # ---- objects -------------------------------------------------------
    def create(self, obj):
        """POST one object (Node, Pod, Namespace...) by its kind; returns the stored one."""
        kind = obj["kind"]
        ns = obj.get("metadata", {}).get("namespace", "default")
        path = {"Node": "/api/v1/nodes", "Namespace": "/api/v1/namespaces",
                "Pod": "/api/v1/namespaces/%s/pods" % ns,
                "Service": "/api/v1/namespaces/%s/services" % ns}[kind]
        obj.setdefault("apiVersion", "v1")
        out = self.must("POST", path, obj)
        if kind == "Node" and any(c.get("type") == "Ready" and c.get("status") == "True"
                                  for c in obj.get("status", {}).get("conditions", [])):
            # The TaintNodesByCondition admission plugin gives every new node
            # the not-ready taint; the node lifecycle controller (there is no
            # controller-manager here) takes it off once the node is Ready.
            taints = [t for t in out.get("spec", {}).get("taints", [])
                      if t.get("key") != "node.kubernetes.io/not-ready"]
            out = self.must("PATCH", "/api/v1/nodes/%s" % obj["metadata"]["name"],
                            {"spec": {"taints": taints or None}},
                            content_type="application/merge-patch+json")
        return out

    def node_status(self, name, status):
        """Nodes have no kubelet here: set their status (allocatable, conditions) directly."""
        return self.must("PATCH", "/api/v1/nodes/%s/status" % name, {"status": status},
                         content_type="application/merge-patch+json")
