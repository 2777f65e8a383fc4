/**
 * Hand-built GatewayFacts / TableSummary for analysis and plan tests. The
 * defaults describe a healthy 16 GiB gateway on kernel 6.18 in the initial
 * network namespace (max = buckets = 262,144, kernel default timeouts).
 */
import { zeroStats } from '../../src/diagnostics/parsers/conntrack-stats.js';
import type { Thresholds } from '../../src/config/inventory.js';
import type { ConntrackStats, GatewayFacts, KernelLogEvent, TableSummary } from '../../src/core/model.js';
import { IDLE_THRESHOLDS } from '../../src/plan/compute.js';

export const COLLECTED_AT = '2025-01-15T12:00:00.000Z';
export const INIT_NETNS = 4026531840;
export const LAB_NETNS = 4026532177;
export const GIB_KB = 1024 * 1024;

export const THRESHOLDS: Thresholds = { warnPercent: 80, critPercent: 95, heavyHitterShare: 0.25 };

export const DEFAULT_TIMEOUTS: Record<string, number> = {
  nf_conntrack_tcp_timeout_established: 432_000,
  nf_conntrack_tcp_timeout_time_wait: 120,
  nf_conntrack_tcp_timeout_close_wait: 60,
  nf_conntrack_tcp_timeout_fin_wait: 120,
  nf_conntrack_tcp_timeout_syn_sent: 120,
  nf_conntrack_tcp_timeout_syn_recv: 60,
  nf_conntrack_tcp_timeout_last_ack: 30,
  nf_conntrack_tcp_timeout_close: 10,
  nf_conntrack_tcp_timeout_unacknowledged: 300,
  nf_conntrack_udp_timeout: 30,
  nf_conntrack_udp_timeout_stream: 120,
  nf_conntrack_icmp_timeout: 30,
  nf_conntrack_generic_timeout: 600,
};

const ZERO_STATS: ConntrackStats = zeroStats();

/** Every key writable: root in the initial namespace. */
export const HOST_WRITABLE: Record<string, boolean> = {
  nf_conntrack_max: true,
  nf_conntrack_buckets: true,
  hashsize: true,
  ...Object.fromEntries(Object.keys(DEFAULT_TIMEOUTS).map((k) => [k, true])),
};

/** Inside a network namespace: table size read-only, timeouts writable. */
export const NETNS_WRITABLE: Record<string, boolean> = {
  ...HOST_WRITABLE,
  nf_conntrack_max: false,
  nf_conntrack_buckets: false,
  hashsize: false,
};

export type FactsOverrides = Partial<Omit<GatewayFacts, 'stats' | 'timeouts' | 'writable' | 'persistence'>> & {
  stats?: Partial<ConntrackStats>;
  timeouts?: Record<string, number>;
  writable?: Record<string, boolean>;
  persistence?: Partial<GatewayFacts['persistence']>;
};

export function makeFacts(overrides: FactsOverrides = {}): GatewayFacts {
  const { stats, timeouts, writable, persistence, ...rest } = overrides;
  return {
    collectedAt: COLLECTED_AT,
    kernelRelease: '6.18.0-lab',
    netnsInode: INIT_NETNS,
    netnsSince: null,
    count: 12_000,
    max: 262_144,
    buckets: 262_144,
    hashsize: 262_144,
    expectMax: 4096,
    timeouts: { ...DEFAULT_TIMEOUTS, ...timeouts },
    stats: { ...ZERO_STATS, ...stats },
    writable: { ...HOST_WRITABLE, ...writable },
    memTotalKb: 16 * GIB_KB,
    memAvailableKb: 12 * GIB_KB,
    entrySlabBytes: 320,
    localPortRange: [32_768, 60_999],
    natRules: [
      { backend: 'iptables', kind: 'masquerade', outInterface: 'eth0', toAddresses: [], rule: '-A POSTROUTING -o eth0 -j MASQUERADE' },
    ],
    externalAddresses: ['198.51.100.7'],
    firewallBackend: 'iptables',
    kernelLog: [],
    persistence: { sysctlFiles: [], modprobeFiles: [], ...persistence },
    hasConntrackTool: true,
    managedNotrackRules: [],
    ...rest,
  };
}

