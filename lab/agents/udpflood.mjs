#!/usr/bin/env node
// conntrack-ops lab: Node fallback of `ctgen flood` (native/ctgen.c), same arguments, same
// flow layout, same JSON output. One UDP socket per (source, source port) instead of a raw
// socket, so it needs a high RLIMIT_NOFILE (the caller runs it under `ulimit -n`).
//   node udpflood.mjs --dst IP [--passes N] [--gap-ms G] [--settle-ms S] [--batch B]
//                     [--hold-ms H --repeat-ms R] FLOW...
//   FLOW = SRC,COUNT,SPORT_OFFSET,DPORT_LO,DPORT_COUNT
import { createSocket } from 'node:dgram';

const argv = process.argv.slice(2);
let dst;
let passes = 2;
let gapMs = 2100;
let settleMs = 30;
let batch = 256;
let holdMs = 0;
let repeatMs = 1000;
const groups = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--dst') dst = argv[++i];
  else if (a === '--passes') passes = Number(argv[++i]);
  else if (a === '--gap-ms') gapMs = Number(argv[++i]);
  else if (a === '--settle-ms') settleMs = Number(argv[++i]);
  else if (a === '--batch') batch = Number(argv[++i]);
  else if (a === '--pps') i++;
  else if (a === '--hold-ms') holdMs = Number(argv[++i]);
  else if (a === '--repeat-ms') repeatMs = Math.max(100, Number(argv[++i]));
  else {
    const [src, count, off, lo, n] = a.split(',');
    groups.push({ src, count: Number(count), off: Number(off), lo: Number(lo), n: Number(n) });
  }
}
if (!dst || !groups.length) {
  process.stderr.write('udpflood: need --dst and flow groups\n');
  process.exit(2);
}

// Enumerate flows exactly like ctgen: groups interleaved round-robin.
const flows = [];
const idx = groups.map(() => 0);
const total = groups.reduce((s, g) => s + g.count, 0);
while (flows.length < total) {
  groups.forEach((g, gi) => {
    if (idx[gi] >= g.count) return;
    const i = idx[gi]++;
    flows.push({ src: g.src, dport: g.lo + (i % g.n), sport: 1024 + ((g.off + Math.floor(i / g.n)) % 64512) });
  });
}

const sockets = new Map();
const keys = [...new Set(flows.map((f) => `${f.src}:${f.sport}`))];
for (let i = 0; i < keys.length; i += 1000) {
  await Promise.all(
    keys.slice(i, i + 1000).map(
      (key) =>
        new Promise((resolve) => {
          const cut = key.lastIndexOf(':');
          const address = key.slice(0, cut);
          const port = key.slice(cut + 1);
          const s = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
          s.on('error', () => resolve());
          s.on('message', () => {});
          s.bind({ address, port: Number(port), exclusive: true }, () => {
            sockets.set(key, s);
            resolve();
          });
        }),
    ),
  );
}

const payload = Buffer.from('ctgen\n\0\0');
const sleepUntil = (t) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
const nb = Math.ceil(flows.length / batch);
const stamps = new Array(nb).fill(0);
const t0 = Date.now();
const out = [];
async function sendAll(p) {
  let sent = 0;
  for (let b = 0; b < nb; b++) {
    if (p === 1) await sleepUntil(stamps[b] + gapMs);
    else if (p > 1) await sleepUntil(stamps[b] + settleMs);
    const end = Math.min(flows.length, (b + 1) * batch);
    const pending = [];
    for (let k = b * batch; k < end; k++) {
      const f = flows[k];
      const s = sockets.get(`${f.src}:${f.sport}`);
      if (!s) continue;
      pending.push(new Promise((r) => s.send(payload, f.dport, dst, () => r())));
      sent++;
    }
    await Promise.all(pending);
    if (p < 2) stamps[b] = Date.now();
  }
  return sent;
}
for (let p = 0; p < passes; p++) {
  const ps = Date.now();
  const sent = await sendAll(p);
  out.push({ sent, ms: Date.now() - ps });
}
const summary = { flows: flows.length, passes: out, retries: 0, ms: Date.now() - t0, sockets: sockets.size };
if (holdMs > 0) {
  process.stdout.write(`${JSON.stringify({ ...summary, holding: true })}\n`);
  const until = Date.now() + holdMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(repeatMs, until - Date.now()))));
    if (Date.now() >= until) break;
    await sendAll(-1);
  }
} else {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
for (const s of sockets.values()) s.close();
process.exit(0);
