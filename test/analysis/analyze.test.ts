import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analysis/analyze.js';
import { buildContext } from '../../src/analysis/context.js';
import { withoutForeignTableFull } from '../../src/check/run-check.js';
import type { Finding, FindingId } from '../../src/core/model.js';
import {
  LAB_NETNS,
  NETNS_WRITABLE,
  THRESHOLDS,
  makeFacts,
  makeTable,
  saturatedFacts,
  saturatedTable,
  tableFull,
} from '../support/facts-fixtures.js';

function find(findings: Finding[], id: FindingId): Finding {
  const f = findings.find((x) => x.id === id);
  if (!f) throw new Error(`no ${id} finding in: ${findings.map((x) => x.id).join(', ')}`);
  return f;
}

describe('analyze: healthy gateway', () => {
  const findings = analyze(makeFacts(), makeTable(), THRESHOLDS);

  it('reports table-healthy with the numbers', () => {
    const healthy = find(findings, 'table-healthy');
    expect(healthy.severity).toBe('ok');
    expect(healthy.title).toBe('Conntrack table healthy: 12,000 of 262,144 entries (4.6%), no drops');
    expect(healthy.evidence).toMatchObject({ count: 12_000, max: 262_144, percentFull: 4.6, drop: 0 });
  });

  it('has no critical or warning finding, only advice', () => {
    expect(findings.filter((f) => f.severity === 'critical' || f.severity === 'warning')).toEqual([]);
    expect(findings.map((f) => f.id).sort()).toEqual(['established-timeout-long', 'management-ssh-tracked', 'table-healthy']);
    expect(find(findings, 'established-timeout-long').severity).toBe('info');
  });
});

describe('analyze: saturated host', () => {
  const findings = analyze(saturatedFacts(), saturatedTable(), THRESHOLDS);

  it('sorts critical first and never reports healthy', () => {
    expect(findings[0]?.severity).toBe('critical');
    const ranks = findings.map((f) => ['critical', 'warning', 'info', 'ok'].indexOf(f.severity));
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    expect(findings.some((f) => f.id === 'table-healthy')).toBe(false);
  });

  it('table-saturated at 100%', () => {
    const f = find(findings, 'table-saturated');
    expect(f.severity).toBe('critical');
    expect(f.title).toBe('Conntrack table saturated: 262,144 of 262,144 entries (100.0%)');
    expect(f.evidence).toMatchObject({ count: 262_144, max: 262_144, percentFull: 100, free: 0 });
  });

  it('drops-observed counts table-full lines of this namespace by age', () => {
    const f = find(findings, 'drops-observed');
    expect(f.severity).toBe('critical');
    expect(f.evidence).toMatchObject({
      drop: 48_213,
      earlyDrop: 0,
      tableFullLines: 3,
      tableFullLast5Min: 2,
      tableFullLastHour: 3,
      lastTableFull: '2025-01-15T11:59:30.000Z',
      lastTableFullAgoSeconds: 30,
      suppressedLogLines: 120,
      otherNetnsTableFullLines: 1,
    });
    expect(f.title).toBe(
      'Conntrack drops: 48,213 dropped + 0 early-dropped since boot; "table full" 2x in 5 min, 3x in 1 h, last 2025-01-15T11:59:30.000Z',
    );
    expect(f.detail).toContain('4026532500');
  });

  it('established-timeout-long is a warning with idle evidence', () => {
    const f = find(findings, 'established-timeout-long');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe(
      'ESTABLISHED timeout is 5 d: 170,000 of 200,000 ESTABLISHED entries idle >= 1 h, 150,000 idle >= 24 h (64.8% of the table)',
    );
    expect(f.evidence).toMatchObject({ timeoutSeconds: 432_000, established: 200_000, 'idle>=3600s': 170_000, 'idle>=86400s': 150_000 });
  });

  it('management SSH tracked is a warning under pressure', () => {
    const f = find(findings, 'management-ssh-tracked');
    expect(f.severity).toBe('warning');
    expect(f.evidence).toMatchObject({ sshPort: 22, managementSource: 'unknown', percentFull: 100 });
  });

  it('buckets = max (kernel default) is not a hashsize problem', () => {
    expect(findings.some((f) => f.id === 'hashsize-ratio')).toBe(false);
  });

  it('management context from the inventory is used', () => {
    const withMgmt = analyze(saturatedFacts(), saturatedTable(), THRESHOLDS, { managementSource: '192.0.2.10', sshPort: 2222 });
    expect(find(withMgmt, 'management-ssh-tracked').evidence).toMatchObject({ sshPort: 2222, managementSource: '192.0.2.10' });
  });

  it('no management finding when our NOTRACK rule is in place', () => {
    const facts = saturatedFacts({ managedNotrackRules: ['-A PREROUTING -s 192.0.2.10/32 -p tcp --dport 22 -j CT --notrack'] });
    const out = analyze(facts, saturatedTable(), THRESHOLDS, { managementSource: '192.0.2.10' });
    expect(out.some((f) => f.id === 'management-ssh-tracked')).toBe(false);
  });
});

