#!/usr/bin/env python3
"""podwire-nfd against fake sysfs/procfs trees, fake OvS tools, a real
podwired, the API-server test double, and this machine.

Usage: test_nfd.py SCENARIO   (environment: NFD, PODWIRED, APISERVER, KUBE_BUILD)
Exit 0 pass, 1 fail, 77 skip. A failed check prints function:line and state.
"""
import inspect
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

NFD = os.environ.get("NFD", "")
SWITCH = os.environ.get("SWITCH", "")
PODWIRED = os.environ.get("PODWIRED", "")
APISERVER = os.environ.get("APISERVER", "")
KUBE_BUILD = os.environ.get("KUBE_BUILD", "")
SKIP = 77


class Fail(Exception):
    pass


def check(cond, msg, state=None):
    if cond:
        return
    fr = inspect.currentframe().f_back
    where = f"{fr.f_code.co_name}:{fr.f_lineno}"
    text = f"{where}: FAIL: {msg}"
    if state is not None:
        s = state if isinstance(state, str) else json.dumps(state, indent=1, sort_keys=True)
        text += "\n  state: " + s[:6000]
    raise Fail(text)


def skip(reason):
    print(f"SKIP: {reason}", file=sys.stderr)
    sys.exit(SKIP)


# ---- fake trees ----------------------------------------------------------

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class Sysfs:
    """A sysfs look-alike: devices under devices/pci0000:00/, linked from
    bus/pci/devices/, driver and physfn as relative symlinks."""

    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "bus/pci/devices"), exist_ok=True)

    def dev_dir(self, addr):
        return os.path.join(self.root, "devices/pci0000:00", addr)

    def pci(self, addr, cls="0x020000", vendor="0x8086", device="0x1572", driver=None,
            ifnames=(), totalvfs=None, numvfs=None, physfn=None, netdir="net"):
        d = self.dev_dir(addr)
        os.makedirs(d, exist_ok=True)
        if cls is not None:
            write(os.path.join(d, "class"), cls + "\n")
        write(os.path.join(d, "vendor"), vendor + "\n")
        write(os.path.join(d, "device"), device + "\n")
        if driver:
            drv = os.path.join(self.root, "bus/pci/drivers", driver)
            os.makedirs(drv, exist_ok=True)
            os.symlink(os.path.relpath(drv, d), os.path.join(d, "driver"))
        for n in ifnames:
            os.makedirs(os.path.join(d, netdir, n), exist_ok=True)
        if totalvfs is not None:
            write(os.path.join(d, "sriov_totalvfs"), f"{totalvfs}\n")
        if numvfs is not None:
            write(os.path.join(d, "sriov_numvfs"), f"{numvfs}\n")
        if physfn:
            os.symlink(os.path.relpath(self.dev_dir(physfn), d), os.path.join(d, "physfn"))
        os.symlink(os.path.relpath(d, os.path.join(self.root, "bus/pci/devices")),
                   os.path.join(self.root, "bus/pci/devices", addr))
        return d

    def hugepages(self, kb, nr, free):
        d = os.path.join(self.root, f"kernel/mm/hugepages/hugepages-{kb}kB")
        write(os.path.join(d, "nr_hugepages"), f"{nr}\n")
        write(os.path.join(d, "free_hugepages"), f"{free}\n")

    def rdma(self, name):
        os.makedirs(os.path.join(self.root, "class/infiniband", name), exist_ok=True)


def procfs(root, release=None, meminfo=None, protocols=None):
    os.makedirs(root, exist_ok=True)
    if release is not None:
        write(os.path.join(root, "sys/kernel/osrelease"), release + "\n")
    if meminfo is not None:
        write(os.path.join(root, "meminfo"), meminfo)
    if protocols is not None:
        write(os.path.join(root, "net/protocols"), protocols)


