#!/usr/bin/env node
// conntrack-ops lab: TCP traffic from a client namespace, through the NAT gateway.
//   node tcpgen.mjs MODE --dst IP --port PORT --count N --src IP[,IP...] [--concurrency C]
//                   [--lport-base B] [--interval-ms I] [--duration-ms D]
// With --lport-base, connection i binds SRC[i % n]:B + floor(i / n) (unique tuples, so the
// counts on the gateway are exact; below the ephemeral range). Otherwise ephemeral ports.
// MODE timewait:  connect, send a byte, read the echo; the server closes first -> TIME_WAIT.
// MODE idle:      connect, then drop the socket with an RST: the lab drops this port's FIN/RST
//                 on the way out, so the gateway keeps idle ESTABLISHED entries (5-day timeout)
//                 and neither end keeps a socket (dead connections, as after a crash).
// MODE keepalive: connect, then send a byte on every connection each I ms for D ms
//                 (ACTIVE ESTABLISHED entries); prints "ready" once all are connected.
// Prints one JSON line: {"mode","ok","failed","ms"} (keepalive: when it stops).
import { connect } from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const dst = opt('dst');
const port = Number(opt('port'));
const count = Number(opt('count', '0'));
const srcs = String(opt('src', '')).split(',').filter(Boolean);
const concurrency = Number(opt('concurrency', '256'));
const intervalMs = Number(opt('interval-ms', '1000'));
const durationMs = Number(opt('duration-ms', '60000'));
const lportBase = opt('lport-base') === undefined ? undefined : Number(opt('lport-base'));
if (!dst || !port || !srcs.length || !['timewait', 'idle', 'keepalive'].includes(mode)) {
  process.stderr.write('usage: tcpgen.mjs timewait|idle|keepalive --dst IP --port P --count N --src IPS\n');
  process.exit(2);
}

const t0 = Date.now();
let ok = 0;
let failed = 0;
const open = [];

function one(i) {
  return new Promise((resolve) => {
    const local = { localAddress: srcs[i % srcs.length] };
    if (lportBase !== undefined) local.localPort = lportBase + Math.floor(i / srcs.length);
    const sock = connect({ host: dst, port, ...local, noDelay: true });
    const timer = setTimeout(() => finish(false), 10_000);
    let settled = false;
    function finish(good) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (good) ok++;
      else {
        failed++;
        sock.destroy();
      }
      resolve();
    }
    sock.on('error', () => finish(false));
    sock.once('connect', () => {
      if (mode === 'timewait') {
        sock.write('x');
        sock.once('data', () => {
          sock.once('close', () => finish(true));
          sock.end();
        });
      } else if (mode === 'idle') {
        sock.resetAndDestroy();
        finish(true);
      } else {
        open.push(sock);
        finish(true);
      }
    });
  });
}

let next = 0;
async function worker() {
  while (next < count) await one(next++);
}
await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(count, 1)) }, worker));

if (mode === 'keepalive') {
  process.stdout.write(`ready ${JSON.stringify({ ok, failed })}\n`);
  for (const s of open) {
    s.on('data', () => {});
  }
  const stopAt = Date.now() + durationMs;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      if (Date.now() >= stopAt) {
        clearInterval(tick);
        resolve();
        return;
      }
      for (const s of open) if (!s.destroyed) s.write('k');
    }, intervalMs);
    process.on('SIGTERM', () => {
      clearInterval(tick);
      resolve();
    });
  });
  for (const s of open) s.end();
}
process.stdout.write(`${JSON.stringify({ mode, ok, failed, ms: Date.now() - t0 })}\n`);
process.exit(0);