describe('analyze: table-high and thresholds', () => {
  it('warning between warnPercent and critPercent', () => {
    const findings = analyze(makeFacts({ count: 220_000 }), makeTable({ entries: 220_000 }), THRESHOLDS);
    const f = find(findings, 'table-high');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe('Conntrack table high: 220,000 of 262,144 entries (83.9%)');
    expect(f.evidence['free']).toBe(42_144);
    expect(findings.some((x) => x.id === 'table-saturated')).toBe(false);
  });

  it('respects per-gateway thresholds', () => {
    const findings = analyze(makeFacts({ count: 150_000 }), makeTable({ entries: 150_000 }), { ...THRESHOLDS, warnPercent: 50 });
    expect(find(findings, 'table-high').evidence['percentFull']).toBe(57.2);
  });
});

describe('analyze: saturated in a network namespace', () => {
  const facts = saturatedFacts({
    netnsInode: LAB_NETNS,
    writable: NETNS_WRITABLE,
    kernelLog: [tableFull('2025-01-15T11:59:00.000Z', LAB_NETNS), tableFull('2025-01-15T11:59:10.000Z', 4026531840)],
  });
  const findings = analyze(facts, saturatedTable(), THRESHOLDS);

  it('max-readonly says to raise it on the host', () => {
    const f = find(findings, 'max-readonly');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe(`nf_conntrack_max (262,144) is read-only here (network namespace ${LAB_NETNS}): raise it on the host`);
    expect(f.evidence).toMatchObject({ max: 262_144, netns: LAB_NETNS, bucketsWritable: 'no' });
    expect(f.detail).toContain('kube-proxy');
  });

  it('only counts this namespace\'s "table full" lines', () => {
    expect(find(findings, 'drops-observed').evidence).toMatchObject({ tableFullLines: 1, otherNetnsTableFullLines: 1 });
  });
});

