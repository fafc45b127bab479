#!/usr/bin/env python3
"""Open N connections to a server, check each carries a byte both ways, then
hold them idle. Server and client side in one script: `idle.py server IP PORT N`
and `idle.py client IP PORT N`. Each prints 'ready' when its N connections are
established and verified, then idles until killed."""
import selectors, socket, sys, time

mode, ip, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sel = selectors.EpollSelector()
conns = []
if mode == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, port))
    ls.listen(1024)
    while len(conns) < n:
        c, _ = ls.accept()
        conns.append(c)
    for c in conns:
        assert c.recv(1) == b"p"
        c.sendall(b"q")
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ)
else:
    for _ in range(n):
        conns.append(socket.create_connection((ip, port)))
    for c in conns:
        c.sendall(b"p")
    for c in conns:
        assert c.recv(1) == b"q"
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select(timeout=None):
        if not key.fileobj.recv(1):
            sys.exit(0)
