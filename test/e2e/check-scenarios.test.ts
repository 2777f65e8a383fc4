/**
 * The check on a real lab NAT gateway over real SSH, one scenario at a time: the
 * findings and plan a user would act on (right heavy-hitter IP, right counts within a
 * tolerance, right severity, read-only max detected before anyone approves).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckReport, Finding } from '../../src/core/model.js';
import { runCheck } from '../../src/check/run-check.js';
import { commands } from '../../src/gateway/commands.js';
import { SessionPool } from '../../src/gateway/session-pool.js';
import { conntrackCount, fillScenario, flushTable, labDown, labUp, type FillResult, type Lab } from '../../lab/index.js';

let lab: Lab;
let pool: SessionPool;
let labUpStarted = 0;
let labUpDone = 0;

beforeAll(async () => {
  labUpStarted = Date.now();
  lab = await labUp({ clients: 2, sourcesPerClient: 4 });
  labUpDone = Date.now();
  pool = new SessionPool({ healthIntervalMs: 5_000 });
  // A table full of assured entries refuses new SSH sessions: open ours first.
  await pool.watch(lab.name, lab.inventoryEntry);
}, 120_000);

afterAll(async () => {
  pool?.close();
  if (lab) await labDown(lab);
});

async function check(): Promise<CheckReport> {
  return runCheck({ gatewayName: lab.name, config: lab.inventoryEntry, sessions: pool.provider });
}

function finding(report: CheckReport, id: Finding['id']): Finding | undefined {
  return report.findings.find((f) => f.id === id);
}

async function freshFill(...scenarios: Parameters<typeof fillScenario>[1][]): Promise<FillResult> {
  await flushTable(lab);
  return fillScenario(lab, scenarios.flat());
}

describe('check on a lab gateway', () => {
  it('healthy: no pressure findings, counts match the kernel, max read-only is known before any approval', async () => {
    await freshFill('healthy');
    const kernelCount = await conntrackCount(lab);
    const report = await check();
    expect(report.gateway).toBe(lab.name);
    expect(Math.abs(report.conntrack.count - kernelCount)).toBeLessThanOrEqual(Math.max(20, kernelCount * 0.05));
    expect(Math.abs(report.table.entries - kernelCount)).toBeLessThanOrEqual(Math.max(20, kernelCount * 0.05));
    expect(report.conntrack.max).toBe(262_144);
    for (const id of ['table-saturated', 'table-high', 'heavy-hitter', 'port-exhaustion-risk'] as const) {
      expect(finding(report, id), id).toBeUndefined();
    }
    expect(report.facts.writable['nf_conntrack_max']).toBe(false);
    expect(report.facts.writable['nf_conntrack_tcp_timeout_established']).toBe(true);
    expect(report.table.unparsed).toBe(0);
    // UDP entries have no state: the runbook's awk would have printed nothing useful here.
    expect(report.states['udp']).toBeGreaterThan(0);
  });

  it('commands on the warm session are not held back by Nagle (each check and apply runs dozens of them)', async () => {
    const lease = await pool.provider(lab.name, lab.inventoryEntry);
    try {
      const ms: number[] = [];
      for (let i = 0; i < 9; i++) {
        const t0 = performance.now();
        await lease.session.exec(commands.script('latency probe', 'true'), { timeoutMs: 10_000 });
        ms.push(performance.now() - t0);
      }
      ms.sort((a, b) => a - b);
      // Measured: 44 ms per exec with Nagle on (the gateway's delayed ACK), 2 ms without.
      expect(ms[4], `exec round trips ${ms.map((x) => x.toFixed(1)).join(', ')} ms`).toBeLessThan(30);
    } finally {
      lease.release();
    }
  });

  it('heavy-hitter: names the exact client IP that owns most entries', async () => {
    const fill = await freshFill('heavy-hitter');
    const report = await check();
    const hh = finding(report, 'heavy-hitter');
    expect(fill.heavyHitter).toBeDefined();
    expect(hh?.evidence['source']).toBe(fill.heavyHitter?.ip);
    expect(report.topSources[0]?.key).toBe(fill.heavyHitter?.ip);
    const entries = Number(hh?.evidence['entries']);
    expect(entries).toBeGreaterThanOrEqual((fill.heavyHitter?.flows ?? 0) * 0.9);
    expect(entries).toBeLessThanOrEqual((fill.heavyHitter?.flows ?? 0) * 1.1 + 50);
  });

  it('timewait: TIME_WAIT pile found; ESTABLISHED timeout left alone while nothing is idle; under pressure TIME_WAIT is shortened', async () => {
    const fill = await freshFill('timewait');
    const report = await check();
    expect(report.states['tcp TIME_WAIT'] ?? 0).toBeGreaterThanOrEqual((fill.tcp?.timewait ?? 0) * 0.9);
    expect(report.states['tcp ESTABLISHED'] ?? 0).toBeGreaterThanOrEqual((fill.tcp?.established ?? 0) * 0.9);
    expect(finding(report, 'timewait-pile')).toBeDefined();
    expect(finding(report, 'established-timeout-long')?.evidence).toBeDefined();
    // The ESTABLISHED entries were just created (idle ~0 s): lowering the 5-day timeout would free nothing.
    expect(report.plan.steps.find((s) => s.key === 'nf_conntrack_tcp_timeout_established')).toBeUndefined();
    expect(report.plan.notes.join(' ')).toMatch(/Nothing to change/);
    // The same table on a gateway whose thresholds say 1 % is already high: the TIME_WAIT pile gets a plan.
    const strict = await runCheck({ gatewayName: lab.name, config: { ...lab.inventoryEntry, thresholds: { warnPercent: 1, critPercent: 95, heavyHitterShare: 0.25 } }, sessions: pool.provider });
    const tw = strict.plan.steps.find((s) => s.key === 'nf_conntrack_tcp_timeout_time_wait');
    expect(tw?.current).toBe('120');
    expect(Number(tw?.proposed)).toBeLessThan(120);
    expect(tw?.writable).toBe(true);
    expect(strict.plan.steps.some((s) => s.kind === 'persist-sysctl')).toBe(true);
  });

  it('port-exhaustion: the one destination ip:port through one NAT address, critical, with insert_failed', async () => {
    const fill = await freshFill('port-exhaustion');
    const report = await check();
    const pe = finding(report, 'port-exhaustion-risk');
    expect(pe?.severity).toBe('critical');
    expect(pe?.evidence['destination']).toBe(`${fill.portExhaustion?.dst}:${fill.portExhaustion?.dport}/udp`);
    expect(pe?.evidence['natSource']).toBe(fill.portExhaustion?.externalAddress);
    expect(Number(pe?.evidence['entries'])).toBeGreaterThanOrEqual(64_000);
    expect(Number(pe?.evidence['entries'])).toBeLessThanOrEqual(64_512);
    expect(report.drops.insertFailed).toBeGreaterThan(0);
  });

  it('saturated: critical, drops and "table full" lines seen, the warm session still gets in, max not writable here', async () => {
    const fill = await freshFill('saturated', 'heavy-hitter');
    expect(fill.after.count).toBeGreaterThanOrEqual(262_144 - 64);
    const report = await check();
    expect(finding(report, 'table-saturated')?.severity).toBe('critical');
    const drops = finding(report, 'drops-observed');
    expect(drops).toBeDefined();
    expect(report.drops.drop).toBeGreaterThan(0);
    expect(report.drops.tableFullMessages).toBeGreaterThan(0);
    // Only lines from this namespace's lifetime: its inode may have belonged to an earlier lab.
    const since = Date.parse(report.facts.netnsSince ?? 'missing');
    expect(since).toBeGreaterThanOrEqual(Math.floor(labUpStarted / 1000) * 1000);
    expect(since).toBeLessThanOrEqual(labUpDone);
    const ownLines = report.facts.kernelLog.filter((e) => e.kind === 'table-full');
    expect(ownLines.every((e) => e.at !== null && Date.parse(e.at) >= since - 5_000)).toBe(true);
    expect(finding(report, 'heavy-hitter')?.evidence['source']).toBe(fill.heavyHitter?.ip);
    expect(finding(report, 'max-readonly')).toBeDefined();
    const maxStep = report.plan.steps.find((s) => s.key === 'nf_conntrack_max');
    expect(maxStep?.writable).toBe(false);
    expect(maxStep?.whereToChange).toMatch(/host|namespace|container/i);
    expect(Number(maxStep?.proposed)).toBeGreaterThan(262_144);
    // Management SSH is tracked: the plan offers the NOTRACK exemption for the bot's own address.
    expect(report.plan.steps.some((s) => s.kind === 'notrack-management')).toBe(true);
    expect(report.timings['tableDumpMs']).toBeLessThan(15_000);
  });
});
