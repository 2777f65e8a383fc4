/**
 * Part 1: one lab gateway, table sizes 10k, 100k and full (nf_conntrack_max, 262,144 here),
 * filled with real traffic through its NAT (flushed between sizes). For each size, `runs`
 * rounds of (order rotated every round):
 *   a  floor     one bare `conntrack -L` streamed over an ssh2 connection and discarded
 *   b  check     conntrack-ops' runCheck end to end (SSH connect -> findings and plan)
 *   c  runbook   the runbook's three `conntrack -L | awk | sort | uniq -c | sort -rn | head`
 *                pipelines, exact text, one after the other on one SSH connection
 * a, b and c use the same kind of session: a fresh ssh2 connection (connect time included)
 * while the table is not full, and the warm session opened BEFORE the fill (SessionPool.watch)
 * once it is full, because a table full of assured entries refuses new SSH connections.
 *
 * The gateway's UDP timeouts are raised inside the lab's namespace (never the initial one)
 * before the fills, so the table keeps its size while it is measured.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import type { CheckReport } from '../../src/core/model.js';
import { FACTS_SCRIPT } from '../../src/diagnostics/facts-script.js';
import { commands } from '../../src/gateway/commands.js';
import { freshSessions, SessionPool } from '../../src/gateway/session-pool.js';
import { GatewaySession } from '../../src/gateway/ssh-session.js';
import {
  conntrackCount,
  conntrackMax,
  fillScenario,
  flushTable,
  gatewayExec,
  labDown,
  labUp,
  type FillResult,
  type Lab,
} from '../../lab/index.js';
import { ratio, summarize, type Summary } from '../lib/stats.js';

export const BA_TARGET = 0.9;
export const CB_TARGET = 2.5;
export const LAB_NAME = 'cto-bnx1';

/** The runbook's step 2, character for character (shared/runbook/conntrack-exhaustion.md). */
export const RUNBOOK_PIPELINES = [
  "conntrack -L | awk '{print $4}' | sort | uniq -c | sort -rn | head -10",
  "conntrack -L | awk '{print $5}' | sort | uniq -c | sort -rn | head -10",
  "conntrack -L | awk '{print $4}' | grep -oP 'state=\\S+' | sort | uniq -c | sort -rn",
] as const;

const BARE_DUMP = commands.script('bare conntrack -L (bench floor)', 'conntrack -L');
const GATEWAY_SIDE = {
  procCat: commands.script('cat /proc/net/nf_conntrack on the gateway only (bench)', 'cat /proc/net/nf_conntrack >/dev/null'),
  conntrackL: commands.script('conntrack -L on the gateway only (bench)', 'conntrack -L >/dev/null 2>&1'),
};
const RUNBOOK_COMMANDS = RUNBOOK_PIPELINES.map((p, i) => commands.script(`runbook step 2 pipeline ${i + 1}`, p));

/**
 * Where the facts step spends its time: the exact FACTS_SCRIPT under bash xtrace with a
 * microsecond timestamp per traced command (PS4=$EPOCHREALTIME), trace to a file on the
 * gateway, then summed per `begin <section>` of the script. One traced run (tracing adds
 * a little overhead; `tracedTotalMs` is the traced script's own span).
 */
const XTRACE_FILE = '/tmp/cto-bench-facts-xtrace';
const TRACED_FACTS = commands.script(
  'facts script under xtrace (bench)',
  `bash -c 'exec 3>${XTRACE_FILE}; BASH_XTRACEFD=3; PS4="+\\\${EPOCHREALTIME} "; set -x; eval "$1"' bench "$(cat <<'__FACTS__'\n${FACTS_SCRIPT}\n__FACTS__\n)" >/dev/null 2>&1; cat ${XTRACE_FILE}; rm -f ${XTRACE_FILE}`,
);

export interface FactsSections {
  tracedTotalMs: number;
  /** One exec of `true` on the same session (channel open + shell start + close), median of 3. */
  emptyExecMs?: number;
  sections: { section: string; ms: number }[];
}