/** idleAtLeast for every threshold; unspecified thresholds are 0. */
export function idleCounts(counts: Partial<Record<(typeof IDLE_THRESHOLDS)[number], number>>): Record<string, number> {
  return Object.fromEntries(IDLE_THRESHOLDS.map((t) => [String(t), counts[t] ?? 0]));
}

export function makeTable(overrides: Partial<TableSummary> = {}): TableSummary {
  return {
    entries: 12_000,
    unparsed: 0,
    unparsedSample: [],
    byProto: { tcp: 9000, udp: 3000 },
    states: { 'tcp ESTABLISHED': 8000, 'tcp TIME_WAIT': 1000, udp: 3000 },
    assured: 11_000,
    unreplied: 500,
    topSources: [
      { key: '10.0.0.11', count: 1500 },
      { key: '10.0.0.12', count: 1200 },
    ],
    topDestinations: [{ key: '203.0.113.80', count: 900 }],
    topPortUse: [{ natSource: '198.51.100.7', dst: '203.0.113.80', dport: 443, proto: 'tcp', count: 900 }],
    approximate: false,
    establishedIdle: { timeoutUsed: 432_000, total: 8000, idleAtLeast: idleCounts({ 300: 2000, 600: 1500, 1800: 900, 3600: 500, 7200: 200 }) },
    durationMs: 40,
    ...overrides,
  };
}

export function tableFull(at: string | null, netns: number | null = INIT_NETNS): KernelLogEvent {
  return {
    at,
    kind: 'table-full',
    netns,
    suppressed: null,
    line: netns === null ? 'nf_conntrack: table full, dropping packet' : `nf_conntrack: nf_conntrack: table full in netns ${netns}, dropping packet`,
  };
}

export function suppressed(at: string, n: number): KernelLogEvent {
  return { at, kind: 'suppressed', netns: null, suppressed: n, line: `net_ratelimit: ${n} callbacks suppressed` };
}

/**
 * A saturated 16 GiB gateway: 262,144 / 262,144 entries, 48,213 drops, three
 * "table full" lines in the last hour (two in the last 5 min), and 150,000
 * ESTABLISHED entries idle >= 24 h under the 5-day timeout.
 */
export function saturatedFacts(overrides: FactsOverrides = {}): GatewayFacts {
  return makeFacts({
    count: 262_144,
    stats: { drop: 48_213, insert: 9_000_000 },
    kernelLog: [
      tableFull('2025-01-15T11:30:00.000Z'),
      tableFull('2025-01-15T11:58:00.000Z'),
      suppressed('2025-01-15T11:58:01.000Z', 120),
      tableFull('2025-01-15T11:59:30.000Z'),
      tableFull('2025-01-15T11:59:40.000Z', 4026532500),
    ],
    ...overrides,
  });
}

export function saturatedTable(overrides: Partial<TableSummary> = {}): TableSummary {
  return makeTable({
    entries: 262_144,
    byProto: { tcp: 230_000, udp: 32_144 },
    states: { 'tcp ESTABLISHED': 200_000, 'tcp TIME_WAIT': 30_000, udp: 32_144 },
    assured: 250_000,
    unreplied: 9000,
    topSources: [
      { key: '10.0.0.5', count: 40_000 },
      { key: '10.0.0.6', count: 30_000 },
    ],
    topDestinations: [{ key: '203.0.113.80', count: 60_000 }],
    topPortUse: [{ natSource: '198.51.100.7', dst: '203.0.113.80', dport: 443, proto: 'tcp', count: 20_000 }],
    establishedIdle: {
      timeoutUsed: 432_000,
      total: 200_000,
      idleAtLeast: idleCounts({ 300: 190_000, 600: 185_000, 1800: 175_000, 3600: 170_000, 7200: 165_000, 21_600: 160_000, 86_400: 150_000 }),
    },
    ...overrides,
  });
}
