#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate a synthetic cluster file for `podwire-scheduler simulate`.

A v1 List of Nodes and Pods, deterministic for a given --seed. The mix:
nodes 10% DPDK (1-4 interfaces), 10% SR-IOV (4-16 VFs), 20% OvS-DPDK, the
rest plain; 30% run podwired (shared-memory path, some with a measured RTT);
3% carry a NoSchedule taint, 1% are cordoned, 1% not Ready. Pending pods
ask for 100 us (co-located with a peer) 5%, 800-5000 us 15%, 5000-10000 us
25%, more 50%, nothing 5%; a few use a nodeSelector, a toleration or an
extended resource. --bound pods are already running on random nodes.

Usage: tools/gen-cluster.py [--nodes N] [--pending N] [--bound N] [--seed S] [-o FILE]
"""
import argparse
import json
import random
import sys

MI = 1 << 20


def node(rng, i):
    name = "node-%05d" % i
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "zone-%d" % (i % 4)}
    alloc = {
        "cpu": rng.choice(["16", "32", "64", "31500m"]),
        "memory": rng.choice(["64Gi", "128Gi", "256Gi", "131072Mi"]),
        "pods": "110",
        "ephemeral-storage": "500Gi",
    }
    r = rng.random()
    if r < 0.10:
        labels["podwire.io/dpdk-interfaces"] = str(rng.randint(1, 4))
    elif r < 0.20:
        labels["podwire.io/sriov-vfs"] = str(rng.choice([4, 8, 16]))
    elif r < 0.40:
        labels["podwire.io/ovs-dpdk"] = "true"
    if rng.random() < 0.30:
        labels["podwire.io/podwired"] = "true"
        if rng.random() < 0.5:
            labels["podwire.io/shm-rtt-ns"] = str(rng.choice([210, 480, 1500, 48000]))
    if rng.random() < 0.05:
        alloc["example.com/gpu"] = str(rng.randint(1, 8))
    spec = {}
    r = rng.random()
    if r < 0.03:
        spec["taints"] = [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]
    elif r < 0.04:
        spec["unschedulable"] = True
    ready = "False" if 0.04 <= r < 0.05 else "True"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"allocatable": alloc, "capacity": dict(alloc),
                   "conditions": [{"type": "Ready", "status": ready}]},
    }


def pod(rng, i, nodes, pending, names):
    name = "%s-%06d" % ("pend" if pending else "run", i)
    ann = {}
    spec = {
        "schedulerName": "podwire-scheduler",
        "containers": [{
            "name": "app", "image": "registry.example/app:1",
            "resources": {"requests": {
                "cpu": rng.choice(["100m", "250m", "500m", "1", "2"]),
                "memory": "%dMi" % rng.choice([128, 256, 512, 1024, 4096]),
            }},
        }],
    }
    r = rng.random()
    if r < 0.05 and names:
        ann["podwire.io/max-latency-us"] = "100"
        ann["podwire.io/peer"] = rng.choice(names)
    elif r < 0.20:
        ann["podwire.io/max-latency-us"] = str(rng.randint(800, 4999))
    elif r < 0.45:
        ann["latency"] = str(rng.randint(5000, 9999))
    elif r < 0.95:
        ann["podwire.io/max-latency-us"] = str(rng.randint(10000, 100000))
    r = rng.random()
    if r < 0.02:
        spec["nodeSelector"] = {"topology.kubernetes.io/zone": "zone-%d" % rng.randint(0, 3)}
    elif r < 0.04:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    elif r < 0.05:
        spec["containers"][0]["resources"]["limits"] = {"example.com/gpu": "1"}
    if rng.random() < 0.05:
        spec["initContainers"] = [{"name": "init", "image": "busybox",
                                   "resources": {"requests": {"cpu": "1", "memory": "64Mi"}}}]
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": "bench", "uid": "uid-%s" % name,
                      "annotations": ann},
         "spec": spec, "status": {"phase": "Pending"}}
    if not pending:
        p["spec"]["nodeName"] = rng.choice(nodes)["metadata"]["name"]
        p["status"]["phase"] = "Running"
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--pending", type=int, default=10000)
    ap.add_argument("--bound", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    nodes = [node(rng, i) for i in range(a.nodes)]
    items = list(nodes)
    items += [pod(rng, i, nodes, False, []) for i in range(a.bound)]
    pending_names = ["pend-%06d" % i for i in range(a.pending)]
    items += [pod(rng, i, nodes, True, pending_names[:i]) for i in range(a.pending)]
    out = sys.stdout if a.output == "-" else open(a.output, "w")
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, out, separators=(",", ":"))
    out.write("\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
