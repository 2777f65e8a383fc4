/**
 * `npm run bench`: conntrack-ops measured on real lab gateways, side by side with the floor
 * and with the runbook, in one run. Not a test: it prints ratios and writes JSON
 * (bench/results/latest.json, gitignored; `--save` also writes the committed
 * bench/results/<date>-<machine>.json) and the deltas against the previous run.
 *
 *   npm run bench                        everything (about 5-8 minutes on 2 cores)
 *   npm run bench -- --only=parser,ack   some parts: sizes, parser, ack, fleet, watch, bigdump
 *   npm run bench -- --watch-gateways=60 lab gateways polled every second in part 5 (default 40, 20..200)
 *   npm run bench -- --runs=3            repetitions per measurement of part 1 (default 5)
 *   npm run bench -- --big-runs=3        repetitions of the 2,000,000-line check of part 6 (default 3)
 *   npm run bench -- --save              also write the dated results file to commit
 *
 * Needs root (network namespaces), conntrack, sshd, redis-server: like the lab tests.
 * Every lab it creates is named cto-bn*, and torn down at the end, on failure and on Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, labDownAll } from '../lab/index.js';
import { REPO_ROOT } from './lib/child.js';
import { machineInfo, type MachineInfo } from './lib/machine.js';
import { fmtInt, fmtMs, round } from './lib/stats.js';
import { BIG_LAB, BIG_LINES, benchBigDump, type BigDumpResult } from './parts/big-dump.js';
import { benchBreakdown, type BreakdownResult } from './parts/breakdown.js';
import { benchFleet, FLEET_PREFIX, type FleetResult } from './parts/fleet.js';
import { benchParser, type ParserResult } from './parts/parser.js';
import { ACK_VS_BOLT_P99_TARGET, benchSlackAck, type SlackAckResult } from './parts/slack-ack.js';
import { BA_TARGET, benchTableSizes, CB_TARGET, LAB_NAME, type TableSizesResult } from './parts/table-sizes.js';
import { benchWatch, WATCH_PREFIX, type WatchBenchResult } from './parts/watch.js';

const PARTS = ['sizes', 'parser', 'ack', 'fleet', 'watch', 'bigdump'] as const;
type Part = (typeof PARTS)[number];

interface Args {
  only: Set<Part>;
  runs: number;
  sizes: number[];
  watchGateways: number;
  bigRuns: number;
  save: boolean;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const only = get('only');
  const parts = new Set<Part>((only ? only.split(',') : [...PARTS]).map((p) => p.trim()) as Part[]);
  for (const p of parts) if (!PARTS.includes(p)) throw new Error(`unknown part "${p}" (parts: ${PARTS.join(', ')})`);
  const runs = Number(get('runs') ?? 5);
  if (!Number.isInteger(runs) || runs < 1 || runs > 10) throw new Error('--runs must be 1..10');
  const sizes = (get('sizes') ?? '10000,100000,262144').split(',').map(Number);
  if (sizes.some((s) => !Number.isInteger(s) || s < 1000 || s > 262_144)) throw new Error('--sizes: integers 1000..262144');
  const watchGateways = Number(get('watch-gateways') ?? 40);
  if (!Number.isInteger(watchGateways) || watchGateways < 20 || watchGateways > 200) throw new Error('--watch-gateways must be 20..200');
  const bigRuns = Number(get('big-runs') ?? 3);
  if (!Number.isInteger(bigRuns) || bigRuns < 1 || bigRuns > 5) throw new Error('--big-runs must be 1..5');
  return { only: parts, runs, sizes, watchGateways, bigRuns, save: argv.includes('--save') };
}

/** One comparable figure of a run (what the deltas are computed on). */
interface Row {
  key: string;
  label: string;
  value: number;
  unit: 'ms' | 'x' | 'lines/s' | 'MB' | 'count';
  better: 'lower' | 'higher';
  target?: string;
  met?: boolean;
}