def run_nfd(tmp, sysroot, procroot, *extra, env=None, timeout=60, want_rc=0):
    cmd = [NFD, "--sysfs-root", sysroot, "--procfs-root", procroot, "--no-measure",
           "--no-ovs", "--podwire-socket", os.path.join(tmp, "no-such.sock"),
           "--preload-dir", os.path.join(tmp, "no-preload"),
           "--switch-dir", os.path.join(tmp, "no-switch"), *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    check(p.returncode == want_rc, f"{cmd}: exit {p.returncode}, want {want_rc}",
          p.stderr + p.stdout)
    if "--no-json" in extra or p.returncode:
        return None, p
    try:
        return json.loads(p.stdout), p
    except ValueError as e:
        check(False, f"{cmd}: stdout is not JSON: {e}", p.stdout)


def label_ok(v):
    import re
    return len(v) <= 63 and re.fullmatch(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?", v)


def check_labels_valid(j):
    for k, v in j["labels"].items():
        check(label_ok(v), f"label {k}={v!r} is not a valid label value", j["labels"])


# ---- scenarios -------------------------------------------------------------

def sriov_tree(sysroot):
    s = Sysfs(sysroot)
    s.pci("0000:3b:00.0", device="0x158b", driver="i40e", ifnames=["ens1f0"],
          totalvfs=64, numvfs=8)
    s.pci("0000:3b:00.1", device="0x158b", driver="i40e", ifnames=["ens1f1"],
          totalvfs=64, numvfs=0)
    for i in range(8):
        addr = f"0000:3b:02.{i}"
        if i < 2:  # two VFs handed to DPDK
            s.pci(addr, device="0x154c", driver="vfio-pci", physfn="0000:3b:00.0")
        else:
            s.pci(addr, device="0x154c", driver="iavf", ifnames=[f"ens1f0v{i}"],
                  physfn="0000:3b:00.0")
    # an NVMe drive passed through with vfio-pci: not a network device
    s.pci("0000:5e:00.0", cls="0x010802", vendor="0x144d", device="0xa808", driver="vfio-pci")
    # a host bridge
    s.pci("0000:00:00.0", cls="0x060000", device="0x2020")
    return s


def t_sriov(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    sriov_tree(sysroot)
    procfs(procroot)
    j, _ = run_nfd(tmp, sysroot, procroot)
    L = j["labels"]
    want = {"podwire.io/nics": "10", "podwire.io/sriov-nics": "2",
            "podwire.io/sriov-vfs-total": "128", "podwire.io/sriov-vfs": "8",
            "podwire.io/dpdk-interfaces": "2", "dpdk": "2", "podwire.io/rdma-devices": "0"}
    for k, v in want.items():
        check(L.get(k) == v, f"label {k}: {L.get(k)!r}, want {v!r}", j)
    nics = {n["address"]: n for n in j["pci_network"]}
    check(len(nics) == 10 and "0000:5e:00.0" not in nics, "network devices only", j)
    pf = nics["0000:3b:00.0"]
    check(pf["sriov"] == {"total_vfs": 64, "num_vfs": 8}, "PF SR-IOV counts", pf)
    check(pf["driver"] == "i40e" and pf["interfaces"] == ["ens1f0"], "PF driver, netdev", pf)
    check(pf["vendor"] == "0x8086" and pf["device"] == "0x158b" and pf["class"] == "0x020000",
          "PF ids", pf)
    vf = nics["0000:3b:02.0"]
    check(vf["physfn"] == "0000:3b:00.0" and vf["dpdk"] and vf["driver"] == "vfio-pci"
          and vf["sriov"] is None, "VF bound to vfio-pci", vf)
    vf = nics["0000:3b:02.5"]
    check(vf["interfaces"] == ["ens1f0v5"] and not vf["dpdk"], "kernel VF", vf)
    check(j["sriov"] == {"nics": 2, "vfs_total": 128, "vfs": 8}, "sriov summary", j["sriov"])
    check(list(nics) == sorted(nics), "devices sorted by address", list(nics))
    check(j["warnings"] == [], "no warnings on a clean tree", j["warnings"])
    check_labels_valid(j)


def t_dpdk(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    s = Sysfs(sysroot)
    s.pci("0000:01:00.0", device="0x10fb", driver="vfio-pci")
    s.pci("0000:01:00.1", device="0x10fb", driver="igb_uio")
    s.pci("0000:02:00.0", device="0x1521", driver="uio_pci_generic")
    s.pci("0000:03:00.0", device="0x10fb", driver="ixgbe", ifnames=["eth1"])
    s.pci("0000:04:00.0", device="0x10d3")  # no driver bound
    # virtio-net: the netdev sits one level down, under virtio0/net/
    d = s.pci("0000:00:03.0", vendor="0x1af4", device="0x1041", driver="virtio-pci")
    os.makedirs(os.path.join(d, "virtio0/net/eth0"))
    procfs(procroot, release="5.15.0-91-generic+",
           protocols="protocol  size sockets  memory press maxhdr  slab module\n"
                     "XDP       1088      0      -1   NI       0   no   kernel\n")
    j, _ = run_nfd(tmp, sysroot, procroot)
    L = j["labels"]
    check(L.get("podwire.io/dpdk-interfaces") == "3" and L.get("dpdk") == "3", "3 DPDK", L)
    got = {(d["address"], d["driver"]) for d in j["dpdk"]["devices"]}
    check(got == {("0000:01:00.0", "vfio-pci"), ("0000:01:00.1", "igb_uio"),
                  ("0000:02:00.0", "uio_pci_generic")}, "DPDK device list", j["dpdk"])
    nics = {n["address"]: n for n in j["pci_network"]}
    check(nics["0000:00:03.0"]["interfaces"] == ["eth0"], "virtio netdev found",
          nics["0000:00:03.0"])
    check(nics["0000:04:00.0"]["driver"] is None, "unbound device", nics["0000:04:00.0"])
    check(L.get("podwire.io/nics") == "6", "6 NICs", L)
    check(L.get("podwire.io/sriov-nics") == "0" and L.get("podwire.io/sriov-vfs") == "0",
          "no SR-IOV", L)
    # fake procfs: AF_XDP comes from its protocols file, kernel from osrelease
    check(j["af_xdp"] == {"supported": True, "source": "procfs"}, "AF_XDP from procfs",
          j["af_xdp"])
    check(L.get("podwire.io/af-xdp") == "true", "af-xdp label", L)
    check(j["kernel"] == "5.15.0-91-generic+", "kernel release", j["kernel"])
    check(L.get("podwire.io/kernel") == "5.15.0-91-generic", "kernel label sanitised", L)
    check_labels_valid(j)


MEMINFO = ("MemTotal:       16000000 kB\nHugePages_Total:     512\nHugePages_Free:      500\n"
           "HugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n")


def t_hugepages(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    s = Sysfs(sysroot)
    s.hugepages(2048, 512, 500)
    s.hugepages(1048576, 4, 3)
    procfs(procroot, meminfo=MEMINFO)
    j, _ = run_nfd(tmp, sysroot, procroot)
    L = j["labels"]
    want = {"podwire.io/hugepages-2Mi": "512", "podwire.io/hugepages-2Mi-free": "500",
            "podwire.io/hugepages-1Gi": "4", "podwire.io/hugepages-1Gi-free": "3"}
    for k, v in want.items():
        check(L.get(k) == v, f"label {k}: {L.get(k)!r}, want {v!r}", L)
    check([h["size"] for h in j["hugepages"]] == ["2Mi", "1Gi"], "sizes sorted", j["hugepages"])
    check(j["hugepages"][0] == {"size": "2Mi", "size_kb": 2048, "total": 512, "free": 500,
                                "source": "sysfs"}, "2Mi entry", j["hugepages"])
    check(j["meminfo_hugepages"] == {"total": 512, "free": 500, "size_kb": 2048},
          "meminfo cross-check", j.get("meminfo_hugepages"))
    # /sys/kernel masked (as in some containers): the default size from meminfo
    sys2 = os.path.join(tmp, "sys2")
    Sysfs(sys2)
    j, _ = run_nfd(tmp, sys2, procroot)
    check(j["hugepages"] == [{"size": "2Mi", "size_kb": 2048, "total": 512, "free": 500,
                              "source": "meminfo"}], "meminfo fallback", j["hugepages"])
    check("podwire.io/hugepages-1Gi" not in j["labels"], "no 1Gi without sysfs", j["labels"])
    # a 64 KiB size (arm64) gets a Ki name
    sys3 = os.path.join(tmp, "sys3")
    Sysfs(sys3).hugepages(64, 8, 8)
    os.makedirs(os.path.join(tmp, "proc-empty"))
    j, _ = run_nfd(tmp, sys3, os.path.join(tmp, "proc-empty"))
    check(j["labels"].get("podwire.io/hugepages-64Ki") == "8", "64Ki", j["labels"])


def t_rdma(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    s = Sysfs(sysroot)
    for n in ("mlx5_1", "rxe0", "mlx5_0"):
        s.rdma(n)
    s.pci("0000:af:00.0", cls="0x020700", vendor="0x15b3", device="0x1017", driver="mlx5_core",
          ifnames=["ib0"])
    procfs(procroot)
    j, _ = run_nfd(tmp, sysroot, procroot)
    check(j["rdma"] == {"count": 3, "devices": ["mlx5_0", "mlx5_1", "rxe0"]}, "rdma", j["rdma"])
    check(j["labels"].get("podwire.io/rdma-devices") == "3", "rdma label", j["labels"])
    check(j["labels"].get("podwire.io/nics") == "1", "InfiniBand controller is class 02",
          j["labels"])


def t_empty(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    os.makedirs(sysroot)
    os.makedirs(procroot)
    j, _ = run_nfd(tmp, sysroot, procroot)
    L = j["labels"]
    want = {"podwire.io/nics": "0", "podwire.io/sriov-nics": "0",
            "podwire.io/sriov-vfs-total": "0", "podwire.io/sriov-vfs": "0",
            "podwire.io/dpdk-interfaces": "0", "podwire.io/rdma-devices": "0",
            "podwire.io/af-xdp": "false", "podwire.io/podwired": "false",
            "podwire.io/rdma-virtual": "false", "dpdk": "0",
            "podwire.io/packet-interfaces": "0", "podwire.io/packet-interfaces-free": "0"}
    check(L == want, "labels of an empty node", L)
    check(j["pci_network"] == [] and j["hugepages"] == [] and j["warnings"] == [],
          "nothing found, nothing to warn", j)
    check(j["af_xdp"]["source"] == "none", "fake procfs: no socket probe", j["af_xdp"])
    check(j["latency"] is None and j["ovs"] == {"probed": False}, "skipped probes", j)
    check(j["podwired"]["running"] is False and j["podwired"]["error"], "podwired absent",
          j["podwired"])
    check(j["switch"]["running"] is False and j["switch"]["error"], "switch absent", j["switch"])
    # --no-compat-labels drops seed 000's dpdk
    j, _ = run_nfd(tmp, sysroot, procroot, "--no-compat-labels")
    check("dpdk" not in j["labels"], "no compat label", j["labels"])
    # usage errors
    for args in (["--interval", "0"], ["--measure-seconds", "x"], ["--bogus"], ["extra"],
                 ["--log-level", "loud"]):
        p = subprocess.run([NFD, *args], capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and "podwire-nfd" in p.stderr, f"{args}: usage error",
              p.stderr)
    p = subprocess.run([NFD, "--sysfs-root", os.path.join(tmp, "nope")], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 2, "missing root is a usage error", p.stderr)
    p = subprocess.run([NFD, "--help"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0 and "--features-file" in p.stdout and "--interval" in p.stdout,
          "--help", p.stdout)


def t_malformed(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    s = Sysfs(sysroot)
    s.pci("0000:01:00.0", cls="garbage")
    s.pci("0000:01:00.1", cls=None)  # no class file at all
    s.pci("0000:01:00.2", cls="0x02000000000")  # too wide
    s.pci("0000:01:00.3", cls="")  # empty
    d = s.pci("0000:01:00.4", cls="0x02zz00")
    with open(os.path.join(d, "class"), "wb") as f:
        f.write(b"\x00\xff\xfe binary \x01")
    s.pci("0000:02:00.0", vendor="zz", device="-1", driver="vfio-pci", totalvfs="lots",
          numvfs="3")
    s.pci("0000:02:00.1", totalvfs=4, numvfs="many")
    s.pci("0000:02:00.2", totalvfs=4, numvfs=9)  # more configured than possible
    s.pci("0000:02:00.3", totalvfs=" 7", numvfs="-2")
    d = s.pci("0000:02:00.4", totalvfs=8, numvfs=2)
    write(os.path.join(d, "net"), "not a directory")
    s.pci("0000:02:00.5", totalvfs="9" * 40, numvfs=1)  # overflows
    os.symlink("driver", os.path.join(s.dev_dir("0000:02:00.1"), "driver"))  # a loop
    write(os.path.join(sysroot, "kernel/mm/hugepages/hugepages-XkB/nr_hugepages"), "1\n")
    write(os.path.join(sysroot, "kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "NaN\n")
    write(os.path.join(sysroot, "kernel/mm/hugepages/hugepages-2048kB/free_hugepages"), "12\n")
    write(os.path.join(sysroot, "kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"),
          "x" * 100000)
    os.makedirs(os.path.join(sysroot, "class/infiniband/.hidden"))
    write(os.path.join(sysroot, "class/infiniband/mlx5_0"), "")
    procfs(procroot, release="\x01\x02!!!", meminfo="HugePages_Total: lots\nHugepagesize: kB\n"
           "HugePages_Free:\n", protocols="\x00garbage\nXDPX 1 2\n")
    j, p = run_nfd(tmp, sysroot, procroot)
    L = j["labels"]
    nics = {n["address"]: n for n in j["pci_network"]}
    check(set(nics) == {"0000:02:00.0", "0000:02:00.1", "0000:02:00.2", "0000:02:00.3",
                        "0000:02:00.4", "0000:02:00.5"}, "bad classes skipped", sorted(nics))
    check(nics["0000:02:00.0"]["vendor"] == "0x0000" and nics["0000:02:00.0"]["sriov"] is None,
          "bad vendor and totalvfs: unknown", nics["0000:02:00.0"])
    check(nics["0000:02:00.1"]["sriov"] == {"total_vfs": 4, "num_vfs": None},
          "bad numvfs: unknown", nics["0000:02:00.1"])
    check(nics["0000:02:00.2"]["sriov"] == {"total_vfs": 4, "num_vfs": None},
          "numvfs > totalvfs: unknown", nics["0000:02:00.2"])
    check(nics["0000:02:00.3"]["sriov"] is None, "' 7' and '-2' rejected", nics["0000:02:00.3"])
    check(nics["0000:02:00.4"]["interfaces"] == [], "net as a file", nics["0000:02:00.4"])
    check(nics["0000:02:00.5"]["sriov"] is None, "overflow rejected", nics["0000:02:00.5"])
    check(L["podwire.io/sriov-vfs-total"] == "16" and L["podwire.io/sriov-vfs"] == "2",
          "only sane SR-IOV counts summed", L)
    check(L["podwire.io/sriov-nics"] == "3", "three SR-IOV NICs", L)
    check(L["podwire.io/dpdk-interfaces"] == "1", "vfio-pci still counted", L)
    check("podwire.io/hugepages-2Mi" not in L and L.get("podwire.io/hugepages-2Mi-free") == "12",
          "bad nr_hugepages omitted, good free kept", L)
    check("podwire.io/hugepages-1Gi" not in L, "garbage 1Gi omitted", L)
    check(L["podwire.io/rdma-devices"] == "1", "hidden entries skipped", L)
    check(L["podwire.io/af-xdp"] == "false", "XDPX is not XDP", L)
    check("podwire.io/kernel" not in L, "unprintable kernel release: no label", L)
    check(len(j["warnings"]) >= 8, "malformed files are reported", j["warnings"])
    check_labels_valid(j)


def read_features(path):
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f]
    return lines, dict(l.split("=", 1) for l in lines if l and not l.startswith("#"))


def t_features(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    sriov_tree(sysroot)
    procfs(procroot)
    fdir = os.path.join(tmp, "features.d")
    os.makedirs(fdir)
    path = os.path.join(fdir, "podwire")
    write(path, "stale=1\n")  # replaced whole
    j, _ = run_nfd(tmp, sysroot, procroot, "--features-file", path)
    lines, kv = read_features(path)
    check(kv == j["labels"], "file holds exactly the labels", {"file": kv, "json": j["labels"]})
    check(all(l.startswith("#") or "=" in l for l in lines if l), "key=value lines", lines)
    check(not any(l.startswith("# +") for l in lines), "no expiry in oneshot", lines)
    check(os.listdir(fdir) == ["podwire"], "no temp file left behind", os.listdir(fdir))
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o644, "mode 0644", oct(os.stat(path).st_mode))
    # rewrite with an expiry; the inode changes (rename, not rewrite in place)
    ino = os.stat(path).st_ino
    _, p = run_nfd(tmp, sysroot, procroot, "--features-file", path, "--features-expiry", "3600",
                   "--no-json")
    check(p.stdout == "", "--no-json prints nothing", p.stdout)
    lines, kv2 = read_features(path)
    check(kv2 == kv, "same labels", kv2)
    exp = [l for l in lines if l.startswith("# +expiry-time=")]
    check(len(exp) == 1, "expiry directive", lines)
    t = time.mktime(time.strptime(exp[0].split("=", 1)[1], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    check(abs(t - (time.time() + 3600)) < 120, "expiry about an hour from now", exp)
    check(os.stat(path).st_ino != ino, "replaced by rename", ino)
    check(os.listdir(fdir) == ["podwire"], "no temp file left behind", os.listdir(fdir))
    # a directory that does not exist: exit 1, nothing created
    bad = os.path.join(tmp, "nodir", "podwire")
    _, p = run_nfd(tmp, sysroot, procroot, "--features-file", bad, want_rc=1)
    check("cannot write" in p.stderr, "error message", p.stderr)
    check(not os.path.exists(os.path.join(tmp, "nodir")), "nothing created", os.listdir(tmp))
    # a path whose directory is a file
    write(os.path.join(tmp, "afile"), "")
    _, p = run_nfd(tmp, sysroot, procroot, "--features-file",
                   os.path.join(tmp, "afile", "podwire"), want_rc=1)


def t_real(tmp):
    """This machine: no crash, and every figure agrees with what we read here."""
    cmd = [NFD, "--podwire-socket", os.path.join(tmp, "no.sock"), "--measure-seconds", "0.3"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    check(p.returncode == 0, f"exit {p.returncode}", p.stderr)
    j = json.loads(p.stdout)
    L = j["labels"]
    with open("/proc/net/protocols") as f:
        xdp = any(l.split()[:1] == ["XDP"] for l in f)
    check(j["af_xdp"]["supported"] == xdp, f"AF_XDP {j['af_xdp']} vs protocols {xdp}", j["af_xdp"])
    check(L["podwire.io/af-xdp"] == ("true" if xdp else "false"), "af-xdp label", L)
    ib = "/sys/class/infiniband"
    nib = len(os.listdir(ib)) if os.path.isdir(ib) else 0
    check(L["podwire.io/rdma-devices"] == str(nib), f"rdma {nib}", L)
    hp = "/sys/kernel/mm/hugepages"
    sizes = sorted(int(d[10:-2]) for d in os.listdir(hp)) if os.path.isdir(hp) else []
    check([h["size_kb"] for h in j["hugepages"]] == sizes, "hugepage sizes", j["hugepages"])
    for h in j["hugepages"]:
        with open(f"{hp}/hugepages-{h['size_kb']}kB/nr_hugepages") as f:
            check(h["total"] == int(f.read()), "nr_hugepages", h)
    n02 = 0
    for d in os.listdir("/sys/bus/pci/devices"):
        with open(f"/sys/bus/pci/devices/{d}/class") as f:
            n02 += int(f.read(), 16) >> 16 == 2
    check(L["podwire.io/nics"] == str(n02), f"{n02} network devices", j["pci_network"])
    check(j["kernel"] == os.uname().release, "kernel", j["kernel"])
    check(L["podwire.io/podwired"] == "false", "no router on that socket", L)
    check(j["ovs"]["probed"] and "podwire.io/ovs-dpdk" in L, "OvS probed", j["ovs"])
    # measured with the build's podwire-bench
    for path in ("shm", "tcp"):
        m = j["latency"][path]
        check("p50_ns" in m and m["p50_ns"] > 0 and m["msgs"] > 0, f"{path} measured", m)
        v = L.get(f"podwire.io/{path}-rtt-ns", "")
        check(v.isdigit() and 0.94 * m["p50_ns"] <= int(v) <= 1.06 * m["p50_ns"],
              f"{path} label rounds p50", {"label": v, "m": m})
        check(L.get(f"podwire.io/{path}-latency-class") == m["class"], "class label", L)
    check(L.get("podwire.io/latency-class") == j["latency"]["tcp"]["class"],
          "without podwired, pods use TCP", L)
    check(took < 30, f"took {took:.1f} s", took)
    check_labels_valid(j)


# ---- OvS ---------------------------------------------------------------------

def fake_tool(bindir, name, script):
    path = os.path.join(bindir, name)
    write(path, "#!/bin/sh\n" + script)
    os.chmod(path, 0o755)


def t_ovs(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    os.makedirs(sysroot)
    os.makedirs(procroot)
    # PATH without any real OvS (installed here for the DPDK rows of make
    # bench-nfv): our bin dir plus the programs the fake tools use.
    basedir = os.path.join(tmp, "base")
    os.makedirs(basedir)
    for t in ("sleep", "cat"):
        real = shutil.which(t, path="/usr/bin:/bin")
        if real:
            os.symlink(real, os.path.join(basedir, t))
    base = [basedir]

    def case(name, vswitchd, vsctl):
        bindir = os.path.join(tmp, name)
        os.makedirs(bindir)
        if vswitchd is not None:
            fake_tool(bindir, "ovs-vswitchd", vswitchd)
        if vsctl is not None:
            fake_tool(bindir, "ovs-vsctl", vsctl)
        env = dict(os.environ, PATH=":".join([bindir] + base))
        t0 = time.monotonic()
        j, _ = run_nfd(tmp, sysroot, procroot, "--ovs", env=env)
        return j, time.monotonic() - t0

    ver_dpdk = 'echo "ovs-vswitchd (Open vSwitch) 3.1.0"; echo "DPDK 22.11.1"\n'
    ver_plain = 'echo "ovs-vswitchd (Open vSwitch) 3.1.0"\n'
    db = ('case "$*" in *dpdk_initialized*) echo %s;; *dpdk-init*) echo \'"%s"\';; '
          '*) exit 1;; esac\n')
    j, _ = case("a", ver_dpdk, db % ("true", "true"))
    check(j["ovs"]["dpdk"] and j["ovs"]["dpdk_initialized"] is True and j["ovs"]["dpdk_built"]
          and j["ovs"]["version"] == "ovs-vswitchd (Open vSwitch) 3.1.0", "OvS-DPDK up", j["ovs"])
    check(j["labels"].get("podwire.io/ovs-dpdk") == "true" and j["labels"].get("ovs-dpdk")
          == "true", "labels", j["labels"])
    # built with DPDK but the database says it is not initialised: false
    j, _ = case("b", ver_dpdk, db % ("false", "false"))
    check(j["labels"].get("podwire.io/ovs-dpdk") == "false" and j["ovs"]["dpdk_built"],
          "database wins", j["ovs"])
    # no database (ovs-vsctl fails): seed 000's test on --version
    j, _ = case("c", ver_dpdk, "exit 1\n")
    check(j["labels"].get("podwire.io/ovs-dpdk") == "true" and
          j["ovs"]["dpdk_initialized"] is None, "version fallback", j["ovs"])
    j, _ = case("d", ver_plain, "exit 1\n")
    check(j["labels"].get("podwire.io/ovs-dpdk") == "false", "plain OvS", j["ovs"])
    # a wedged database: ovs-vsctl never answers; it is killed at the limit
    j, took = case("e", ver_dpdk, "sleep 60\n")
    check(j["labels"].get("podwire.io/ovs-dpdk") == "true", "hang falls back", j["ovs"])
    check(took < 15, f"a hanging ovs-vsctl cost {took:.1f} s", j["warnings"])
    check(any("ovs-vsctl" in w and "timed out" in w for w in j["warnings"]), "timeout warned",
          j["warnings"])
    # no OvS at all
    j, _ = case("f", None, None)
    check(j["labels"].get("podwire.io/ovs-dpdk") == "false" and not j["ovs"]["ovs_vswitchd"],
          "no OvS", j["ovs"])
    # --no-ovs: no label (unknown, not false)
    j, _ = run_nfd(tmp, sysroot, procroot)
    check("podwire.io/ovs-dpdk" not in j["labels"] and "ovs-dpdk" not in j["labels"],
          "skipped", j["labels"])


# ---- podwired ------------------------------------------------------------------

def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    check(False, f"timed out waiting for {what}")


def spawn(tmp, name, cmd, ready):
    """Start daemon @cmd (its stderr to tmp/NAME.log) and wait for path
    @ready to appear; fail with its log if it exits first."""
    log = open(os.path.join(tmp, name + ".log"), "w+")
    d = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    wait_for(lambda: os.path.exists(ready) or d.poll() is not None, 10, name + " ready")
    if d.poll() is not None:
        log.seek(0)
        check(False, name + " runs", log.read())
    return d


def podwired_start(tmp):
    """A real podwired on tmp/pw.sock accelerating 198.18.0.0/15: (process, socket)."""
    sock = os.path.join(tmp, "pw.sock")
    return spawn(tmp, "podwired", [PODWIRED, "-f", "-s", sock, "-p", "198.18.0.0/15"], sock), sock


def t_podwired(tmp):
    if not PODWIRED or not os.access(PODWIRED, os.X_OK):
        skip("podwired not built")
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    os.makedirs(sysroot)
    os.makedirs(procroot)
    d, sock = podwired_start(tmp)
    try:
        # A preload tree with the virtual RDMA device's library, as the
        # DaemonSet copies it: podwire0 for pods, with the router.
        pre = os.path.join(tmp, "preload")
        os.makedirs(os.path.join(pre, "lib", "x86_64-linux-gnu"))
        for lib in ("libpodwire.so", "libpodwire-verbs.so"):
            open(os.path.join(pre, "lib", "x86_64-linux-gnu", lib), "w").close()
        cmd = [NFD, "--sysfs-root", sysroot, "--procfs-root", procroot, "--no-measure",
               "--no-ovs", "--preload-dir", pre, "--podwire-socket", sock]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, "exit 0", p.stderr)
        j = json.loads(p.stdout)
        check(j["podwired"]["running"] and j["podwired"]["prefixes"] == "198.18.0.0/15"
              and j["podwired"]["version"] >= 1, "HELLO answered", j["podwired"])
        check(j["labels"]["podwire.io/podwired"] == "true", "label", j["labels"])
        check(j["labels"]["podwire.io/rdma-virtual"] == "true" and j["podwired"]["rdma_virtual"],
              "podwire0's library in the preload tree", j)
        os.unlink(os.path.join(pre, "lib", "x86_64-linux-gnu", "libpodwire-verbs.so"))
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check(json.loads(p.stdout)["labels"]["podwire.io/rdma-virtual"] == "false",
              "no libpodwire-verbs.so, no podwire0", p.stdout)
        # $PODWIRE_SOCKET is the default when the flag is absent
        env = dict(os.environ, PODWIRE_SOCKET=sock)
        p = subprocess.run(cmd[:-2], capture_output=True, text=True, timeout=30, env=env)
        check(json.loads(p.stdout)["podwired"]["running"], "$PODWIRE_SOCKET", p.stdout)
    finally:
        d.terminate()
        d.wait(10)
    # something on the socket that never answers: false, after the 2 s limit
    mute = os.path.join(tmp, "mute.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(mute)
    srv.listen(4)
    try:
        t0 = time.monotonic()
        j, _ = run_nfd(tmp, sysroot, procroot, "--podwire-socket", mute)
        took = time.monotonic() - t0
        check(j["podwired"]["running"] is False and "timed out" in j["podwired"]["error"],
              "mute socket", j["podwired"])
        check(took < 10, f"took {took:.1f} s", took)
    finally:
        srv.close()
    # a stream socket that closes at once
    j, _ = run_nfd(tmp, sysroot, procroot, "--podwire-socket", os.path.join(tmp, "sys"))
    check(j["podwired"]["running"] is False, "a directory is no router", j["podwired"])


# ---- API server --------------------------------------------------------------------

class ApiServer:
    def __init__(self, tmp, state):
        if not APISERVER or not os.path.exists(APISERVER):
            skip("tests/kube/apiserver.py not present")
        self.tmp = tmp
        sf = os.path.join(tmp, "state.json")
        with open(sf, "w") as f:
            json.dump(state, f)
        self.p = subprocess.Popen([sys.executable, APISERVER, "--port", "0", "--state", sf],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        check(line.strip().isdigit(), "apiserver printed its port",
              line + (self.p.stderr.read() if self.p.poll() is not None else ""))
        self.port = int(line)
        self.kubeconfig = os.path.join(tmp, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: http://127.0.0.1:{self.port}
users:
- name: test
  user:
    token: ignored
contexts:
- name: test
  context:
    cluster: test
    user: test
current-context: test
""")

    def call(self, method, path, body=None):
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def labels(self, node):
        for n in self.call("GET", "/_test/state")["nodes"]:
            if n["metadata"]["name"] == node:
                return n["metadata"].get("labels")
        check(False, f"node {node} gone")

    def requests(self):
        return self.call("GET", "/_test/requests")["requests"]

    def close(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class RaceProxy:
    """An HTTP proxy in front of the double that runs `meddle` once, just
    before it forwards the first PATCH: a concurrent writer, on cue."""

    def __init__(self, api, meddle):
        import http.server
        import threading
        import urllib.error
        import urllib.request
        proxy = self
        self.meddled = False

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def fwd(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if self.command == "PATCH" and not proxy.meddled:
                    proxy.meddled = True
                    meddle()
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() in ("content-type", "authorization", "accept")}
                req = urllib.request.Request(f"http://127.0.0.1:{api.port}{self.path}",
                                             data=body, method=self.command, headers=hdrs)
                try:
                    r = urllib.request.urlopen(req, timeout=10)
                except urllib.error.HTTPError as e:
                    r = e
                data = r.read()
                self.send_response(r.status if hasattr(r, "status") else r.code)
                self.send_header("Content-Type", r.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = fwd

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.kubeconfig = api.kubeconfig + ".race"
        with open(api.kubeconfig) as f, open(self.kubeconfig, "w") as g:
            g.write(f.read().replace(f":{api.port}", f":{self.srv.server_address[1]}"))

    def __enter__(self):
        self.thread.start()
        return self.kubeconfig

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()


def node(name, labels=None):
    md = {"name": name}
    if labels is not None:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "Node", "metadata": md,
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi"}}}


FOREIGN = {"kubernetes.io/hostname": "n1", "example.com/foo": "bar", "dpdk-like": "x"}


def t_label(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    sriov_tree(sysroot)
    procfs(procroot)
    old = dict(FOREIGN, **{"podwire.io/old-thing": "x", "podwire.io/dpdk-interfaces": "7",
                           "podwire.io/rtt": "1", "dpdk": "9", "ovs-dpdk": "true"})
    api = ApiServer(tmp, {"nodes": [node("n1", old), node("n2"), node("n3", {})]})
    try:
        api.call("DELETE", "/_test/requests")
        j, p = run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, "--node-name", "n1")
        want = dict(FOREIGN, **j["labels"])
        got = api.labels("n1")
        check(got == want, "produced set, stale owned removed, foreign kept",
              {"got": got, "want": want})
        check("podwire.io/old-thing" not in got and "ovs-dpdk" not in got,
              "stale owned labels removed (ovs-dpdk: probe skipped)", got)
        check(j["node"] == "n1", "JSON names the node", j["node"])
        reqs = api.requests()
        check([(r["method"], r["path"]) for r in reqs] ==
              [("GET", "/api/v1/nodes/n1"), ("PATCH", "/api/v1/nodes/n1")], "one GET, one PATCH",
              reqs)
        patch = reqs[1]
        check(patch["content_type"].startswith("application/json-patch+json"), "JSON patch",
              patch)
        ops = patch["body"]
        paths = [o["path"] for o in ops]
        check("/metadata/labels/podwire.io~1old-thing" in paths, "'/' escaped as ~1", ops)
        for i, o in enumerate(ops):
            if o["op"] in ("replace", "remove"):
                check(i > 0 and ops[i - 1] == {"op": "test", "path": o["path"],
                                               "value": old[o["path"][17:].replace("~1", "/")]},
                      "test before replace/remove", ops)
        check(not any(o["path"].endswith(k.replace("/", "~1")) for o in ops for k in FOREIGN),
              "no op on foreign labels", ops)
        # another writer changes an owned label between our GET and PATCH:
        # the patch's test fails (422), the node is read again, the retry wins
        api.call("POST", "/_test/objects", {"nodes": [node("n1", old)]})
        api.call("DELETE", "/_test/requests")
        with RaceProxy(api, lambda: api.call("POST", "/_test/objects", {"nodes": [node(
                "n1", dict(old, **{"podwire.io/dpdk-interfaces": "5"}))]})) as kc:
            run_nfd(tmp, sysroot, procroot, "--kubeconfig", kc, "--node-name", "n1")
        reqs = [(r["method"], r["status"]) for r in api.requests()
                if r["path"] == "/api/v1/nodes/n1"]
        check(reqs == [("GET", 200), ("PATCH", 422), ("GET", 200), ("PATCH", 200)],
              "test failed, re-read, retried", api.requests())
        check(api.labels("n1") == want, "labels right after the race", api.labels("n1"))
        # a second pass changes nothing: no PATCH at all
        api.call("DELETE", "/_test/requests")
        run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, "--node-name", "n1")
        check([r["method"] for r in api.requests()] == ["GET"], "idempotent", api.requests())
        # the hardware changes: a VF leaves vfio-pci
        os.unlink(os.path.join(sysroot, "devices/pci0000:00/0000:3b:02.1/driver"))
        run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, "--node-name", "n1")
        got = api.labels("n1")
        check(got["podwire.io/dpdk-interfaces"] == "1" and got["dpdk"] == "1", "updated", got)
        # --no-compat-labels: dpdk is no longer ours, so it is left as it is
        api.call("POST", "/_test/objects", {"nodes": [node("n1", dict(got, dpdk="9"))]})
        run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, "--node-name", "n1",
                "--no-compat-labels")
        check(api.labels("n1").get("dpdk") == "9", "compat label left alone", api.labels("n1"))
        # nodes without labels, or with an empty map
        for n in ("n2", "n3"):
            run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, "--node-name", n)
            check(api.labels(n) == j["labels"] | {"podwire.io/dpdk-interfaces": "1", "dpdk": "1"},
                  f"{n} labelled", api.labels(n))
        # $NODE_NAME is the default node
        env = dict(os.environ, NODE_NAME="n2")
        api.call("DELETE", "/_test/requests")
        run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, env=env)
        check(api.requests()[0]["path"] == "/api/v1/nodes/n2", "$NODE_NAME", api.requests())
        # no such node; server errors: exit 1 with the reason
        _, p = run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, "--node-name",
                       "nope", want_rc=1)
        check("nope" in p.stderr, "error names the node", p.stderr)
        api.call("POST", "/_test/fail", {"count": 1, "code": 500, "match": "nodes/n1"})
        _, p = run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, "--node-name",
                       "n1", want_rc=1)
        check("500" in p.stderr or "nternal" in p.stderr, "server error reported", p.stderr)
    finally:
        api.close()
    # no API server at all
    _, p = run_nfd(tmp, sysroot, procroot, "--kubeconfig", api.kubeconfig, "--node-name", "n1",
                   want_rc=1)


def t_daemon(tmp):
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    sriov_tree(sysroot)
    procfs(procroot)
    path = os.path.join(tmp, "podwire")
    use_api = APISERVER and os.path.exists(APISERVER)
    api = ApiServer(tmp, {"nodes": [node("n1", dict(FOREIGN))]}) if use_api else None
    cmd = [NFD, "--sysfs-root", sysroot, "--procfs-root", procroot, "--no-measure", "--no-ovs",
           "--podwire-socket", os.path.join(tmp, "none.sock"), "--interval", "1",
           "--features-file", path]
    if api:
        cmd += ["--kubeconfig", api.kubeconfig, "--node-name", "n1"]
    d = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: os.path.exists(path), 10, "first features file")
        _, kv = read_features(path)
        check(kv.get("podwire.io/rdma-devices") == "0", "first pass", kv)
        with open(path) as f:
            check("# +expiry-time=" in f.read(), "daemon mode writes an expiry", path)
        Sysfs(sysroot).rdma("mlx5_0")
        wait_for(lambda: read_features(path)[1].get("podwire.io/rdma-devices") == "1", 10,
                 "re-probe")
        if api:
            wait_for(lambda: api.labels("n1").get("podwire.io/rdma-devices") == "1", 10,
                     "re-label")
            check(all(api.labels("n1")[k] == v for k, v in FOREIGN.items()), "foreign kept",
                  api.labels("n1"))
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        rc = d.wait(10)
        check(rc == 0, f"SIGTERM: exit {rc}", d.stderr.read())
        check(time.monotonic() - t0 < 5, "prompt exit")
        check(d.stdout.read() == "", "no JSON on stdout in daemon mode")
        check(os.listdir(tmp).count("podwire") == 1 and
              not any(f.startswith(".podwire") for f in os.listdir(tmp)), "no temp files",
              os.listdir(tmp))
    finally:
        if d.poll() is None:
            d.kill()
            d.wait()
        if api:
            api.close()


# ---- podwire-switch -------------------------------------------------------------

def t_switch(tmp):
    """A real podwire-switch giving at most 8 ports, 3 of them taken: the
    node's packet interfaces are 8, 5 of them free; one removed, 6."""
    if not SWITCH or not os.access(SWITCH, os.X_OK):
        skip("podwire-switch not built")
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    os.makedirs(sysroot)
    os.makedirs(procroot)
    run = os.path.join(tmp, "switch")
    ports = []
    for i in range(3):
        ports += ["-p", f"p{i},socket={os.path.join(tmp, f'p{i}.sock')}"]
    d = spawn(tmp, "switch", [SWITCH, "-d", run, "--max-ports", "8", "--nice", "0", *ports],
              os.path.join(run, "control"))
    try:
        j, _ = run_nfd(tmp, sysroot, procroot, "--switch-dir", run)
        check(j["switch"] == {"running": True, "max_ports": 8, "ports": 3}, "report", j["switch"])
        check(j["labels"]["podwire.io/packet-interfaces"] == "8" and
              j["labels"]["podwire.io/packet-interfaces-free"] == "5", "labels", j["labels"])
        cli = os.path.join(os.path.dirname(NFD), "..", "cli", "podwire")
        p = subprocess.run([cli, "switch", "--dir", run, "port", "del", "p1"],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, "port del", p.stderr)
        j, _ = run_nfd(tmp, sysroot, procroot, "--switch-dir", run)
        check(j["labels"]["podwire.io/packet-interfaces-free"] == "6", "one freed", j["labels"])
        check_labels_valid(j)
    finally:
        d.terminate()
        d.wait()


def t_kube(tmp):
    """Labels through a real kube-apiserver, as the podwire-nfd service account
    with exactly deploy/nfd-daemonset.yaml's RBAC."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kube"))
    import realkube
    bindir = realkube.bindir_find(KUBE_BUILD) if KUBE_BUILD else None
    if not bindir:
        skip("no cached Kubernetes control plane (run tools/kube-build.sh as root)")
    sysroot, procroot = os.path.join(tmp, "sys"), os.path.join(tmp, "proc")
    sriov_tree(sysroot)
    procfs(procroot)
    cp = realkube.ControlPlane(tmp, bindir).start()
    try:
        deploy = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy")
        cp.kubectl("apply", "-f", os.path.join(deploy, "nfd-daemonset.yaml"))
        old = dict(FOREIGN, **{"podwire.io/old-thing": "x", "dpdk": "9"})
        cp.create({"kind": "Node", "metadata": {"name": "n1", "labels": old}})
        kc = cp.kubeconfig("nfd")
        j, _ = run_nfd(tmp, sysroot, procroot, "--kubeconfig", kc, "--node-name", "n1")
        n = cp.must("GET", "/api/v1/nodes/n1")
        want = dict(FOREIGN, **j["labels"])
        check(n["metadata"]["labels"] == want, "produced set, stale owned removed, foreign kept",
              {"got": n["metadata"]["labels"], "want": want})
        rv = n["metadata"]["resourceVersion"]
        # a second pass changes nothing, so the server stores nothing
        run_nfd(tmp, sysroot, procroot, "--kubeconfig", kc, "--node-name", "n1")
        n = cp.must("GET", "/api/v1/nodes/n1")
        check(n["metadata"]["resourceVersion"] == rv, "idempotent: no write",
              n["metadata"])
        # the hardware changes: a VF leaves vfio-pci
        os.unlink(os.path.join(sysroot, "devices/pci0000:00/0000:3b:02.1/driver"))
        run_nfd(tmp, sysroot, procroot, "--kubeconfig", kc, "--node-name", "n1")
        got = cp.must("GET", "/api/v1/nodes/n1")["metadata"]["labels"]
        check(got["podwire.io/dpdk-interfaces"] == "1" and got["dpdk"] == "1", "updated", got)
        # with podwired running: its socket as an annotation (a path is no label
        # value), in the same patch; gone again when podwired is
        if PODWIRED and os.access(PODWIRED, os.X_OK):
            d, sock = podwired_start(tmp)
            try:
                j, _ = run_nfd(tmp, sysroot, procroot, "--kubeconfig", kc, "--node-name", "n1",
                               "--podwire-socket", sock)
                n = cp.must("GET", "/api/v1/nodes/n1")
                check(n["metadata"].get("annotations", {}).get("podwire.io/podwired-socket") ==
                      sock and n["metadata"]["labels"]["podwire.io/podwired"] == "true",
                      "socket annotation and podwired label", n["metadata"])
            finally:
                d.terminate()
                d.wait()
            run_nfd(tmp, sysroot, procroot, "--kubeconfig", kc, "--node-name", "n1")
            n = cp.must("GET", "/api/v1/nodes/n1")
            check("podwire.io/podwired-socket" not in n["metadata"].get("annotations", {}),
                  "socket annotation removed with podwired", n["metadata"])
        # a Node that does not exist: a clear failure, nothing created
        _, p = run_nfd(tmp, sysroot, procroot, "--kubeconfig", kc, "--node-name", "nope",
                       want_rc=1)
        check("nope" in p.stderr, "names the missing node", p.stderr)
        code, _ = cp.api("GET", "/api/v1/nodes/nope")
        check(code == 404, "no node created", code)
    finally:
        cp.stop()


SCENARIOS = {"sriov": t_sriov, "dpdk": t_dpdk, "hugepages": t_hugepages, "rdma": t_rdma,
             "empty": t_empty, "malformed": t_malformed, "features": t_features,
             "real": t_real, "ovs": t_ovs, "podwired": t_podwired, "label": t_label,
             "daemon": t_daemon, "switch": t_switch, "kube": t_kube}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} {'|'.join(SCENARIOS)}", file=sys.stderr)
        return 2
    if not NFD or not os.access(NFD, os.X_OK):
        print("FAIL: $NFD is not an executable", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix=f"nfd-{sys.argv[1]}-") as tmp:
        try:
            SCENARIOS[sys.argv[1]](tmp)
        except Fail as e:
            print(e, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
