/**
 * Overhead of parsing + aggregating over the bare table dump, on a real table:
 *   npx tsx test/diagnostics/bench/dump-overhead.ts <command...>
 * e.g. `ip netns exec cto-fixture-x conntrack -L`. Runs the dump 3 times consumed by a
 * discarding reader and 3 times through aggregateLines, interleaved; prints medians.
 */
import { spawn } from 'node:child_process';
import { aggregateLines } from '../../../src/analysis/table/aggregate-lines.js';

const [cmd, ...args] = process.argv.slice(2);
if (cmd === undefined) throw new Error('usage: dump-overhead.ts <command...>');

async function run(aggregate: boolean): Promise<{ ms: number; entries: number; bytes: number }> {
  const started = performance.now();
  const child = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  let bytes = 0;
  let entries = 0;
  if (aggregate) {
    child.stdout.on('data', (c: Buffer) => (bytes += c.length));
    const summary = await aggregateLines(child.stdout, { establishedTimeout: 432_000, idleThresholds: [3600, 86_400] });
    entries = summary.entries;
  } else {
    for await (const c of child.stdout) bytes += (c as Buffer).length;
  }
  await exited;
  return { ms: performance.now() - started, entries, bytes };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const bare: number[] = [];
const agg: number[] = [];
let entries = 0;
let bytes = 0;
for (let i = 0; i < 3; i++) {
  bare.push((await run(false)).ms);
  const r = await run(true);
  agg.push(r.ms);
  entries = r.entries;
  bytes = r.bytes;
}
const b = median(bare);
const a = median(agg);
console.log(`${entries} entries, ${(bytes / 1e6).toFixed(1)} MB`);
console.log(`bare dump      ${b.toFixed(0)} ms  (runs: ${bare.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`dump+aggregate ${a.toFixed(0)} ms  (runs: ${agg.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`overhead       ${(((a - b) / b) * 100).toFixed(1)} %  (${((entries / a) * 1000 / 1e6).toFixed(2)} M entries/s end to end)`);
