# SPDX-License-Identifier: MIT
# Python's own way of handing a connection to another process
# (multiprocessing.reduction.send_handle: SCM_RIGHTS over the pool's pipe),
# for test-handoff.sh.
#
#   python3 handoff.py server IP PORT N fork|spawn-without-preload
#       accept N connections; hand each to a worker process, which echoes
#       it until EOF; the parent closes its copy at once. "spawn-without-
#       preload" starts the workers as new interpreters without LD_PRELOAD.
#   python3 handoff.py client IP PORT N BYTES [any-peer]
#       N connections, each BYTES through the echo, checked; the worker
#       must see our address unless "any-peer" (a worker without the
#       library holds a plain Unix stream: docs/PRELOAD.md)
import multiprocessing as mp
import os
import socket
import sys
from multiprocessing import reduction


def worker(conn, other):
    if other is not None:
        other.close()  # a forked worker holds the parent's end too
    while True:
        try:
            fd = reduction.recv_handle(conn)
        except EOFError:
            return
        s = socket.socket(fileno=fd)
        peer = s.getpeername()
        s.sendall(("peer %s\n" % (peer,)).encode())
        while True:
            b = s.recv(65536)
            if not b:
                break
            s.sendall(b)
        s.close()


def server(ip, port, n, how):
    if how != "fork":
        os.environ.pop("LD_PRELOAD", None)
    ctx = mp.get_context("fork" if how == "fork" else "spawn")
    parent, child = ctx.Pipe()
    w = ctx.Process(target=worker, args=(child, parent if how == "fork" else None))
    w.start()
    child.close()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, port))
    ls.listen(16)
    print("READY", flush=True)
    for _ in range(n):
        s, _ = ls.accept()
        reduction.send_handle(parent, s.fileno(), w.pid)
        s.close()
    parent.close()
    w.join()
    sys.exit(w.exitcode)


def client(ip, port, n, size, any_peer):
    data = os.urandom(size)
    for i in range(n):
        s = socket.create_connection((ip, port))
        me = s.getsockname()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        line, _, echo = got.partition(b"\n")
        if echo != data:
            sys.exit("connection %d: %d bytes echoed of %d" % (i, len(echo), size))
        if line.decode() != "peer %s" % (me,) and not any_peer:
            sys.exit("connection %d: the worker saw %r, we are %s" % (i, line, me))
        s.close()
    print("%d connections, %d bytes each, echoed" % (n, size))


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "server":
        server(a[2], int(a[3]), int(a[4]), a[5])
    else:
        client(a[2], int(a[3]), int(a[4]), int(a[5]), len(a) > 6 and a[6] == "any-peer")
