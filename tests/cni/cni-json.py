#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks of CNI JSON for the podwire-cni tests (spec 1.0.0, section 5).

  cni-json.py version FILE                     VERSION output
  cni-json.py result FILE VER IFNAME SANDBOX   an ADD result; prints the
                                               sandbox interface's first
                                               address (without the prefix)
  cni-json.py error FILE CODE                  an error object with CODE
  cni-json.py prev CONF RESULT                 CONF with prevResult = RESULT
  cni-json.py same A B                         equal results, cniVersion aside
  cni-json.py pods FILE ID IFNAME [ADDR]       `podwire status --pods --json`
                                               lists ID/IFNAME (with ADDR)
  cni-json.py nopod FILE ID IFNAME             ... does not list it
  cni-json.py get FILE KEY...                  print a value (keys or indexes)

Exit 0 when the check holds, 1 with the reason on stderr otherwise.
"""
import ipaddress
import json
import sys


def fail(msg):
    print(f"cni-json.py: {sys.argv[1]}: {msg}", file=sys.stderr)
    sys.exit(1)


def load(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        fail(f"{path}: {e}")
    try:
        return json.loads(text)
    except ValueError as e:
        fail(f"{path} is not one JSON document ({e}): {text[:400]!r}")


def need(cond, msg):
    if not cond:
        fail(msg)


def check_version(doc):
    need(isinstance(doc, dict), "not an object")
    need(isinstance(doc.get("cniVersion"), str), "no cniVersion")
    sv = doc.get("supportedVersions")
    need(isinstance(sv, list) and all(isinstance(v, str) for v in sv),
         "supportedVersions is not a list of strings")
    for v in ("0.4.0", "1.0.0"):
        need(v in sv, f"{v} not in supportedVersions {sv}")


def check_result(doc, ver, ifname, sandbox):
    need(isinstance(doc, dict), "not an object")
    need(doc.get("cniVersion") == ver, f"cniVersion {doc.get('cniVersion')!r}, want {ver!r}")
    ifs = doc.get("interfaces")
    need(isinstance(ifs, list) and ifs, "no interfaces")
    for i, itf in enumerate(ifs):
        need(isinstance(itf.get("name"), str) and itf["name"], f"interfaces[{i}] has no name")
        if "mac" in itf:
            need(len(itf["mac"].split(":")) == 6, f"interfaces[{i}].mac {itf['mac']!r}")
    idx = [i for i, itf in enumerate(ifs)
           if itf["name"] == ifname and itf.get("sandbox") == sandbox]
    need(len(idx) == 1, f"no single interface {ifname} with sandbox {sandbox}: {ifs}")
    ips = doc.get("ips")
    need(isinstance(ips, list) and ips, "no ips")
    first = None
    for i, ip in enumerate(ips):
        need(isinstance(ip.get("interface"), int) and 0 <= ip["interface"] < len(ifs),
             f"ips[{i}].interface {ip.get('interface')!r} is not an index into interfaces")
        try:
            iface = ipaddress.ip_interface(ip["address"])
        except (KeyError, ValueError):
            fail(f"ips[{i}].address {ip.get('address')!r} is not CIDR")
        need("/" in ip["address"], f"ips[{i}].address {ip['address']} has no prefix")
        if "gateway" in ip:
            gw = ipaddress.ip_address(ip["gateway"])
            need(gw in iface.network, f"ips[{i}].gateway {gw} outside {iface.network}")
        if ver == "1.0.0":
            need("version" not in ip, f"ips[{i}] has 'version', gone in 1.0.0")
        else:
            need(ip.get("version") == str(iface.version), f"ips[{i}].version for {ver}")
        if ip["interface"] == idx[0] and first is None:
            first = str(iface.ip)
    need(first is not None, "no address on the sandbox interface")
    for i, r in enumerate(doc.get("routes", [])):
        try:
            ipaddress.ip_network(r["dst"])
            if "gw" in r:
                ipaddress.ip_address(r["gw"])
        except (KeyError, ValueError):
            fail(f"routes[{i}] {r!r}")
    need(isinstance(doc.get("dns", {}), dict), "dns is not an object")
    print(first)


def check_error(doc, code):
    need(isinstance(doc, dict), "not an object")
    need(isinstance(doc.get("cniVersion"), str), "no cniVersion")
    need(doc.get("code") == code, f"code {doc.get('code')!r}, want {code}: {doc}")
    need(isinstance(doc.get("msg"), str) and doc["msg"], "no msg")
    need(isinstance(doc.get("details"), str) and doc["details"], "no details")


def find_pod(pods, cid, ifname):
    need(isinstance(pods, list), "pods: not a list")
    return [p for p in pods if p.get("containerId") == cid and p.get("ifname") == ifname]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "version":
        check_version(load(args[0]))
    elif cmd == "result":
        check_result(load(args[0]), args[1], args[2], args[3])
    elif cmd == "error":
        check_error(load(args[0]), int(args[1]))
    elif cmd == "prev":
        conf = load(args[0])
        conf["prevResult"] = load(args[1])
        print(json.dumps(conf))
    elif cmd == "same":
        a, b = load(args[0]), load(args[1])
        a.pop("cniVersion", None)
        b.pop("cniVersion", None)
        need(a == b, f"results differ:\n{a}\n{b}")
    elif cmd == "pods":
        got = find_pod(load(args[0]), args[1], args[2])
        need(len(got) == 1, f"{args[1]}/{args[2]} registered {len(got)} times")
        if len(args) > 3:
            addrs = [a.split("/")[0] for a in got[0].get("addresses", [])]
            need(args[3] in addrs, f"{args[3]} not in registered addresses {addrs}")
    elif cmd == "nopod":
        need(not find_pod(load(args[0]), args[1], args[2]), f"{args[1]}/{args[2]} registered")
    elif cmd == "get":
        v = load(args[0])
        for k in args[1:]:
            v = v[int(k)] if isinstance(v, list) else v[k]
        print(v if not isinstance(v, (dict, list)) else json.dumps(v))
    else:
        fail("unknown command")


if __name__ == "__main__":
    main()
