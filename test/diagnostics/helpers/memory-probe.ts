/**
 * Child process for the aggregator memory tests:
 *   node [--expose-gc] --import tsx test/diagnostics/helpers/memory-probe.ts <lines> <sources> <destinations>
 * A separate generator process writes <lines> lines into a pipe (like the SSH channel
 * of a real dump); this process only aggregates them, then prints one JSON line with
 * its peak RSS. With --expose-gc it also collects garbage every 250,000 lines (while
 * the aggregator is live) and reports the live heap at each checkpoint.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { aggregateLines } from '../../../src/analysis/table/aggregate-lines.js';

const count = Number(process.argv[2] ?? 10_000);
const sources = Number(process.argv[3] ?? 250);
const destinations = Number(process.argv[4] ?? sources);
const generator = fileURLToPath(new URL('./generate-lines-cli.ts', import.meta.url));
const gc = (globalThis as { gc?: () => void }).gc;

const child = spawn(process.execPath, ['--import', 'tsx', generator, String(count), String(sources), String(destinations)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const exited = new Promise<number | null>((resolve) => child.on('close', resolve));

const liveHeapMb: number[] = [];
/** Buffers still alive after each collection (the dump's chunks must not be kept). */
const liveBuffersMb: number[] = [];
async function* withCheckpoints(): AsyncGenerator<Buffer> {
  let lines = 0;
  let next = 250_000;
  for await (const chunk of child.stdout) {
    const buf = chunk as Buffer;
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) lines++;
    yield buf;
    if (gc && lines >= next) {
      gc();
      const m = process.memoryUsage();
      liveHeapMb.push(Math.round((m.heapUsed / 1e6) * 10) / 10);
      liveBuffersMb.push(Math.round((m.arrayBuffers / 1e6) * 10) / 10);
      next += 250_000;
    }
  }
}

const summary = await aggregateLines(withCheckpoints(), { establishedTimeout: 432_000, idleThresholds: [3600, 86_400] });
const code = await exited;
if (code !== 0) throw new Error(`generator exited with ${code}`);
process.stdout.write(
  `${JSON.stringify({
    lines: count,
    entries: summary.entries,
    unparsed: summary.unparsed,
    approximate: summary.approximate,
    topSources: summary.topSources,
    maxRssMb: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10,
    liveHeapMb,
    liveBuffersMb,
    durationMs: summary.durationMs,
  })}\n`,
);
