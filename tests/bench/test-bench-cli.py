#!/usr/bin/env python3
"""podwire-bench as a user runs it: every transport and mode, --json keys,
plausible values, and usage errors with exit status 2."""
import json, socket, subprocess, sys, time

bench = sys.argv[1]
fails = 0

def fail(msg):
    global fails
    print(f"test-bench-cli: FAIL: {msg}", file=sys.stderr)
    fails += 1

def run_json(cmd):
    """Run @cmd: its CompletedProcess, and its JSON ({} if it failed)."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    try:
        return p, json.loads(p.stdout) if p.returncode == 0 else {}
    except ValueError:
        return p, {}

def wait_listen(port):
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)

pcts = ["min", "mean", "stddev", "p50", "p90", "p99", "p99.9", "p99.99", "p99.999", "max"]
for transport in ("shm", "unix", "tcp"):
    for mode in ("pingpong", "throughput"):
        for size in ("64", "64K"):
            cmd = [bench, mode, "--transport", transport, "--size", size,
                   "--duration", "0.2", "--warmup", "0.05", "--json"]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                fail(f"{cmd}: exit {p.returncode}: {p.stderr}")
                continue
            try:
                r = json.loads(p.stdout)
            except ValueError as e:
                fail(f"{cmd}: bad JSON {p.stdout!r}: {e}")
                continue
            want_size = 65536 if size == "64K" else 64
            for k in ("transport", "size", "rtt_ns", "msgs_per_sec", "bytes_per_sec"):
                if k not in r:
                    fail(f"{cmd}: key {k} missing")
            if r.get("transport") != transport or r.get("size") != want_size:
                fail(f"{cmd}: echoed {r.get('transport')} {r.get('size')}")
            if not r.get("msgs_per_sec", 0) > 0:
                fail(f"{cmd}: msgs_per_sec {r.get('msgs_per_sec')}")
            # msgs counts whole messages, so bytes may exceed msgs * size by
            # less than one message over the window.
            slack = want_size / max(r.get("seconds", 0), 1e-9) + 1e-6 * r["bytes_per_sec"]
            if abs(r["bytes_per_sec"] - r["msgs_per_sec"] * want_size) > slack:
                fail(f"{cmd}: bytes_per_sec {r['bytes_per_sec']} != msgs_per_sec * size")
            if mode == "pingpong":
                rtt = r.get("rtt_ns") or {}
                vals = [rtt.get(k) for k in pcts]
                if None in vals:
                    fail(f"{cmd}: rtt_ns keys {sorted(rtt)}")
                    continue
                order = [rtt[k] for k in ("min", "p50", "p90", "p99", "p99.9", "p99.99", "p99.999", "max")]
                if order != sorted(order) or order[0] <= 0:
                    fail(f"{cmd}: percentiles not ordered: {order}")
            elif r.get("rtt_ns") is not None:
                fail(f"{cmd}: throughput has rtt_ns")

# connect: cycles to a forked server on loopback, and a server and client
# started apart (--serve, --to) on a port the kernel picked free.
cmd = [bench, "connect", "--duration", "0.3", "--warmup", "0.05", "--json"]
p, r = run_json(cmd)
rtt = r.get("rtt_ns") or {}
if p.returncode != 0 or r.get("mode") != "connect" or not r.get("msgs", 0) > 10 \
        or not 0 < rtt.get("min", 0) <= rtt.get("p50", 0) <= rtt.get("max", 0):
    fail(f"{cmd}: exit {p.returncode}: {p.stdout!r} {p.stderr!r}")
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
srv = subprocess.Popen([bench, "connect", "--serve", f"127.0.0.1:{port}", "-d", "3", "-w", "0"],
                       stderr=subprocess.PIPE, text=True)
wait_listen(port)
# Three echoes per connection: the server closes after the last.
cmd = [bench, "connect", "--to", f"127.0.0.1:{port}", "-d", "0.3", "-w", "0", "--exchanges", "3",
       "--json"]
p, r = run_json(cmd)
if p.returncode != 0 or not r.get("msgs", 0) > 10:
    fail(f"{cmd}: exit {p.returncode}: {p.stdout!r} {p.stderr!r}")
# Any other client's single byte: echoed, then the server closes.
with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
    c.sendall(b"y")
    if c.recv(1) != b"y" or c.recv(1) != b"":
        fail("connect --serve: a plain client's byte was not echoed and closed")
if srv.wait(timeout=30) != 0:
    fail(f"connect --serve: exit {srv.returncode}: {srv.stderr.read()!r}")
# Nobody listening: the client fails with the reason, exit 1.
p = subprocess.run([bench, "connect", "--to", f"127.0.0.1:{port}", "-d", "0.2"],
                   capture_output=True, text=True, timeout=30)
if p.returncode != 1 or "refused" not in p.stderr:
    fail(f"connect to nobody: exit {p.returncode}, stderr {p.stderr!r}")

# Hand-over cycles (the pooled design's floor, in the kernel alone): to a
# forked server, and to one started apart, which reads the 24-byte identity
# before the echo; nobody listening fails as the handshake does.
cmd = [bench, "connect", "--handover", "-d", "0.3", "-w", "0.05", "--json"]
p, r = run_json(cmd)
if p.returncode != 0 or r.get("mode") != "connect" or not r.get("msgs", 0) > 10:
    fail(f"{cmd}: exit {p.returncode}: {p.stdout!r} {p.stderr!r}")
srv = subprocess.Popen([bench, "connect", "--handover", "--serve", f"127.0.0.1:{port}", "-d", "3",
                        "-w", "0"], stderr=subprocess.PIPE, text=True)
wait_listen(port)
cmd = [bench, "connect", "--handover", "--to", f"127.0.0.1:{port}", "-d", "0.3", "-w", "0",
       "-x", "2", "--json"]
p, r = run_json(cmd)
if p.returncode != 0 or not r.get("msgs", 0) > 10:
    fail(f"{cmd}: exit {p.returncode}: {p.stdout!r} {p.stderr!r}")
with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
    c.sendall(bytes(24) + b"y")
    if c.recv(1) != b"y" or c.recv(1) != b"":
        fail("connect --handover --serve: the byte after the identity was not echoed")
if srv.wait(timeout=30) != 0:
    fail(f"connect --handover --serve: exit {srv.returncode}: {srv.stderr.read()!r}")
p = subprocess.run([bench, "connect", "--handover", "--to", f"127.0.0.1:{port}", "-d", "0.2"],
                   capture_output=True, text=True, timeout=30)
if p.returncode != 1 or "refused" not in p.stderr:
    fail(f"handover to nobody: exit {p.returncode}, stderr {p.stderr!r}")

for args in (["pingpong", "--transport", "udp"], ["pingpong", "--size", "0"],
             ["nosuch"], [], ["pingpong", "--duration", "x"], ["pingpong", "--cpu", "1"],
             ["throughput", "--ring", "5000"], ["connect", "--to", "198.18.0.1"],
             ["connect", "--serve", "localhost:80"], ["pingpong", "--to", "127.0.0.1:1"],
             ["connect", "--to", "127.0.0.1:1", "--serve", "127.0.0.1:2"],
             ["connect", "--exchanges", "0"], ["connect", "-x", "256"],
             ["pingpong", "--handover"]):
    p = subprocess.run([bench] + args, capture_output=True, text=True, timeout=30)
    if p.returncode != 2 or "podwire-bench" not in p.stderr:
        fail(f"{args}: exit {p.returncode}, stderr {p.stderr!r}")
p = subprocess.run([bench, "--help"], capture_output=True, text=True, timeout=30)
if p.returncode != 0 or "Usage: podwire-bench" not in p.stdout:
    fail("--help")
sys.exit(1 if fails else 0)