interface Results {
  version: 1;
  startedAt: string;
  durationMs: number;
  command: string;
  machine: MachineInfo;
  loadAvgAtEnd: number[];
  git: { head: string; dirtyMeasuredFiles: string[]; measuredFilesSha256: string };
  parts: {
    tableSizes?: TableSizesResult;
    breakdown?: BreakdownResult;
    parser?: ParserResult;
    slackAck?: SlackAckResult;
    fleet?: FleetResult;
    watch?: WatchBenchResult;
    bigDump?: BigDumpResult;
  };
  errors: Record<string, string>;
  rows: Row[];
}

const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const MEASURED_FILES = [
  ...readdirSync(join(REPO_ROOT, 'src/analysis/table'))
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => `src/analysis/table/${f}`),
  'src/diagnostics/parsers/conntrack-line.ts',
  'src/diagnostics/dump-format.ts',
  'src/diagnostics/facts-script.ts',
  'src/check/run-check.ts',
];

function gitInfo(): Results['git'] {
  const run = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).replace(/\n+$/, '');
    } catch {
      return '';
    }
  };
  const hash = createHash('sha256');
  for (const f of MEASURED_FILES) hash.update(existsSync(join(REPO_ROOT, f)) ? readFileSync(join(REPO_ROOT, f)) : Buffer.alloc(0));
  return {
    head: run(['rev-parse', '--short', 'HEAD']),
    dirtyMeasuredFiles: run(['status', '--porcelain', '--', ...MEASURED_FILES]).split('\n').filter(Boolean),
    measuredFilesSha256: hash.digest('hex').slice(0, 16),
  };
}

function previousResults(): { file: string; data: Results } | null {
  const candidates: string[] = [];
  if (existsSync(join(RESULTS_DIR, 'latest.json'))) candidates.push(join(RESULTS_DIR, 'latest.json'));
  const dated = existsSync(RESULTS_DIR)
    ? readdirSync(RESULTS_DIR)
        .filter((f) => /^\d{4}-\d{2}-\d{2}.*\.json$/.test(f))
        .sort()
        .reverse()
    : [];
  candidates.push(...dated.map((f) => join(RESULTS_DIR, f)));
  for (const file of candidates) {
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as Results;
      if (data.version === 1 && Array.isArray(data.rows)) return { file, data };
    } catch {
      // unreadable: try the next one
    }
  }
  return null;
}

