/**
 * Where the check's time goes on the full table: the parts of b (from runCheck's own
 * timings and the traced facts script) against a, and the parser/aggregator alone on the
 * dump recorded from the same full lab gateway (read / parse / aggregate from a file, in
 * child processes, plus a V8 CPU profile of the aggregate run).
 */
import { profileChild, type ProfileSummary } from '../lib/cpuprofile.js';
import { REPO_ROOT, runTsChild } from '../lib/child.js';
import { round, summarize, type Summary } from '../lib/stats.js';
import type { SizeResult } from './table-sizes.js';

interface ChildResult {
  lines: number;
  aggregatorMs?: number;
  ms: number;
  maxRssKb: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

export interface BreakdownResult {
  dumpLines: number;
  /** From the recorded lab dump, in a child process. */
  fromFile: { read: Summary; parse: Summary; aggregate: Summary; aggregateLinesPerSec: number };
  /** b's parts at full (medians), and a's. */
  parts: {
    a: number;
    aConnect: number;
    aDump: number;
    b: number;
    bConnect: number;
    bFacts: number;
    bTableDump: number;
    /** b - connect - facts - table dump: report building, findings, plan, schema checks. */
    bOther: number;
    /** b - a. */
    extra: number;
    /** What b would be with the facts step free: (b - facts) / a. */
    factsBeyondDump: number;
  };
  /** True when the aggregator alone (from a file) is faster than the bare dump stream. */
  aggregatorKeepsUp: boolean;
  /** Bot-process CPU during a and b (one JS thread receives/decrypts the SSH stream AND parses). */
  cpu: { a: number; b: number; aggregatorFromFile: number };
  profile?: Omit<ProfileSummary, 'childOutput'>;
  lines: string[];
}

export async function benchBreakdown(opts: { full: SizeResult; runs: number; profile: boolean; log: (s: string) => void }): Promise<BreakdownResult> {
  const { full, log } = opts;
  const dump = full.recordedDump;
  if (!dump) throw new Error('no recorded dump of the full table');
  const measure = async (mode: string): Promise<{ s: Summary; lines: number; cpu: number }> => {
    const rs: ChildResult[] = [];
    for (let i = 0; i < opts.runs; i++) rs.push(await runTsChild<ChildResult>('bench/children/parse-file.ts', [mode, dump]));
    return { s: summarize(rs.map((r) => r.ms)), lines: rs[0]?.lines ?? 0, cpu: summarize(rs.map((r) => r.cpuUserMs + r.cpuSystemMs)).median };
  };
  const read = await measure('read');
  const parse = await measure('parse');
  const aggregate = await measure('aggregate');
  const t = full.bTimings;
  const bConnect = t['connectMs'] ?? 0;
  const bFacts = t['factsMs'] ?? 0;
  const bTableDump = t['tableDumpMs'] ?? 0;
  const parts = {
    a: full.a.median,
    aConnect: full.aConnect.median,
    aDump: full.aDump.median,
    b: full.b.median,
    bConnect,
    bFacts,
    bTableDump,
    bOther: full.bOther.median,
    extra: round(full.b.median - full.a.median),
    /** b without connect, the facts/dump phase and the dump: what facts cost beyond the dump. */
    factsBeyondDump: round(Math.max(0, (t['factsAndDumpMs'] ?? bFacts + bTableDump) - bTableDump)),
  };
  const aggregatorKeepsUp = aggregate.s.median < full.aDump.median;
  const cpu = { a: full.aCpu.median, b: full.bCpu.median, aggregatorFromFile: aggregate.s.median };
  let profile: Omit<ProfileSummary, 'childOutput'> | undefined;
  if (opts.profile) {
    const p = await profileChild('bench/children/parse-file.ts', ['aggregate', dump], REPO_ROOT);
    const { childOutput: _ignored, ...rest } = p;
    profile = rest;
  }
  const pct = (v: number) => `${Math.round((v / Math.max(1, parts.b)) * 100)} %`;
  const lines = [
    `b (check, ${full.session}) ${parts.b} ms = connect ${bConnect} (${pct(bConnect)}) + table dump ${bTableDump} (${pct(bTableDump)}, with the facts step's ${bFacts} ms beside it on a second channel: ${parts.factsBeyondDump} ms beyond the dump) + findings/plan/report ${parts.bOther} (${pct(parts.bOther)})`,
    `a (floor) ${parts.a} ms = connect ${parts.aConnect} + bare conntrack -L ${parts.aDump}; b - a = ${parts.extra} ms, of which (check's dump - bare dump) ${round(bTableDump - parts.aDump)} ms`,
    `aggregator alone on the recorded ${read.lines.toLocaleString('en-US')}-line lab dump (from a file): ${aggregate.s.median} ms (read+split ${read.s.median}, read+split+parse ${parse.s.median}) vs the bare dump stream ${parts.aDump} ms: ${aggregatorKeepsUp ? 'faster than the stream' : 'SLOWER than the stream'}`,
    `bot-process CPU: a ${cpu.a} ms (ssh2 receiving the dump), b ${cpu.b} ms: the check uses ${round(cpu.b - cpu.a)} ms more CPU in the bot than the bare dump (the aggregator alone needs ${aggregate.s.median} ms from a file; facts parsing, findings and plan the rest) while b - a is ${parts.extra} ms: ${
      parts.extra >= 0.8 * (cpu.b - cpu.a)
        ? 'that CPU was NOT hidden behind the stream (the gateway, sshd and the bot share this machine\'s cores; one JS thread receives and parses)'
        : `${Math.round((1 - parts.extra / Math.max(1, cpu.b - cpu.a)) * 100)} % of it overlapped with the stream`
    }`,
  ];
  if (full.factsSections) {
    const top = full.factsSections.sections.slice(0, 5).map((x) => `${x.section} ${Math.round(x.ms)} ms`);
    lines.push(
      `facts step ${bFacts} ms: the script itself runs ${full.factsSections.tracedTotalMs} ms on the gateway (traced; top: ${top.join(', ')}); an empty exec on the session costs ${full.factsSections.emptyExecMs ?? '?'} ms; the rest is output transfer + parseFacts`,
    );
  }
  if (profile) {
    lines.push(
      `CPU profile of aggregateLines on the lab dump (self time, tsx loader and idle left out): ${profile.top
        .filter((f) => !f.where.startsWith('node:internal/modules') && !['(idle)', '(program)'].includes(f.fn))
        .slice(0, 6)
        .map((f) => `${f.fn} ${f.selfPct} %`)
        .join(', ')}`,
    );
  }
  for (const l of lines) log(`  ${l}`);
  return {
    dumpLines: read.lines,
    fromFile: { read: read.s, parse: parse.s, aggregate: aggregate.s, aggregateLinesPerSec: Math.round(read.lines / (aggregate.s.median / 1000)) },
    parts,
    aggregatorKeepsUp,
    cpu,
    ...(profile ? { profile } : {}),
    lines,
  };
}