export function parseXtrace(trace: string): FactsSections {
  const events: { t: number; cmd: string }[] = [];
  for (const line of trace.split('\n')) {
    const m = /^\++(\d+\.\d+) (.*)$/.exec(line);
    if (m) events.push({ t: Number(m[1]), cmd: m[2] ?? '' });
  }
  const bySection = new Map<string, number>();
  let section = '(preamble)';
  for (let i = 0; i < events.length - 1; i++) {
    const e = events[i]!;
    const b = /^(?:begin|missing) ([a-z0-9-]+)/.exec(e.cmd) ?? /^(?:run|tool) ([a-z0-9-]+)/.exec(e.cmd);
    if (b) section = b[1] as string;
    bySection.set(section, (bySection.get(section) ?? 0) + (events[i + 1]!.t - e.t) * 1000);
  }
  const total = events.length > 1 ? (events.at(-1)!.t - events[0]!.t) * 1000 : 0;
  return {
    tracedTotalMs: Math.round(total),
    sections: [...bySection].map(([section, ms]) => ({ section, ms: Math.round(ms * 10) / 10 })).sort((a, b) => b.ms - a.ms),
  };
}

export interface SizeResult {
  target: number;
  fill: { scenario: string; ms: number; countAfterFill: number; udpFlows: number; drops: number };
  /** Table size seen by the kernel right before and right after the measurements. */
  countBefore: number;
  countAfter: number;
  full: boolean;
  session: 'fresh ssh2 connection per measurement' | 'warm ssh2 session (opened before the fill)';
  a: Summary;
  b: Summary;
  c: Summary;
  /** Parts of a: connect and the dump alone. */
  aConnect: Summary;
  aDump: Summary;
  aBytes: number;
  aLines: number;
  /** CPU time of this (the bot's) process during a and during b: one JS thread does SSH and parsing. */
  aCpu: Summary;
  bCpu: Summary;
  /** b - connect - facts - table dump, per run: findings, plan, report, schema checks. */
  bOther: Summary;
  /** Parts of b, from report.timings (median over runs). */
  bTimings: Record<string, number>;
  bEntries: number;
  /** Parts of c: connect and each pipeline. */
  cConnect: Summary;
  cPipelines: Summary[];
  cOutputs: string[];
  ratios: { ba: number; cb: number; baMin: number; cbMin: number };
  /** b/a and c/b of each round (a, b and c of one round measured one after the other). */
  perRound: { ba: number[]; cb: number[] };
  /**
   * The gateway's side alone, on the same session, output to /dev/null on the gateway:
   * what the check's dump (/proc/net/nf_conntrack) and the floor (conntrack -L) cost there.
   */
  gatewaySide?: { procCat: Summary; conntrackL: Summary };
  /** The facts step, section by section (one traced run). */
  factsSections?: FactsSections;
  /** Only for the full table: does a NEW connection get in? */
  freshConnectAtFull?: { ok: boolean; ms: number; error?: string };
  /** Only for the full table: one recorded dump (for the aggregator/parser breakdown). */
  recordedDump?: string;
}

export interface TableSizesResult {
  lab: string;
  max: number;
  runs: number;
  labUpMs: number;
  sizes: SizeResult[];
  targets: { ba: { target: number; value: number; met: boolean }; cb: { target: number; value: number; met: boolean } };
}

async function drain(stream: NodeJS.ReadableStream, sink?: NodeJS.WritableStream): Promise<{ bytes: number; lines: number }> {
  let bytes = 0;
  let lines = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
    if (sink && !sink.write(chunk)) await once(sink, 'drain');
  }
  return { bytes, lines };
}

