/**
 * Part 6: a 2,000,000-line table (gateways with 1-4 million entries exist) streamed over a
 * real SSH session from a lab gateway. No kernel here holds 2 M entries in a lab namespace
 * (nf_conntrack_max of a non-initial namespace is the initial one's), so the dump is
 * synthetic (test/support/synthetic-conntrack.ts, the one generator of tables: realistic
 * `conntrack -L` lines made from the recorded fixture) and served in place of the tool: in
 * the gateway sshd's own mount namespace /proc/net is hidden (so the check takes its
 * `conntrack -L` fallback) and `conntrack -L` is a wrapper that cats the file; every
 * other conntrack command (the facts' `conntrack -S`) runs the real tool.
 *
 * Each measurement runs in a child process (bench/children/check-dump.ts) over a fresh ssh2
 * connection, so its peak RSS is the check's alone:
 *   check 10k   the whole check on a 10,000-line dump (the RSS baseline)
 *   check 2M    the whole check on the 2,000,000-line dump: time, lines per second, RSS
 *   floor 2M    a bare `conntrack -L` of the same dump over ssh2, discarded (the stream's own rate)
 * Target: RSS growth from 10k to 2M < 50 MB.
 */
import { mkdir, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { labDown, labUp, type Lab } from '../../lab/index.js';
import { generateDump } from '../../test/support/synthetic-conntrack.js';
import { restoreMounts, serveDumpAsTool, hideProcNet } from '../../test/support/gateway-mount-ns.js';
import { runTsChild } from '../lib/child.js';
import { ratio, round, summarize, type Summary } from '../lib/stats.js';

export const BIG_LAB = 'cto-bnbig';
export const BIG_LINES = 2_000_000;
export const BASE_LINES = 10_000;
export const BIG_RSS_GROWTH_TARGET_MB = 50;
const CHILD_TIMEOUT_MS = 600_000;

interface ChildResult {
  mode: 'check' | 'floor';
  ms: number;
  lines: number;
  entries: number;
  unparsed: number;
  bytes: number;
  linesPerSec: number;
  maxRssKb: number;
  cpuMs: number;
}

export interface DumpRuns {
  lines: number;
  ms: Summary;
  /** lines / median ms. */
  linesPerSec: number;
  maxRssMb: Summary;
  cpuMs: Summary;
  entries: number;
  unparsed: number;
}

export interface BigDumpResult {
  lab: string;
  served: string;
  file: { lines: number; bytes: number; generateMs: number };
  check10k: DumpRuns;
  check2m: DumpRuns;
  floor2m: DumpRuns;
  /** check 2M median / floor 2M median. */
  checkVsFloor: number;
  rssGrowthMb: number;
  target: { rssGrowthMb: number; met: boolean };
}

function runsOf(results: ChildResult[]): DumpRuns {
  const ms = summarize(results.map((r) => r.ms));
  const lines = results[0]?.lines ?? 0;
  return {
    lines,
    ms,
    linesPerSec: Math.round(lines / (ms.median / 1000)),
    maxRssMb: summarize(results.map((r) => round(r.maxRssKb / 1024))),
    cpuMs: summarize(results.map((r) => r.cpuMs)),
    entries: results[0]?.entries ?? 0,
    unparsed: results[0]?.unparsed ?? 0,
  };
}

export async function benchBigDump(opts: { runs: number; dir: string; log: (s: string) => void }): Promise<BigDumpResult> {
  const { log } = opts;
  await mkdir(opts.dir, { recursive: true });
  const big = join(opts.dir, 'dump-2m.txt');
  const base = join(opts.dir, 'dump-10k.txt');
  const served = join(opts.dir, 'served.txt');
  const g = await generateDump(big, BIG_LINES);
  await generateDump(base, BASE_LINES);
  log(`  generated ${g.lines.toLocaleString('en-US')} lines (${round(g.bytes / 1e6)} MB) in ${g.ms} ms`);
  await labDown(BIG_LAB).catch(() => undefined); // leftovers of a crashed run
  const lab: Lab = await labUp({ name: BIG_LAB, clients: 1, sourcesPerClient: 1 });
  const serve = async (file: string) => {
    await unlink(served).catch(() => undefined);
    await symlink(file, served);
  };
  const child = (mode: 'check' | 'floor') =>
    runTsChild<ChildResult>(
      'bench/children/check-dump.ts',
      [JSON.stringify({ mode, gateway: lab.name, config: lab.inventoryEntry, timeoutMs: CHILD_TIMEOUT_MS })],
      { timeoutMs: CHILD_TIMEOUT_MS + 30_000 },
    );
  try {
    hideProcNet(lab);
    await serveDumpAsTool(lab, served);
    const small: ChildResult[] = [];
    const checks: ChildResult[] = [];
    const floors: ChildResult[] = [];
    await serve(base);
    for (let r = 0; r < Math.max(3, opts.runs); r++) small.push(await child('check'));
    log(`  check of ${BASE_LINES.toLocaleString('en-US')} lines: ${small.map((s) => `${s.ms} ms, peak RSS ${round(s.maxRssKb / 1024)} MB`).join('; ')}`);
    await serve(big);
    for (let r = 0; r < opts.runs; r++) {
      // order rotated every run
      const order: ('check' | 'floor')[] = r % 2 === 0 ? ['floor', 'check'] : ['check', 'floor'];
      for (const mode of order) {
        const res = await child(mode);
        (mode === 'check' ? checks : floors).push(res);
        log(
          `  ${mode} of ${res.lines.toLocaleString('en-US')} lines: ${res.ms} ms (${res.linesPerSec.toLocaleString('en-US')} lines/s), peak RSS ${round(res.maxRssKb / 1024)} MB, CPU ${res.cpuMs} ms${mode === 'check' ? `, entries ${res.entries.toLocaleString('en-US')}, unparsed ${res.unparsed}` : ''}`,
        );
      }
    }
    const check10k = runsOf(small);
    const check2m = runsOf(checks);
    const floor2m = runsOf(floors);
    const rssGrowthMb = round(check2m.maxRssMb.median - check10k.maxRssMb.median);
    return {
      lab: lab.name,
      served: 'synthetic conntrack -L lines cat by a conntrack wrapper in the gateway sshd mount namespace, /proc/net hidden there',
      file: { lines: g.lines, bytes: g.bytes, generateMs: g.ms },
      check10k,
      check2m,
      floor2m,
      checkVsFloor: ratio(check2m.ms.median, floor2m.ms.median),
      rssGrowthMb,
      target: { rssGrowthMb: BIG_RSS_GROWTH_TARGET_MB, met: rssGrowthMb < BIG_RSS_GROWTH_TARGET_MB && check2m.entries + check2m.unparsed === BIG_LINES },
    };
  } finally {
    try {
      restoreMounts(lab);
    } catch (err) {
      log(`  restoring the gateway's mounts failed (the lab goes anyway): ${(err as Error).message.slice(0, 200)}`);
    }
    await labDown(BIG_LAB).catch((err: unknown) => log(`labDown ${BIG_LAB} failed: ${(err as Error).message}`));
    await rm(opts.dir, { recursive: true, force: true });
  }
}
