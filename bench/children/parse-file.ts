/**
 * Child process of the parser benchmark: reads a recorded dump from a file and prints one
 * JSON line with the time and this process's peak RSS. Run in its own process so the
 * peak RSS belongs to this work alone.
 *
 *   node --import tsx bench/children/parse-file.ts <mode> <file>
 *     read       split lines only (the floor: file I/O + line split where the bytes are, as the check does)
 *     parse      split + parseConntrackBytes on every line (the parser alone, with its address cache)
 *     aggregate  aggregateLines(file stream) exactly as the check uses it (parser + counters)
 */
import { createReadStream } from 'node:fs';
import { aggregateLines, MAX_LINE_BYTES } from '../../src/analysis/table/aggregate-lines.js';
import { ByteLines, type OnLine } from '../../src/infra/byte-lines.js';
import { AddressCache } from '../../src/diagnostics/parsers/address-cache.js';
import { parseConntrackBytes, scratchEntry } from '../../src/diagnostics/parsers/conntrack-line.js';
import { IDLE_THRESHOLDS } from '../../src/plan/compute-constants.js';

const [mode, file] = process.argv.slice(2);
if (!file || !['read', 'parse', 'aggregate'].includes(mode ?? '')) {
  process.stderr.write('usage: parse-file.ts read|parse|aggregate <file>\n');
  process.exit(2);
}

const HIGH_WATER = 64 * 1024;

async function splitLines(onLine: OnLine): Promise<number> {
  let lines = 0;
  const splitter = new ByteLines(
    MAX_LINE_BYTES,
    (buf, start, end) => {
      lines++;
      onLine(buf, start, end);
    },
    () => lines++,
  );
  for await (const chunk of createReadStream(file as string, { highWaterMark: HIGH_WATER })) splitter.push(chunk as Buffer);
  splitter.end();
  return lines;
}

const t0 = performance.now();
let lines = 0;
let parsed = 0;
let extra: Record<string, unknown> = {};
if (mode === 'read') {
  let bytes = 0;
  lines = await splitLines((_buf, start, end) => {
    bytes += end - start;
  });
  extra = { bytes };
} else if (mode === 'parse') {
  let timeoutSum = 0;
  const into = scratchEntry();
  const addresses = new AddressCache();
  lines = await splitLines((buf, start, end) => {
    const e = parseConntrackBytes(buf, start, end, into, addresses);
    if (e !== null) {
      parsed++;
      timeoutSum += e.timeout; // keep the result alive so nothing is optimised away
    }
  });
  extra = { timeoutSum };
} else {
  const summary = await aggregateLines(createReadStream(file, { highWaterMark: HIGH_WATER }), {
    establishedTimeout: 432_000,
    idleThresholds: [...IDLE_THRESHOLDS],
  });
  lines = summary.entries + summary.unparsed;
  parsed = summary.entries;
  extra = {
    unparsed: summary.unparsed,
    approximate: summary.approximate,
    topSource: summary.topSources[0] ?? null,
    aggregatorMs: summary.durationMs,
  };
}
const ms = performance.now() - t0;
const usage = process.resourceUsage();
process.stdout.write(
  `${JSON.stringify({
    mode,
    lines,
    parsed,
    ms: Math.round(ms * 10) / 10,
    linesPerSec: Math.round(lines / (ms / 1000)),
    maxRssKb: usage.maxRSS,
    rssNowKb: Math.round(process.memoryUsage().rss / 1024),
    cpuUserMs: Math.round(usage.userCPUTime / 1000),
    cpuSystemMs: Math.round(usage.systemCPUTime / 1000),
    ...extra,
  })}\n`,
);