export async function benchTableSizes(opts: {
  runs: number;
  sizes: number[];
  dumpDir: string;
  log: (s: string) => void;
}): Promise<TableSizesResult> {
  const { log } = opts;
  await labDown(LAB_NAME).catch(() => undefined); // leftovers of a crashed run
  const t0 = Date.now();
  const lab: Lab = await labUp({ name: LAB_NAME, clients: 2, sourcesPerClient: 8 });
  const labUpMs = Date.now() - t0;
  const pool = new SessionPool({ healthIntervalMs: 30_000, keepaliveIntervalMs: 5_000 });
  const name = lab.name;
  const config = lab.inventoryEntry;
  try {
    // Only inside the lab gateway's namespace: keep UDP entries while we measure.
    for (const key of ['nf_conntrack_udp_timeout', 'nf_conntrack_udp_timeout_stream']) {
      await gatewayExec(lab, ['sysctl', '-qw', `net.netfilter.${key}=900`]);
    }
    const max = await conntrackMax(lab);
    log(`lab ${name} up in ${labUpMs} ms, nf_conntrack_max ${max.toLocaleString('en-US')}`);
    // The warm session exists before any fill (a full table refuses new connections).
    await pool.watch(name, config);
    if (!pool.isWarm(name)) throw new Error(`could not open the warm SSH session to ${name}`);

    const sizes: SizeResult[] = [];
    for (const target of opts.sizes) {
      const wantFull = target >= max;
      await flushTable(lab);
      // (flushTable keeps the SSH sessions' entries: the warm session stays tracked.)
      const f0 = Date.now();
      const fill: FillResult = wantFull
        ? await fillScenario(lab, 'saturated', { timeoutMs: 240_000 })
        : await fillScenario(lab, 'heavy-hitter', { heavyHitterFlows: target, heavyHitterShare: 0.3, timeoutMs: 120_000 });
      const fillMs = Date.now() - f0;
      const countBefore = await conntrackCount(lab);
      const full = countBefore >= max - 64;
      const fresh = !full;
      log(
        `size ${target.toLocaleString('en-US')}: filled to ${countBefore.toLocaleString('en-US')} entries in ${fillMs} ms (${fill.scenarios.join('+')}), ${fresh ? 'fresh connection per measurement' : 'warm session (table full)'}`,
      );
      if (wantFull && !full) log(`  WARNING: the table did not reach max (${countBefore} < ${max})`);

      const session = async (): Promise<{ s: GatewaySession; connectMs: number; done: () => void }> => {
        const c0 = performance.now();
        if (fresh) {
          const s = await GatewaySession.connect(name, config);
          return { s, connectMs: performance.now() - c0, done: () => s.close() };
        }
        const lease = await pool.provider(name, config);
        return { s: lease.session, connectMs: performance.now() - c0, done: () => lease.release() };
      };

      const samples = {
        a: [] as number[],
        b: [] as number[],
        c: [] as number[],
        aConnect: [] as number[],
        aDump: [] as number[],
        cConnect: [] as number[],
        aCpu: [] as number[],
        bCpu: [] as number[],
        bOther: [] as number[],
      };
      const cpuMs = (d: NodeJS.CpuUsage) => (d.user + d.system) / 1000;
      const cPipes: number[][] = RUNBOOK_COMMANDS.map(() => []);
      const bTimings: Record<string, number[]> = {};
      let aBytes = 0;
      let aLines = 0;
      let bEntries = 0;
      let cOutputs: string[] = [];

      const measureA = async () => {
        const cpu0 = process.cpuUsage();
        const start = performance.now();
        const { s, connectMs, done } = await session();
        try {
          const d0 = performance.now();
          const { stdout, done: exit } = await s.stream(BARE_DUMP, { timeoutMs: 120_000 });
          const [counted, end] = await Promise.all([drain(stdout), exit]);
          if (end.code !== 0) throw new Error(`conntrack -L exited ${end.code}: ${end.stderr.slice(0, 200)}`);
          samples.aDump.push(performance.now() - d0);
          aBytes = counted.bytes;
          aLines = counted.lines;
        } finally {
          done();
        }
        samples.a.push(performance.now() - start);
        samples.aCpu.push(cpuMs(process.cpuUsage(cpu0)));
        samples.aConnect.push(connectMs);
      };
      const measureB = async () => {
        const cpu0 = process.cpuUsage();
        const start = performance.now();
        const report: CheckReport = await (await import('../../src/check/run-check.js')).runCheck({
          gatewayName: name,
          config,
          sessions: fresh ? freshSessions() : pool.provider,
        });
        const bMs = performance.now() - start;
        samples.b.push(bMs);
        samples.bCpu.push(cpuMs(process.cpuUsage(cpu0)));
        // Facts and dump run at once: their common wall time is factsAndDumpMs.
        samples.bOther.push(bMs - (report.timings['connectMs'] ?? 0) - (report.timings['factsAndDumpMs'] ?? 0));
        bEntries = report.table.entries;
        for (const [k, v] of Object.entries(report.timings)) (bTimings[k] ??= []).push(v);
        (bTimings['aggregatorMs'] ??= []).push(report.table.durationMs);
      };
      const measureC = async () => {
        const start = performance.now();
        const { s, connectMs, done } = await session();
        const outs: string[] = [];
        try {
          for (let i = 0; i < RUNBOOK_COMMANDS.length; i++) {
            const p0 = performance.now();
            const r = await s.exec(RUNBOOK_COMMANDS[i]!, { timeoutMs: 120_000, allowFailure: true });
            cPipes[i]!.push(performance.now() - p0);
            outs.push(r.stdout.trim().split('\n').slice(0, 3).join(' | '));
          }
        } finally {
          done();
        }
        samples.c.push(performance.now() - start);
        samples.cConnect.push(connectMs);
        cOutputs = outs;
      };
      const kinds = [measureA, measureB, measureC];
      for (let r = 0; r < opts.runs; r++) {
        for (let k = 0; k < kinds.length; k++) await kinds[(k + r) % kinds.length]!();
      }
      const countAfter = await conntrackCount(lab);

      const a = summarize(samples.a);
      const b = summarize(samples.b);
      const c = summarize(samples.c);
      const res: SizeResult = {
        target,
        fill: {
          scenario: fill.scenarios.join('+'),
          ms: fillMs,
          countAfterFill: fill.after.count,
          udpFlows: fill.udpFlows,
          drops: fill.delta.drop,
        },
        countBefore,
        countAfter,
        full,
        session: fresh ? 'fresh ssh2 connection per measurement' : 'warm ssh2 session (opened before the fill)',
        a,
        b,
        c,
        aConnect: summarize(samples.aConnect),
        aDump: summarize(samples.aDump),
        aBytes,
        aLines,
        aCpu: summarize(samples.aCpu),
        bCpu: summarize(samples.bCpu),
        bOther: summarize(samples.bOther),
        bTimings: Object.fromEntries(Object.entries(bTimings).map(([k, v]) => [k, summarize(v).median])),
        bEntries,
        cConnect: summarize(samples.cConnect),
        cPipelines: cPipes.map((p) => summarize(p)),
        cOutputs,
        ratios: { ba: ratio(b.median, a.median), cb: ratio(c.median, b.median), baMin: ratio(b.min, a.min), cbMin: ratio(c.min, b.min) },
        perRound: {
          ba: samples.b.map((v, i) => ratio(v, samples.a[i] ?? Number.NaN)),
          cb: samples.c.map((v, i) => ratio(v, samples.b[i] ?? Number.NaN)),
        },
      };
      try {
        const { s, done } = await session();
        const side = { procCat: [] as number[], conntrackL: [] as number[] };
        try {
          for (let i = 0; i < 3; i++) {
            for (const k of ['procCat', 'conntrackL'] as const) {
              const g0 = performance.now();
              await s.exec(GATEWAY_SIDE[k], { timeoutMs: 120_000 });
              side[k].push(performance.now() - g0);
            }
          }
        } finally {
          done();
        }
        res.gatewaySide = { procCat: summarize(side.procCat), conntrackL: summarize(side.conntrackL) };
      } catch (err) {
        log(`  gateway-side timing failed: ${(err as Error).message.slice(0, 200)}`);
      }
      log(
        `  per round: b/a ${res.perRound.ba.join(', ')}; c/b ${res.perRound.cb.join(', ')}${res.gatewaySide ? `; on the gateway alone (to /dev/null): cat /proc/net/nf_conntrack ${res.gatewaySide.procCat.median} ms, conntrack -L ${res.gatewaySide.conntrackL.median} ms` : ''}`,
      );
      log(
        `  a ${a.median} ms (min ${a.min}), b ${b.median} ms (min ${b.min}), c ${c.median} ms (min ${c.min}); b/a ${res.ratios.ba}, c/b ${res.ratios.cb}; bot process CPU a ${res.aCpu.median} ms, b ${res.bCpu.median} ms; entries seen by the check ${bEntries.toLocaleString('en-US')}, count after ${countAfter.toLocaleString('en-US')}`,
      );

      try {
        const { s, done } = await session();
        try {
          const r = await s.exec(TRACED_FACTS, { timeoutMs: 60_000, allowFailure: true });
          res.factsSections = parseXtrace(r.stdout);
          const empties: number[] = [];
          for (let i = 0; i < 3; i++) {
            const e0 = performance.now();
            await s.exec(commands.script('empty exec (bench)', 'true'), { timeoutMs: 10_000 });
            empties.push(performance.now() - e0);
          }
          res.factsSections.emptyExecMs = summarize(empties).median;
        } finally {
          done();
        }
        log(
          `  facts script by section (traced span ${res.factsSections.tracedTotalMs} ms; an empty exec costs ${res.factsSections.emptyExecMs} ms): ${res.factsSections.sections
            .slice(0, 6)
            .map((x) => `${x.section} ${Math.round(x.ms)}`)
            .join(', ')}`,
        );
      } catch (err) {
        log(`  facts breakdown failed: ${(err as Error).message.slice(0, 200)}`);
      }

      if (full) {
        // Does a NEW connection get in now? (Expected: no; the warm session is why b worked.)
        const c0 = performance.now();
        try {
          const s = await GatewaySession.connect(name, { ...config, connectTimeoutMs: 5_000 });
          s.close();
          res.freshConnectAtFull = { ok: true, ms: Math.round(performance.now() - c0) };
        } catch (err) {
          res.freshConnectAtFull = { ok: false, ms: Math.round(performance.now() - c0), error: (err as Error).message.slice(0, 200) };
        }
        log(`  a NEW connection at full: ${res.freshConnectAtFull.ok ? 'got in' : 'refused/timed out'} after ${res.freshConnectAtFull.ms} ms`);
        // Record one dump over the warm session for the parser/aggregator breakdown.
        await mkdir(opts.dumpDir, { recursive: true });
        const file = join(opts.dumpDir, `lab-dump-${countAfter}.txt`);
        const out = createWriteStream(file);
        const lease = await pool.provider(name, config);
        const { stdout, done } = await lease.session.stream(BARE_DUMP, { timeoutMs: 120_000 });
        await Promise.all([drain(stdout, out), done]);
        out.end();
        await once(out, 'finish');
        res.recordedDump = file;
      }
      sizes.push(res);
    }
    const fullSize = sizes.find((s) => s.full) ?? sizes.at(-1);
    const ba = fullSize?.ratios.ba ?? Number.NaN;
    const cb = fullSize?.ratios.cb ?? Number.NaN;
    return {
      lab: name,
      max,
      runs: opts.runs,
      labUpMs,
      sizes,
      targets: {
        ba: { target: BA_TARGET, value: ba, met: ba <= BA_TARGET && Boolean(fullSize?.full) },
        cb: { target: CB_TARGET, value: cb, met: cb >= CB_TARGET && Boolean(fullSize?.full) },
      },
    };
  } finally {
    pool.close();
    await labDown(LAB_NAME).catch((err: unknown) => log(`labDown ${LAB_NAME} failed: ${(err as Error).message}`));
  }
}