function rowsOf(r: Results['parts']): Row[] {
  const rows: Row[] = [];
  const t = r.tableSizes;
  if (t) {
    for (const s of t.sizes) {
      const k = `sizes.${s.target}`;
      const n = fmtInt(s.countBefore);
      rows.push({ key: `${k}.a`, label: `${n} entries: a bare conntrack -L over ssh2`, value: s.a.median, unit: 'ms', better: 'lower' });
      rows.push({ key: `${k}.b`, label: `${n} entries: b conntrack-ops check`, value: s.b.median, unit: 'ms', better: 'lower' });
      rows.push({ key: `${k}.c`, label: `${n} entries: c runbook's 3 pipelines`, value: s.c.median, unit: 'ms', better: 'lower' });
      const isFull = s.full;
      rows.push({
        key: `${k}.ba`,
        label: `${n} entries: b/a`,
        value: s.ratios.ba,
        unit: 'x',
        better: 'lower',
        ...(isFull ? { target: `<= ${BA_TARGET}`, met: s.ratios.ba <= BA_TARGET } : {}),
      });
      rows.push({
        key: `${k}.cb`,
        label: `${n} entries: c/b`,
        value: s.ratios.cb,
        unit: 'x',
        better: 'higher',
        ...(isFull ? { target: `>= ${CB_TARGET}`, met: s.ratios.cb >= CB_TARGET } : {}),
      });
      if (isFull && s.perRound) {
        const rounds = s.perRound.ba.length;
        const baMet = s.perRound.ba.filter((x) => x <= BA_TARGET).length;
        const cbMet = s.perRound.cb.filter((x) => x >= CB_TARGET).length;
        rows.push({ key: `${k}.baRounds`, label: `${n} entries: rounds with b/a <= ${BA_TARGET} (of ${rounds})`, value: baMet, unit: 'count', better: 'higher' });
        rows.push({ key: `${k}.cbRounds`, label: `${n} entries: rounds with c/b >= ${CB_TARGET} (of ${rounds})`, value: cbMet, unit: 'count', better: 'higher' });
      }
      if (s.gatewaySide) {
        rows.push({ key: `${k}.gw.proc`, label: `${n} entries: gateway alone, cat /proc/net/nf_conntrack`, value: s.gatewaySide.procCat.median, unit: 'ms', better: 'lower' });
        rows.push({ key: `${k}.gw.tool`, label: `${n} entries: gateway alone, conntrack -L`, value: s.gatewaySide.conntrackL.median, unit: 'ms', better: 'lower' });
      }
    }
  }
  const bd = r.breakdown;
  if (bd) {
    rows.push({ key: 'full.b.facts', label: 'full: b facts step (beside the dump)', value: bd.parts.bFacts, unit: 'ms', better: 'lower' });
    rows.push({ key: 'full.b.dump', label: 'full: b table dump (+aggregate)', value: bd.parts.bTableDump, unit: 'ms', better: 'lower' });
    rows.push({ key: 'full.agg.file', label: 'full: aggregator alone on the lab dump (file)', value: bd.fromFile.aggregate.median, unit: 'ms', better: 'lower' });
  }
  const p = r.parser;
  if (p) {
    rows.push({ key: 'parser.read', label: '1M lines: read+split only', value: p.m1.read.linesPerSec, unit: 'lines/s', better: 'higher' });
    rows.push({ key: 'parser.parse', label: '1M lines: parser', value: p.m1.parse.linesPerSec, unit: 'lines/s', better: 'higher' });
    rows.push({ key: 'parser.aggregate', label: '1M lines: parser + aggregator', value: p.m1.aggregate.linesPerSec, unit: 'lines/s', better: 'higher' });
    rows.push({ key: 'parser.aggregate262k', label: '262,144 synthetic lines: parser + aggregator', value: p.full262k.aggregate.linesPerSec, unit: 'lines/s', better: 'higher' });
    rows.push({ key: 'parser.rss10k', label: 'peak RSS, aggregate 10k lines', value: p.k10.aggregate.maxRssMb.median, unit: 'MB', better: 'lower' });
    rows.push({ key: 'parser.rss1m', label: 'peak RSS, aggregate 1M lines', value: p.m1.aggregate.maxRssMb.median, unit: 'MB', better: 'lower' });
    const g = Math.max(p.rssGrowthMb.parse, p.rssGrowthMb.aggregate);
    rows.push({ key: 'parser.rssGrowth', label: 'RSS growth 10k -> 1M (worst mode)', value: g, unit: 'MB', better: 'lower', target: '< 50', met: g < 50 });
  }
  const a = r.slackAck;
  if (a) {
    rows.push({ key: 'ack.p50', label: `${a.concurrency} concurrent acks: p50 (client)`, value: a.p50.median, unit: 'ms', better: 'lower' });
    rows.push({ key: 'ack.p99', label: `${a.concurrency} concurrent acks: p99 (client)`, value: a.p99.median, unit: 'ms', better: 'lower' });
    rows.push({ key: 'ack.p99.receiver', label: `${a.concurrency} concurrent acks: p99 (inside receiver)`, value: a.receiverP99.median, unit: 'ms', better: 'lower' });
    rows.push({ key: 'ack.floor.p99', label: `${a.concurrency} concurrent enqueues, no HTTP: p99`, value: a.enqueueFloor.p99.median, unit: 'ms', better: 'lower' });
    if (a.httpFloorP99) {
      rows.push({ key: 'ack.httpFloor.p99', label: `same burst, bare node:http server: p99`, value: a.httpFloorP99.median, unit: 'ms', better: 'lower' });
      rows.push({ key: 'ack.boltHelp.p99', label: `same burst, Bolt answering help: p99`, value: a.boltHelpP99.median, unit: 'ms', better: 'lower' });
      if (a.ackVsBoltP99) {
        rows.push({
          key: 'ack.p99VsBolt',
          label: 'ack p99 / Bolt-alone p99 (same run, per round)',
          value: a.ackVsBoltP99.median,
          unit: 'x',
          better: 'lower',
          target: `<= ${ACK_VS_BOLT_P99_TARGET}`,
          met: a.ackVsBoltP99.median <= ACK_VS_BOLT_P99_TARGET,
        });
      }
      const vsFloor = Math.round((a.p99.median / a.httpFloorP99.median) * 100) / 100;
      rows.push({ key: 'ack.p99VsHttpFloor', label: 'ack p99 / bare node:http p99', value: vsFloor, unit: 'x', better: 'lower' });
    }
    rows.push({
      key: 'ack.jobs',
      label: `jobs waiting in the queue (expected ${a.expectedJobs})`,
      value: a.queue['waiting'] ?? 0,
      unit: 'count',
      better: 'higher',
      target: `= ${a.expectedJobs}`,
      met: a.allJobsInQueue,
    });
  }
  const f = r.fleet;
  if (f) {
    rows.push({ key: 'fleet.single', label: '1 gateway alone (enqueue -> done)', value: f.single.endToEnd.median, unit: 'ms', better: 'lower' });
    rows.push({ key: 'fleet.total', label: `${f.gateways} gateways, concurrency ${f.concurrency}: total`, value: f.total.median, unit: 'ms', better: 'lower' });
    rows.push({ key: 'fleet.totalVsSingle', label: `total / single (perfect pool: ${f.idealVsSingle})`, value: f.totalVsSingle, unit: 'x', better: 'lower' });
    rows.push({ key: 'fleet.totalVsIdeal', label: 'total / (sum of service / concurrency)', value: f.totalVsIdeal, unit: 'x', better: 'lower' });
    rows.push({ key: 'fleet.maxWait', label: 'max queue wait', value: f.maxWait.median, unit: 'ms', better: 'lower' });
    rows.push({ key: 'fleet.maxWaitVsExpected', label: 'max wait / FIFO fair-share expectation', value: f.maxWaitVsExpected, unit: 'x', better: 'lower' });
    rows.push({ key: 'fleet.serviceInFleet', label: 'service time per check inside the fleet', value: f.serviceInFleet.median, unit: 'ms', better: 'lower' });
  }
  const w = r.watch;
  if (w) {
    rows.push({ key: 'watch.cpuPerPoll', label: `watch, ${w.gateways} gateways every 1 s: bot CPU per poll`, value: w.cpuMsPerPoll, unit: 'ms', better: 'lower' });
    rows.push({ key: 'watch.rssPerGateway', label: 'watch: bot RSS per warm session (kB)', value: w.rssKbPerGateway, unit: 'count', better: 'lower' });
    rows.push({ key: 'watch.jsPerGateway', label: 'watch: bot JS heap + external per warm session (kB)', value: w.jsKbPerGateway, unit: 'count', better: 'lower' });
    rows.push({ key: 'watch.processor.p50', label: 'watch: poll processor duration p50', value: w.processor.p50, unit: 'ms', better: 'lower' });
    rows.push({ key: 'watch.processor.p99', label: 'watch: poll processor duration p99', value: w.processor.p99, unit: 'ms', better: 'lower' });
    rows.push({ key: 'watch.lag.p99', label: 'watch: scheduled -> started p99', value: w.lag.p99, unit: 'ms', better: 'lower' });
    rows.push({ key: 'watch.sshdRssPerSession', label: 'watch: gateway sshd RSS per warm session (kB)', value: w.gatewaySide.sshdRssKbPerSession, unit: 'count', better: 'lower' });
    rows.push({ key: 'watch.at1000.cpu', label: 'watch: 1,000 gateways / 30 s, share of one core (%)', value: round(w.at1000.cpuShareOfOneCore * 100, 1), unit: 'count', better: 'lower' });
    rows.push({ key: 'watch.at1000.rss', label: 'watch: 1,000 gateways / 30 s, bot RSS', value: w.at1000.rssMb, unit: 'MB', better: 'lower' });
  }
  const big = r.bigDump;
  if (big) {
    const n = fmtInt(big.check2m.lines);
    rows.push({ key: 'big.check', label: `${n}-line dump over SSH: whole check`, value: big.check2m.ms.median, unit: 'ms', better: 'lower' });
    rows.push({ key: 'big.linesPerSec', label: `${n}-line dump over SSH: check lines per second`, value: big.check2m.linesPerSec, unit: 'lines/s', better: 'higher' });
    rows.push({ key: 'big.floorLinesPerSec', label: `${n}-line dump over SSH: bare stream lines per second`, value: big.floor2m.linesPerSec, unit: 'lines/s', better: 'higher' });
    rows.push({ key: 'big.checkVsFloor', label: `${n}-line dump: check / bare stream`, value: big.checkVsFloor, unit: 'x', better: 'lower' });
    rows.push({ key: 'big.rss10k', label: `peak RSS of the check, ${fmtInt(big.check10k.lines)}-line dump`, value: big.check10k.maxRssMb.median, unit: 'MB', better: 'lower' });
    rows.push({ key: 'big.rss2m', label: `peak RSS of the check, ${n}-line dump`, value: big.check2m.maxRssMb.median, unit: 'MB', better: 'lower' });
    rows.push({
      key: 'big.rssGrowth',
      label: `check RSS growth ${fmtInt(big.check10k.lines)} -> ${n} lines`,
      value: big.rssGrowthMb,
      unit: 'MB',
      better: 'lower',
      target: `< ${big.target.rssGrowthMb}`,
      met: big.target.met,
    });
  }
  return rows;
}