describe('analyze: heavy hitter', () => {
  const table = makeTable({
    entries: 200_000,
    topSources: [
      { key: '10.1.2.3', count: 120_000 },
      { key: '10.1.2.4', count: 20_000 },
    ],
    sourceProfiles: [
      {
        source: '10.1.2.3',
        count: 120_000,
        states: { 'tcp SYN_SENT': 110_000, 'tcp ESTABLISHED': 10_000 },
        topDestinations: [{ key: '203.0.113.50', count: 115_000 }],
        natted: 120_000,
      },
    ],
  });

  it('names the source, its share, dominant state and top destination', () => {
    const findings = analyze(makeFacts({ count: 200_000 }), table, THRESHOLDS);
    const hitters = findings.filter((f) => f.id === 'heavy-hitter');
    expect(hitters).toHaveLength(1);
    const f = hitters[0]!;
    expect(f.severity).toBe('info');
    expect(f.title).toBe(
      'Heavy hitter 10.1.2.3: 120,000 entries (60.0% of the table), mostly tcp SYN_SENT (110,000), top destination 203.0.113.50 (115,000)',
    );
    expect(f.evidence).toMatchObject({
      source: '10.1.2.3',
      entries: 120_000,
      sharePercent: 60,
      dominantState: 'tcp SYN_SENT',
      dominantStateEntries: 110_000,
      topDestination: '203.0.113.50',
      topDestinationEntries: 115_000,
      nattedEntries: 120_000,
    });
    expect(f.detail).toContain('unanswered');
  });

  it('is a warning under pressure, and works without a per-source profile', () => {
    const findings = analyze(makeFacts({ count: 250_000 }), { ...table, sourceProfiles: undefined }, THRESHOLDS);
    const f = find(findings, 'heavy-hitter');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe('Heavy hitter 10.1.2.3: 120,000 entries (60.0% of the table)');
    expect(f.detail).toContain('no per-source breakdown');
  });
});

describe('analyze: NAT port exhaustion', () => {
  const table = makeTable({
    entries: 120_000,
    topPortUse: [
      { natSource: '198.51.100.7', dst: '203.0.113.9', dport: 443, proto: 'tcp', count: 64_512 },
      { natSource: '198.51.100.7', dst: '203.0.113.53', dport: 53, proto: 'udp', count: 40_000 },
      { natSource: '198.51.100.7', dst: '203.0.113.1', dport: 0, proto: 'icmp', count: 50_000 },
    ],
  });
  const findings = analyze(makeFacts({ count: 120_000, stats: { insert_failed: 9120 } }), table, THRESHOLDS);
  const ports = findings.filter((f) => f.id === 'port-exhaustion-risk');

  it('flags the tuple at 64,512 as exhausted and names the destination', () => {
    expect(ports).toHaveLength(2);
    const [top, second] = ports;
    expect(top?.severity).toBe('critical');
    expect(top?.title).toBe('NAT ports to 203.0.113.9:443/tcp exhausted: 64,512 of 64,512 source ports of 198.51.100.7 in use (100.0%)');
    expect(top?.evidence).toMatchObject({ destination: '203.0.113.9:443/tcp', entries: 64_512, usablePorts: 64_512, percentUsed: 100, insertFailed: 9120 });
    expect(top?.detail).toContain('insert_failed = 9,120');
    expect(second?.severity).toBe('warning');
    expect(second?.evidence['percentUsed']).toBe(62);
  });

  it('insert_failed alone is reported as drops-observed (warning)', () => {
    const f = find(findings, 'drops-observed');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe('Conntrack drops: 9,120 insert failures');
  });
});

describe('analyze: TIME_WAIT pile and hash size', () => {
  it('TIME_WAIT pile with the implied close rate', () => {
    const table = makeTable({ entries: 250_000, states: { 'tcp TIME_WAIT': 100_000, 'tcp ESTABLISHED': 150_000 } });
    const f = find(analyze(makeFacts({ count: 250_000 }), table, THRESHOLDS), 'timewait-pile');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe('TIME_WAIT pile: 100,000 entries (40.0%) at 2 min, ~833 closes/s');
    expect(f.evidence).toMatchObject({ timeWait: 100_000, timeWaitPercent: 40, timeWaitTimeout: 120, closesPerSecond: 833 });
  });

  it('buckets below max/4', () => {
    const facts = makeFacts({ buckets: 16_384, hashsize: 16_384, count: 200_000, stats: { chaintoolong: 3 } });
    const f = find(analyze(facts, makeTable({ entries: 200_000 }), THRESHOLDS), 'hashsize-ratio');
    expect(f.severity).toBe('warning');
    expect(f.title).toBe('Hash table small: 16,384 buckets for max 262,144 (1 per 16 entries), 32 entries per chain when full');
    expect(f.evidence).toMatchObject({ avgChainNow: 24.4, avgChainWhenFull: 32, chaintoolong: 3 });
  });

  it('buckets exactly max/4 are fine', () => {
    const facts = makeFacts({ buckets: 65_536 });
    expect(analyze(facts, makeTable(), THRESHOLDS).some((f) => f.id === 'hashsize-ratio')).toBe(false);
  });
});

