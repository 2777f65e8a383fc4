#!/usr/bin/env node
// conntrack-ops lab: server-side responder, run inside the server namespace.
//   node responder.mjs --timewait PORT --idle PORT --echo PORT [--udp LO-HI] [--ipv6] [--udp6 LO-HI]
// TCP timewait: echo the first chunk, then close (server closes first: TIME_WAIT on the gateway).
// TCP idle:     accept, then forget the connection at once with an RST that the lab's nft
//               rule drops before it leaves (so the gateway keeps an idle ESTABLISHED entry
//               and the server keeps no socket that could clash with a later tuple).
// TCP echo:     echo everything (keepalive flows).
// --udp:        UDP echo on LO..HI (fallback when the C responder is not available).
// --ipv6:       TCP listens on :: (both families); --udp6: UDP echo on LO..HI for IPv6 only.
// Prints "ready" once every port listens; runs until killed.
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const listen = (port, onConn) =>
  new Promise((resolve, reject) => {
    const srv = createServer({ noDelay: true }, (sock) => {
      sock.on('error', () => {});
      onConn(sock);
    });
    srv.maxConnections = 1_000_000;
    srv.on('error', reject);
    srv.listen({ port, host: args.includes('--ipv6') ? '::' : '0.0.0.0', ipv6Only: false, backlog: 4096 }, () => resolve(srv));
  });

const waits = [];
if (opt('timewait')) {
  waits.push(
    listen(Number(opt('timewait')), (sock) => {
      sock.once('data', (d) => sock.end(d));
    }),
  );
}
if (opt('idle')) {
  waits.push(
    listen(Number(opt('idle')), (sock) => {
      sock.resetAndDestroy();
    }),
  );
}
if (opt('echo')) {
  waits.push(listen(Number(opt('echo')), (sock) => sock.pipe(sock)));
}
const udpEcho = (range, type, host) => {
  const [lo, hi] = range.split('-').map(Number);
  for (let port = lo; port <= hi; port++) {
    waits.push(
      new Promise((resolve, reject) => {
        const s = createSocket({ type, recvBufferSize: 4 << 20, ipv6Only: type === 'udp6' });
        s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
        s.on('error', reject);
        s.bind(port, host, () => resolve(s));
      }),
    );
  }
};
if (opt('udp')) udpEcho(opt('udp'), 'udp4', '0.0.0.0');
if (opt('udp6')) udpEcho(opt('udp6'), 'udp6', '::');
await Promise.all(waits);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
