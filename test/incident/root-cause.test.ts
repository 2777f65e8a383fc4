/** The root cause line: built from the check's evidence, every number from the report. */
import { describe, expect, it } from 'vitest';
import { checkReportSchema, type CheckReport, type Finding } from '../../src/core/model.js';
import { rootCauseOf } from '../../src/incident/root-cause.js';
import { realisticReport } from '../slack/blocks/fixtures.js';

function withFindings(report: CheckReport, findings: Finding[], patch: Partial<CheckReport> = {}): CheckReport {
  return checkReportSchema.parse({ ...report, ...patch, findings });
}

const saturated: Finding = { id: 'table-saturated', severity: 'critical', title: 't', evidence: { count: 262_144, max: 262_144, percentFull: 100, free: 0, critPercent: 95 } };
const hitter: Finding = {
  id: 'heavy-hitter',
  severity: 'warning',
  title: 't',
  evidence: { source: '198.18.1.36', entries: 146_800, sharePercent: 56, dominantState: 'udp', dominantStateEntries: 146_000, topDestination: '198.19.1.2', topDestinationEntries: 146_000 },
};
const idle: Finding = {
  id: 'established-timeout-long',
  severity: 'warning',
  title: 't',
  evidence: { timeoutSeconds: 432_000, established: 20_400, 'idle>=3600s': 20_000, 'idle>=86400s': 20_000 },
};

describe('root cause', () => {
  it('mechanism + trigger + numbers + scope, as the issue\'s example reads', () => {
    const base = realisticReport();
    const report = withFindings(base, [saturated, hitter, idle], {
      conntrack: { count: 262_144, max: 262_144, buckets: 262_144, percent: 100 },
      drops: { drop: 4_101, earlyDrop: 0, insertFailed: 0, tableFullMessages: 50, lastTableFullAt: null },
      table: {
        ...base.table,
        topPortUse: [20000, 20001, 20002, 20003].map((dport) => ({ natSource: '198.19.1.1', dst: '198.19.1.2', dport, proto: 'udp', count: 36_000 })),
      },
    });
    expect(rootCauseOf(report)).toBe(
      'table at max 262,144: heavy hitter 198.18.1.36 holds 56 % of entries (UDP to 198.19.1.2:20000-20003), and 20,000 ESTABLISHED entries idle > 1 d under the 5 d timeout; 4,101 new-connection packets dropped for lack of room when checked',
    );
  });

  it('the heavy hitter\'s ports are those of its protocol (dead TCP entries to the same server are not UDP ports)', () => {
    const base = realisticReport();
    const report = withFindings(base, [saturated, hitter], {
      table: {
        ...base.table,
        topPortUse: [
          { natSource: '198.19.1.1', dst: '198.19.1.2', dport: 7001, proto: 'tcp', count: 20_000 },
          ...[20000, 20011].map((dport) => ({ natSource: '198.19.1.1', dst: '198.19.1.2', dport, proto: 'udp', count: 36_000 })),
        ],
      },
    });
    expect(rootCauseOf(report)).toContain('heavy hitter 198.18.1.36 holds 56 % of entries (UDP to 198.19.1.2:20000-20011)');
  });

  it('port exhaustion names the NAT address and the destination, not the table', () => {
    const report = withFindings(realisticReport(), [
      { id: 'port-exhaustion-risk', severity: 'critical', title: 't', evidence: { natSource: '198.19.1.1', destination: '198.19.1.2:20500/udp', entries: 64_512, usablePorts: 64_512, percentUsed: 100, insertFailed: 4096 } },
    ], { drops: { drop: 4096, earlyDrop: 0, insertFailed: 4096, tableFullMessages: 0, lastTableFullAt: null } });
    expect(rootCauseOf(report)).toBe('NAT source ports of 198.19.1.1 to 198.19.1.2:20500/udp exhausted (64,512 of 64,512)');
  });

  it('a healthy report has no root cause', () => {
    expect(rootCauseOf(withFindings(realisticReport(), [{ id: 'table-healthy', severity: 'ok', title: 't', evidence: {} }]))).toBeNull();
  });
});
