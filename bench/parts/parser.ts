/**
 * Part 2: the parser alone on 1,000,000 recorded lines from a file (generated at bench
 * time from the real fixture lines, with varied addresses), in child processes:
 *   read       file -> lines (the floor the parser cannot beat)
 *   parse      file -> lines -> parseConntrackLine
 *   aggregate  file -> aggregateLines (what the check runs: parser + counters)
 * Lines per second, and peak RSS of a child for 10k vs 1M lines (target: growth < 50 MB).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runTsChild } from '../lib/child.js';
import { generateDump, type GeneratedFile } from '../../test/support/synthetic-conntrack.js';
import { round, summarize, type Summary } from '../lib/stats.js';

export const RSS_GROWTH_TARGET_MB = 50;

interface ChildResult {
  mode: string;
  lines: number;
  parsed: number;
  ms: number;
  linesPerSec: number;
  maxRssKb: number;
  cpuUserMs: number;
  unparsed?: number;
  approximate?: boolean;
}

export interface ModeResult {
  lines: number;
  parsed: number;
  ms: Summary;
  /** lines / median ms. */
  linesPerSec: number;
  /** lines / min ms. */
  linesPerSecBest: number;
  maxRssMb: Summary;
  approximate?: boolean;
}

export interface ParserResult {
  file1m: Omit<GeneratedFile, 'path'>;
  runs: number;
  m1: { read: ModeResult; parse: ModeResult; aggregate: ModeResult };
  k10: { read: ModeResult; parse: ModeResult; aggregate: ModeResult };
  /** Same synthetic lines, a full table's worth: compare with the lab dump's stream rate. */
  full262k: { aggregate: ModeResult };
  /** (parse - read) / lines: the parser's own cost per line. */
  parserNsPerLine: number;
  /** (aggregate - parse) / lines: the counters' cost per line. */
  countersNsPerLine: number;
  rssGrowthMb: { parse: number; aggregate: number };
  target: { rssGrowthMb: number; met: boolean };
}

export async function benchParser(opts: { runs: number; dir: string; log: (s: string) => void }): Promise<ParserResult> {
  const { log } = opts;
  await mkdir(opts.dir, { recursive: true });
  const f1m = join(opts.dir, 'lines-1m.txt');
  const f262k = join(opts.dir, 'lines-262k.txt');
  const f10k = join(opts.dir, 'lines-10k.txt');
  try {
    log('generating 1,000,000 lines from test/fixtures/conntrack-L.txt ...');
    const gen = await generateDump(f1m, 1_000_000);
    // Same seed: the smaller files are the first lines of the big one.
    await generateDump(f262k, 262_144);
    await generateDump(f10k, 10_000);
    log(`  ${gen.lines.toLocaleString('en-US')} lines, ${(gen.bytes / 1e6).toFixed(1)} MB in ${gen.ms} ms`);

    const measure = async (mode: 'read' | 'parse' | 'aggregate', file: string, runs: number): Promise<ModeResult> => {
      const results: ChildResult[] = [];
      for (let i = 0; i < runs; i++) results.push(await runTsChild<ChildResult>('bench/children/parse-file.ts', [mode, file], { timeoutMs: 120_000 }));
      const first = results[0] as ChildResult;
      const ms = summarize(results.map((r) => r.ms));
      const res: ModeResult = {
        lines: first.lines,
        parsed: first.parsed,
        ms,
        linesPerSec: Math.round(first.lines / (ms.median / 1000)),
        linesPerSecBest: Math.round(first.lines / (ms.min / 1000)),
        maxRssMb: summarize(results.map((r) => r.maxRssKb / 1024)),
      };
      if (first.approximate !== undefined) res.approximate = first.approximate;
      log(
        `  ${mode.padEnd(9)} ${first.lines.toLocaleString('en-US').padStart(9)} lines: median ${ms.median} ms (min ${ms.min}), ${res.linesPerSec.toLocaleString('en-US')} lines/s, peak RSS ${res.maxRssMb.median} MB`,
      );
      return res;
    };

    const runs = opts.runs;
    const m1 = { read: await measure('read', f1m, runs), parse: await measure('parse', f1m, runs), aggregate: await measure('aggregate', f1m, runs) };
    const k10 = { read: await measure('read', f10k, runs), parse: await measure('parse', f10k, runs), aggregate: await measure('aggregate', f10k, runs) };
    const full262k = { aggregate: await measure('aggregate', f262k, runs) };
    const growth = (mode: 'parse' | 'aggregate') => round(m1[mode].maxRssMb.median - k10[mode].maxRssMb.median, 1);
    const rssGrowthMb = { parse: growth('parse'), aggregate: growth('aggregate') };
    return {
      file1m: { lines: gen.lines, bytes: gen.bytes, ms: gen.ms, templates: gen.templates },
      runs,
      m1,
      k10,
      full262k,
      parserNsPerLine: Math.round(((m1.parse.ms.median - m1.read.ms.median) * 1e6) / m1.parse.lines),
      countersNsPerLine: Math.round(((m1.aggregate.ms.median - m1.parse.ms.median) * 1e6) / m1.parse.lines),
      rssGrowthMb,
      target: { rssGrowthMb: RSS_GROWTH_TARGET_MB, met: Math.max(rssGrowthMb.parse, rssGrowthMb.aggregate) < RSS_GROWTH_TARGET_MB },
    };
  } finally {
    await rm(opts.dir, { recursive: true, force: true });
  }
}
