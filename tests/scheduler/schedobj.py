# SPDX-License-Identifier: MIT
"""The Node and Pod objects the scheduler's tests make (test-live.py against
the API-server double, test-real.py against kube-apiserver)."""


def node(name, labels=None, cpu="8"):
    """A Ready node with cpu cores, 16 GiB and 110 pods allocatable."""
    return {"kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
                       "capacity": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name, ann=None, sched="podwire-scheduler", ns="default", cpu="100m", node_name=None):
    """A one-container pod of scheduler sched; bound to node_name when given."""
    p = {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "annotations": ann or {}},
         "spec": {"schedulerName": sched, "containers": [
             {"name": "c", "image": "busybox",
              "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}}
    if node_name:
        p["spec"]["nodeName"] = node_name
    return p
