/**
 * Check-like overhead of aggregation over a paced table dump (the dump arrives over
 * SSH at the gateway's pace; aggregation runs as chunks arrive):
 *   npx tsx test/diagnostics/bench/replay-overhead.ts <dump file> [dump ms = 1150]
 * Replays the file in 32 KB chunks spread evenly over <dump ms> (design.md: the
 * 262,144-entry dump takes 1.15 s over ssh2) and compares the time to the last byte
 * (bare) with the time to the finished summary.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { aggregateLines } from '../../../src/analysis/table/aggregate-lines.js';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: replay-overhead.ts <dump file> [dump ms]');
const dumpMs = Number(process.argv[3] ?? 1150);
const data = readFileSync(file);
const CHUNK = 32 * 1024;

async function* paced(): AsyncGenerator<Buffer> {
  const started = performance.now();
  for (let off = 0; off < data.length; off += CHUNK) {
    const due = started + (off / data.length) * dumpMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    yield data.subarray(off, Math.min(off + CHUNK, data.length));
  }
}

async function bare(): Promise<number> {
  const t = performance.now();
  let n = 0;
  for await (const c of paced()) n += c.length;
  if (n !== data.length) throw new Error('short read');
  return performance.now() - t;
}

async function aggregated(): Promise<[number, number]> {
  const t = performance.now();
  const s = await aggregateLines(paced(), { establishedTimeout: 432_000, idleThresholds: [3600, 86_400] });
  return [performance.now() - t, s.entries];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const b: number[] = [];
const a: number[] = [];
let entries = 0;
for (let i = 0; i < 5; i++) {
  b.push(await bare());
  const [ms, n] = await aggregated();
  a.push(ms);
  entries = n;
}
const mb = median(b);
const ma = median(a);
console.log(`${entries} entries, ${(data.length / 1e6).toFixed(1)} MB paced over ${dumpMs} ms`);
console.log(`bare      ${mb.toFixed(0)} ms  (${b.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`aggregate ${ma.toFixed(0)} ms  (${a.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`overhead  ${(((ma - mb) / mb) * 100).toFixed(1)} %`);
