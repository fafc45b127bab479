// SPDX-License-Identifier: MIT
// Node's own sockets, as Node programs use them (test-dualstack.sh):
// server.listen(port) binds [::] (dual-stack); a client to an IPv4 literal
// uses AF_INET, to ::ffff:a.b.c.d an AF_INET6 socket.
//
//   node echo.js server PORT        each client: read a line, answer a line
//                                   "LOCAL REMOTE" as Node sees them, then echo
//                                   until EOF (the protocol of Echo.java)
//   node echo.js client HOST PORT N connect, print both views, stream N bytes
//                                   through the echo and check them
'use strict';
const net = require('net');
const crypto = require('crypto');
const [mode, a1, a2, a3] = process.argv.slice(2);
const view = (s) => `${s.localAddress}:${s.localPort} ${s.remoteAddress}:${s.remotePort}`;

if (mode === 'server') {
  const srv = net.createServer((s) => {
    let head = Buffer.alloc(0);
    const first = (b) => {
      head = Buffer.concat([head, b]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      s.off('data', first);
      s.write(view(s) + '\n');
      s.write(head.subarray(nl + 1));
      s.pipe(s);
    };
    s.on('data', first);
    s.on('error', (e) => console.error('server:', e.message));
  });
  srv.listen(Number(a1), () => console.log('READY', JSON.stringify(srv.address())));
} else {
  const n = Number(a3);
  const data = crypto.randomBytes(n);
  const s = net.connect(Number(a2), a1, () => {
    console.log('client', view(s), 'family', s.remoteFamily);
    s.write('hello\n');
    s.end(data);
  });
  const chunks = [];
  s.on('data', (b) => chunks.push(b));
  s.on('error', (e) => { console.error('client:', e.message); process.exit(1); });
  s.on('end', () => {
    const all = Buffer.concat(chunks);
    const nl = all.indexOf(10);
    console.log('server', all.subarray(0, nl).toString());
    const echo = all.subarray(nl + 1);
    if (!echo.equals(data)) {
      console.error(`echo differs: ${echo.length} bytes back of ${n}`);
      process.exit(1);
    }
    console.log('echoed', echo.length, 'bytes');
  });
}