describe('analyze: stale timers after a timeout was lowered', () => {
  it('reports entries still on the old timer even though the timeout is short', () => {
    const facts = saturatedFacts({ timeouts: { nf_conntrack_tcp_timeout_established: 3600 } });
    const table = saturatedTable({
      establishedIdle: { timeoutUsed: 3600, total: 200_000, idleAtLeast: {}, aboveTimeout: 150_000 },
    });
    const f = analyze(facts, table, THRESHOLDS).find((x) => x.id === 'established-timeout-long');
    expect(f?.severity).toBe('warning');
    expect(f?.title).toBe('ESTABLISHED timeout is 1 h, but 150,000 entries still run on older, longer timers (57.2% of the table)');
    expect(f?.evidence).toEqual({ timeoutSeconds: 3600, established: 200_000, staleTimers: 150_000 });
  });
});

describe('analyze: entries on the kernel short timer', () => {
  it('says how many ESTABLISHED entries are on the 300 s timer (maybe active) instead of calling them idle', () => {
    const table = makeTable({
      establishedIdle: { timeoutUsed: 432_000, total: 8000, idleAtLeast: { '3600': 500 }, shortTimer: 1200, shortTimerSeconds: 300 },
    });
    const f = analyze(saturatedFacts(), table, THRESHOLDS).find((x) => x.id === 'established-timeout-long');
    expect(f?.evidence['onShortTimer']).toBe(1200);
    expect(f?.detail).toContain("1,200 more are on the kernel's 5 min short timer");
  });
});

describe('"table full" lines of a reused namespace inode', () => {
  // NAT clash drops count in drop AND insert_failed; table-full drops in drop only.
  const line = tableFull(new Date(Date.now() - 60_000).toISOString());
  it('are not blamed on a gateway whose only drops were NAT clashes (no pressure from them)', () => {
    const facts = withoutForeignTableFull(makeFacts({ stats: { drop: 4096, insert_failed: 4096 }, kernelLog: [line] }));
    expect(facts.kernelLog).toEqual([]);
    expect(buildContext(facts, makeTable(), THRESHOLDS).pressure).toBe(false);
  });
  it('are kept when the gateway dropped more than its clashes explain', () => {
    const facts = withoutForeignTableFull(makeFacts({ stats: { drop: 5000, insert_failed: 4096 }, kernelLog: [line] }));
    expect(facts.kernelLog).toEqual([line]);
    expect(buildContext(facts, makeTable(), THRESHOLDS).pressure).toBe(true);
  });
});

describe('kernel-log lines from before this namespace existed', () => {
  it('are about an earlier namespace (its inode reused), whatever their netns tag says', () => {
    const created = Date.now() - 10 * 60_000;
    const before = tableFull(new Date(created - 30 * 60_000).toISOString(), LAB_NETNS);
    const after = tableFull(new Date(created + 60_000).toISOString(), LAB_NETNS);
    const facts = withoutForeignTableFull(
      makeFacts({ netnsInode: LAB_NETNS, netnsSince: new Date(created).toISOString(), stats: { drop: 100 }, kernelLog: [before, after] }),
    );
    expect(facts.kernelLog).toEqual([after]);
    // the initial namespace (netnsSince null) keeps its whole log
    expect(withoutForeignTableFull(makeFacts({ stats: { drop: 100 }, kernelLog: [tableFull(before.at), tableFull(after.at)] })).kernelLog).toHaveLength(2);
  });
});