function fmtValue(row: Row): string {
  switch (row.unit) {
    case 'ms':
      return row.value < 10 ? `${row.value.toFixed(2)} ms` : fmtMs(row.value);
    case 'x':
      return `${row.value.toFixed(2)}x`;
    case 'lines/s':
      return `${fmtInt(row.value)}/s`;
    case 'MB':
      return `${row.value.toFixed(1)} MB`;
    default:
      return fmtInt(row.value);
  }
}

function table(headers: string[], body: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

async function cleanupLabs(log: (s: string) => void): Promise<void> {
  await labDown(LAB_NAME).catch((err: unknown) => log(`cleanup ${LAB_NAME}: ${(err as Error).message}`));
  await labDownAll(FLEET_PREFIX).catch((err: unknown) => log(`cleanup ${FLEET_PREFIX}*: ${(err as Error).message}`));
  await labDownAll(WATCH_PREFIX).catch((err: unknown) => log(`cleanup ${WATCH_PREFIX}*: ${(err as Error).message}`));
  await labDown(BIG_LAB).catch((err: unknown) => log(`cleanup ${BIG_LAB}: ${(err as Error).message}`));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const t0 = performance.now();
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const machine = machineInfo();
  const git = gitInfo();
  log(`conntrack-ops bench ${startedAt.toISOString()} | ${machine.nproc} x ${machine.cpuModel} | kernel ${machine.kernel} | node ${machine.node} | ${machine.conntrackVersion}`);
  log(
    `load average at start ${machine.loadAvgAtStart.join(' ')}; ${machine.foreignNetnsAtStart} other network namespaces on the machine; git ${git.head}${git.dirtyMeasuredFiles.length ? ` (uncommitted changes in: ${git.dirtyMeasuredFiles.map((l) => l.replace(/^\s*\S+\s+/, '')).join(', ')})` : ''}`,
  );
  if (process.getuid?.() !== 0) throw new Error('the bench creates network namespaces: run it as root (like the lab tests)');

  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`\n${sig}: tearing down the bench's labs ...`);
    void cleanupLabs(log).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const parts: Results['parts'] = {};
  const errors: Record<string, string> = {};
  const section = async <T>(name: string, title: string, fn: () => Promise<T>): Promise<T | undefined> => {
    log(`\n== ${title}`);
    const s0 = performance.now();
    try {
      const v = await fn();
      log(`   (${fmtMs(performance.now() - s0)}, load average now ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
      return v;
    } catch (err) {
      errors[name] = (err as Error).stack?.split('\n').slice(0, 4).join(' | ') ?? String(err);
      log(`   FAILED: ${(err as Error).message}`);
      return undefined;
    }
  };

  try {
    if (args.only.has('sizes')) {
      parts.tableSizes = await section('sizes', `1. table sizes on one lab gateway (${args.runs} runs each)`, () =>
        benchTableSizes({ runs: args.runs, sizes: args.sizes, dumpDir: join(tmpdir(), 'cto-bench-dump'), log }),
      );
      const full = parts.tableSizes?.sizes.find((s) => s.full && s.recordedDump);
      if (full) {
        parts.breakdown = await section('breakdown', '1b. where the check spends its time on the full table', () =>
          benchBreakdown({ full, runs: 3, profile: true, log }),
        );
      }
      await rm(join(tmpdir(), 'cto-bench-dump'), { recursive: true, force: true });
    }
    if (args.only.has('parser')) {
      parts.parser = await section('parser', '2. parser alone, 1,000,000 recorded lines from a file', () =>
        benchParser({ runs: 3, dir: join(tmpdir(), `cto-bench-lines-${process.pid}`), log }),
      );
    }
    if (args.only.has('ack')) {
      parts.slackAck = await section('ack', '3. 200 concurrent signed /conntrack check requests (HTTP receiver, embedded Redis)', () =>
        benchSlackAck({ rounds: 5, concurrency: 200, warmupBursts: 3, log }),
      );
    }
    if (args.only.has('fleet')) {
      parts.fleet = await section('fleet', '4. 20 lab gateways checked at once (BullMQ worker, concurrency 4)', () =>
        benchFleet({ gateways: 20, concurrency: 4, rounds: 3, singleRuns: 3, log }),
      );
    }
    if (args.only.has('watch')) {
      parts.watch = await section('watch', `5. the watch: ${args.watchGateways} lab gateways polled every second by one worker`, () =>
        benchWatch({ gateways: args.watchGateways, windowSeconds: 30, warmupSeconds: 5, log }),
      );
    }
    if (args.only.has('bigdump')) {
      parts.bigDump = await section('bigdump', `6. a ${fmtInt(BIG_LINES)}-line dump streamed over SSH from a lab gateway (${args.bigRuns} runs, each in a child process)`, () =>
        benchBigDump({ runs: args.bigRuns, dir: join(tmpdir(), `cto-bench-big-${process.pid}`), log }),
      );
    }
  } finally {
    await cleanupLabs(log);
  }

  const leftover = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith('cto-bn'));

  const rows = rowsOf(parts);
  const results: Results = {
    version: 1,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine,
    loadAvgAtEnd: loadavg().map((x) => round(x, 2)),
    git,
    parts,
    errors,
    rows,
  };

  // ---- the table, with deltas against the previous run
  const prev = previousResults();
  const prevRows = new Map((prev?.data.rows ?? []).map((r) => [r.key, r]));
  log(`\n== results (${machine.nproc} x ${machine.cpuModel}, kernel ${machine.kernel}, node ${machine.node}; whole run ${fmtMs(results.durationMs)})`);
  if (prev) log(`   deltas against ${prev.file.replace(`${REPO_ROOT}/`, '')} (${prev.data.startedAt}, git ${prev.data.git.head}, ${prev.data.machine.slug})`);
  const body = rows.map((r) => {
    const p = prevRows.get(r.key);
    let delta = '';
    if (p && Number.isFinite(p.value) && p.value !== 0) {
      const pct = ((r.value - p.value) / Math.abs(p.value)) * 100;
      const good = r.better === 'lower' ? pct < 0 : pct > 0;
      delta = `${pct >= 0 ? '+' : ''}${pct.toFixed(1)} %${Math.abs(pct) >= 10 ? (good ? ' better' : ' worse') : ''}`;
    }
    return [r.label, fmtValue(r), p ? fmtValue(p) : '', delta, r.target ? `${r.target}: ${r.met ? 'met' : 'MISSED'}` : ''];
  });
  log(table(['measure (median of runs)', 'now', 'previous', 'delta', 'target'], body));

  const t = parts.tableSizes;
  if (t) {
    log('\n   part 1 per size (median / min, ms):');
    log(
      table(
        ['entries', 'session', 'a floor', 'b check', 'c runbook', 'b/a', 'c/b', 'b: connect+(facts | dump)', 'bot CPU a / b'],
        t.sizes.map((s) => [
          fmtInt(s.countBefore),
          s.full ? 'warm' : 'fresh',
          `${Math.round(s.a.median)} / ${Math.round(s.a.min)}`,
          `${Math.round(s.b.median)} / ${Math.round(s.b.min)}`,
          `${Math.round(s.c.median)} / ${Math.round(s.c.min)}`,
          s.ratios.ba.toFixed(2),
          s.ratios.cb.toFixed(2),
          `${s.bTimings['connectMs'] ?? '?'}+(${s.bTimings['factsMs'] ?? '?'} | ${s.bTimings['tableDumpMs'] ?? '?'})`,
          `${Math.round(s.aCpu.median)} / ${Math.round(s.bCpu.median)}`,
        ]),
      ),
    );
    const full = t.sizes.find((s) => s.full);
    if (full?.freshConnectAtFull) {
      log(
        `   at full: b used the warm session opened before the fill; a NEW SSH connection ${full.freshConnectAtFull.ok ? `got in (${full.freshConnectAtFull.ms} ms)` : `failed after ${full.freshConnectAtFull.ms} ms (${full.freshConnectAtFull.error ?? ''})`}`,
      );
    }
  }
  if (parts.breakdown) {
    log('\n   where the time goes at full:');
    for (const l of parts.breakdown.lines) log(`   - ${l}`);
  }
  const targets = rows.filter((r) => r.target);
  log(`\n   targets: ${targets.map((r) => `${r.label} ${r.target} -> ${fmtValue(r)} ${r.met ? 'met' : 'MISSED'}`).join('; ') || 'none measured'}`);
  if (Object.keys(errors).length) log(`   parts that failed: ${Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join(' || ')}`);
  log(`   load average at end ${results.loadAvgAtEnd.join(' ')} (start ${machine.loadAvgAtStart.join(' ')}): other work on this machine inflates every timing`);
  log(`   bench namespaces left: ${leftover.length ? leftover.join(' ') : 'none'}`);

  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(`\n   wrote bench/results/latest.json`);
  if (args.save) {
    const name = `${startedAt.toISOString().slice(0, 10)}-${machine.slug}.json`;
    await writeFile(join(RESULTS_DIR, name), `${JSON.stringify(results, null, 2)}\n`);
    log(`   wrote bench/results/${name} (commit it)`);
  }
  if (Object.keys(errors).length || leftover.length) process.exitCode = 1;
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  await cleanupLabs((s) => process.stderr.write(`${s}\n`));
  process.exit(1);
});
