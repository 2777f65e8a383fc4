/**
 * Scenarios fill a lab gateway's real conntrack table through its NAT; each test reads the
 * table inside the gateway namespace (conntrack -C / -L / -S) and the kernel log.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  conntrackMax,
  fillScenario,
  flushTable,
  gatewayExec,
  labDown,
  labTableSummary,
  labUp,
  openGatewayMaster,
  sshExec,
  startKeepalive,
  tableFullLines,
  type Lab,
  type LabTableSummary,
} from '../../lab/index.js';

const natCount = (s: LabTableSummary, l: Lab) => s.natAddresses.find(([a]) => a === l.externalAddress)?.[1] ?? 0;

/** Entries of `conntrack -L -p tcp` with their remaining timeout, by destination port. */
async function tcpTimeouts(lab: Lab, dport: number): Promise<{ state: string; timeout: number }[]> {
  const r = await gatewayExec(lab, ['conntrack', '-L', '-p', 'tcp', '--dport', String(dport)], { check: false });
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('tcp'))
    .map((l) => {
      const f = l.split(/\s+/);
      return { timeout: Number(f[2]), state: f[3] ?? '' };
    });
}

describe('lab scenarios', () => {
  let lab: Lab | undefined;

  beforeAll(async () => {
    lab = await labUp({ clients: 2, sourcesPerClient: 4 });
  });
  afterAll(async () => {
    if (lab) await labDown(lab);
  });
  beforeEach(async () => {
    if (lab) await flushTable(lab);
  });

  it('saturated + heavy-hitter: real max, assured entries, real drops and kernel log, SSH locked out', async () => {
    const l = lab!;
    const master = await openGatewayMaster(l); // before the fill: stays usable
    try {
      const max = await conntrackMax(l);
      expect(max).toBe(Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8'))); // kernel-wide
      const r = await fillScenario(l, ['saturated', 'heavy-hitter']);
      console.info(`saturated+heavy-hitter: ${r.durationMs} ms`, JSON.stringify(r.phases));
      const why = JSON.stringify({ after: r.after, delta: r.delta, lines: r.tableFullLines, phases: r.phases });
      expect(r.generator).not.toBeNull();
      expect(r.after.count, why).toBe(max);
      expect(r.delta.drop, why).toBeGreaterThan(0);
      expect(r.tableFullLines, why).toBeGreaterThan(0);
      const lines = await tableFullLines(l);
      expect(lines.at(-1)).toMatch(new RegExp(`table full in netns ${l.gatewayNetnsInode}, dropping packet`));

      // Over the connection opened before the fill: still works, sees the full table.
      const viaMaster = await master.run('cat /proc/sys/net/netfilter/nf_conntrack_count; conntrack -S | grep -c drop=');
      expect(viaMaster.exitCode, viaMaster.stderr).toBe(0);
      expect(Number(viaMaster.stdout.split('\n')[0])).toBeGreaterThan(max * 0.99);
      // New connections: their SYNs are dropped by the full table. (A SYN may early-drop one of
      // the 128 unassured overflow entries if one sits in its hash neighbourhood: rare, so of
      // two attempts at least one must time out.)
      const fresh = await Promise.all([1, 2].map(() => sshExec(l, 'true', { connectTimeoutS: 2, timeoutMs: 10_000 })));
      expect(fresh.some((f) => f.exitCode !== 0 && /timed out/i.test(f.stderr)), JSON.stringify(fresh)).toBe(true);

      const s = await labTableSummary(l);
      console.info(`conntrack -L of ${s.entries} entries: ${s.ms} ms`);
      const sum = JSON.stringify({ ...s, sources: s.sources.slice(0, 5), destinations: [], portUse: [] });
      expect(s.entries, sum).toBeGreaterThan(max * 0.99);
      expect(s.assured, sum).toBeGreaterThan(max * 0.99);
      expect(s.sources[0]?.[0], sum).toBe(r.heavyHitter!.ip);
      expect(s.sources[0]![1] / s.entries, sum).toBeGreaterThan(0.55);
      expect(s.natAddresses[0]).toEqual([l.externalAddress, expect.any(Number)]);
      expect(s.natAddresses[0]![1]).toBeGreaterThan(max * 0.99);
    } finally {
      await master.close();
    }
  });

  it('heavy-hitter: that exact client IP is the top source', async () => {
    const l = lab!;
    const hitter = l.clientIps[5]!;
    const r = await fillScenario(l, 'heavy-hitter', { heavyHitterIp: hitter, heavyHitterFlows: 10_000, heavyHitterShare: 0.5 });
    expect(r.heavyHitter).toMatchObject({ ip: hitter, flows: 5000 });
    const s = await labTableSummary(l);
    expect(s.sources[0]).toEqual([hitter, 5000]);
    expect(s.sources[1]![1]).toBeLessThan(1000);
    expect(s.assured).toBeGreaterThanOrEqual(10_000);
    expect(r.delta.drop).toBe(0);
  });

  it('heavy-hitter with the Node generator (fallback when gcc is missing)', async () => {
    const l = lab!;
    process.env.CONNTRACK_OPS_LAB_GENERATOR = 'node';
    try {
      const r = await fillScenario(l, 'heavy-hitter', { heavyHitterFlows: 6000 });
      expect(r.generator).toBe('node');
      const s = await labTableSummary(l);
      expect(s.sources[0]).toEqual([r.heavyHitter!.ip, 3600]);
      expect(s.assured).toBeGreaterThanOrEqual(6000);
    } finally {
      delete process.env.CONNTRACK_OPS_LAB_GENERATOR;
    }
  });

  it('timewait: thousands of TIME_WAIT and idle ESTABLISHED entries through the NAT', async () => {
    const l = lab!;
    const r = await fillScenario(l, 'timewait', { timewait: 3000, established: 1000 });
    expect(r.tcp).toEqual({ timewait: 3000, established: 1000, failed: 0 });
    const s = await labTableSummary(l);
    // A few TIME_WAIT tuples may be re-used by the NAT for later connections (kernel >= 6.x).
    expect(s.states['tcp TIME_WAIT']).toBeGreaterThan(2900);
    expect(s.states['tcp ESTABLISHED']).toBe(1000);
    expect(natCount(s, l)).toBeGreaterThan(3900);
    const est = await tcpTimeouts(l, l.ports.tcpIdle);
    expect(est.every((e) => e.state === 'ESTABLISHED' && e.timeout > 431_000)).toBe(true);
  });

  it('dead-established: ESTABLISHED entries of dead NATed connections, ASSURED, idle 25 h by their timers', async () => {
    const l = lab!;
    const r = await fillScenario(l, 'dead-established', { dead: 2000, deadIdleSeconds: 90_000 });
    expect(r.dead).toEqual({ entries: 2000, idleSeconds: 90_000, remainingSeconds: 342_000, port: l.ports.tcpIdle });
    const dead = await tcpTimeouts(l, l.ports.tcpIdle);
    expect(dead).toHaveLength(2000);
    expect(dead.every((e) => e.state === 'ESTABLISHED' && e.timeout > 341_900 && e.timeout <= 342_000)).toBe(true);
    const s = await labTableSummary(l);
    expect(s.assured).toBeGreaterThanOrEqual(2000);
    expect(natCount(s, l)).toBeGreaterThanOrEqual(2000);
  });

  it('idle vs active: lowering the timeout does not shorten idle entries, active ones pick it up', async () => {
    const l = lab!;
    const keep = await startKeepalive(l, { count: 20, intervalMs: 300, durationMs: 60_000 });
    try {
      await fillScenario(l, 'idle-established', { established: 200 });
      await gatewayExec(l, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_tcp_timeout_established=600']);
      await new Promise((res) => setTimeout(res, 1200));
      const idle = await tcpTimeouts(l, l.ports.tcpIdle);
      const active = await tcpTimeouts(l, l.ports.tcpEcho);
      expect(idle).toHaveLength(200);
      expect(active.length).toBeGreaterThanOrEqual(20);
      expect(Math.min(...idle.map((e) => e.timeout))).toBeGreaterThan(431_000); // old timer kept
      expect(Math.max(...active.filter((e) => e.state === 'ESTABLISHED').map((e) => e.timeout))).toBeLessThanOrEqual(600);
    } finally {
      await gatewayExec(l, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_tcp_timeout_established=432000']);
      await keep.stop();
    }
  });

  it('port-exhaustion: one external ip to one server ip:port stops at 64,512 with insert_failed', async () => {
    const l = lab!;
    const r = await fillScenario(l, 'port-exhaustion', { portExhaustionExtra: 2000 });
    const pe = r.portExhaustion!;
    expect(pe.externalAddress).toBe(l.externalAddress);
    expect(r.delta.insertFailed).toBeGreaterThanOrEqual(2000);
    const s = await labTableSummary(l);
    expect(s.portUse[0]).toEqual([`${pe.dst}:${pe.dport}/udp`, 64_512]);
    expect(natCount(s, l)).toBe(64_512);
    // Many clients: every client IP holds its share of the port space.
    for (const ip of l.clientIps) expect(s.sources.find(([src]) => src === ip)?.[1]).toBe(64_512 / l.clientIps.length);
  });

  it('healthy: a modest mix, no drops', async () => {
    const l = lab!;
    const r = await fillScenario(l, 'healthy');
    expect(r.delta.drop).toBe(0);
    expect(r.after.count).toBeGreaterThan(600);
    expect(r.after.count).toBeLessThan(1000);
    const s = await labTableSummary(l);
    expect(s.states['tcp ESTABLISHED']).toBeGreaterThan(100);
    expect(s.states['tcp TIME_WAIT']).toBeGreaterThan(50);
    expect(s.states.udp).toBeGreaterThan(400);
    expect(s.unreplied).toBeGreaterThan(0);
  });
});
