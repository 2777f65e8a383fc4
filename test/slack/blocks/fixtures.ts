/**
 * Check reports for renderer tests: one realistic (numbers from the lab gateways in
 * design.md: a 262,144-entry table filled with assured entries), and generators for
 * huge and hostile ones. Every report goes through checkReportSchema, so a change of
 * the shared model breaks these fixtures loudly instead of silently.
 */
import { checkReportSchema, type CheckReport, type Finding, type PlanStep } from '../../../src/core/model.js';
import { seededRandom } from '../../support/seeded-random.js';

export const PLAN_ID = '3f6c1d2e-8a4b-4c7d-9e1f-2a3b4c5d6e7f';

export function realisticReport(): CheckReport {
  return checkReportSchema.parse({
    gateway: 'gw-3',
    checkedAt: '2026-11-24T14:05:12.000Z',
    conntrack: { count: 262_100, max: 262_144, buckets: 65_536, percent: 99.98 },
    drops: { drop: 18_344, earlyDrop: 2_210, insertFailed: 7, tableFullMessages: 42, lastTableFullAt: '2026-11-24T14:04:58.000Z' },
    topSources: [
      { key: '10.20.0.15', count: 181_220 },
      { key: '10.20.0.16', count: 20_114 },
      { key: '10.20.1.7', count: 9_870 },
      { key: '192.168.50.2', count: 880 },
    ],
    topDestinations: [
      { key: '203.0.113.10', count: 150_002 },
      { key: '198.51.100.53', count: 30_441 },
      { key: '2001:db8::53', count: 1_204 },
    ],
    states: { 'tcp ESTABLISHED': 190_440, 'tcp TIME_WAIT': 40_120, udp: 25_000, 'tcp SYN_SENT': 6_000, icmp: 540 },
    timeouts: {
      nf_conntrack_tcp_timeout_established: 432_000,
      nf_conntrack_tcp_timeout_time_wait: 120,
      nf_conntrack_udp_timeout: 30,
      nf_conntrack_udp_timeout_stream: 120,
      nf_conntrack_generic_timeout: 600,
    },
    facts: {
      collectedAt: '2026-11-24T14:05:11.000Z',
      kernelRelease: '6.18.0-lab',
      netnsInode: 4026532177,
      count: 262_100,
      max: 262_144,
      buckets: 65_536,
      hashsize: 65_536,
      expectMax: 1024,
      timeouts: { nf_conntrack_tcp_timeout_established: 432_000 },
      stats: { found: 0, invalid: 12, insert: 0, insert_failed: 7, drop: 18_344, early_drop: 2_210, error: 0, search_restart: 3, clash_resolve: 0, chaintoolong: 0 },
      writable: { nf_conntrack_max: false, hashsize: false, nf_conntrack_tcp_timeout_established: true },
      memTotalKb: 8_000_000,
      memAvailableKb: 6_000_000,
      entrySlabBytes: 320,
      localPortRange: [32768, 60999],
      natRules: [{ backend: 'iptables', kind: 'masquerade', outInterface: 'eth0', toAddresses: [], rule: '-A POSTROUTING -o eth0 -j MASQUERADE' }],
      externalAddresses: ['203.0.113.1'],
      firewallBackend: 'iptables',
      kernelLog: [{ at: '2026-11-24T14:04:58.000Z', kind: 'table-full', netns: 4026532177, suppressed: null, line: 'nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet' }],
      persistence: { sysctlFiles: [], modprobeFiles: [] },
      hasConntrackTool: true,
      managedNotrackRules: [],
    },
    table: {
      entries: 262_100,
      unparsed: 0,
      unparsedSample: [],
      byProto: { tcp: 236_560, udp: 25_000, icmp: 540 },
      states: { 'tcp ESTABLISHED': 190_440 },
      assured: 250_000,
      unreplied: 6_100,
      topSources: [],
      topDestinations: [],
      topPortUse: [],
      approximate: false,
      establishedIdle: { timeoutUsed: 432_000, total: 190_440, idleAtLeast: { '3600': 150_000 } },
      durationMs: 1150,
    },
    findings: [
      {
        id: 'drops-observed',
        severity: 'critical',
        title: 'Packets are being dropped: the table is full',
        evidence: { drop: 18_344, early_drop: 2_210, 'table full messages': 42, 'last message': '2026-11-24T14:04:58Z' },
        detail: 'New connections through gw-3 fail while the table is full. The kernel logged "table full, dropping packet" 42 times.',
      },
      {
        id: 'table-saturated',
        severity: 'critical',
        title: 'conntrack table 99.98% full',
        evidence: { count: 262_100, max: 262_144, 'entries per bucket': 4.0 },
      },
      {
        id: 'established-timeout-long',
        severity: 'warning',
        title: 'ESTABLISHED timeout is 5 days; 150,000 entries idle for over an hour',
        evidence: { timeout: 432_000, 'idle >= 1h': 150_000, ratio: 0.7877 },
        detail: 'Lowering the timeout does not shorten existing entries; idle ones need a targeted delete.',
      },
      {
        id: 'heavy-hitter',
        severity: 'warning',
        title: '10.20.0.15 holds 69% of the table',
        evidence: { source: '10.20.0.15', entries: 181_220, share: '69.1%' },
      },
      { id: 'management-ssh-tracked', severity: 'info', title: 'Management SSH is tracked', evidence: { port: 22 }, detail: 'A full table refuses new SSH connections to the gateway itself.' },
    ],
    plan: {
      steps: [
        { id: 's1', kind: 'sysctl', key: 'nf_conntrack_tcp_timeout_established', current: '432000', proposed: '7200', why: 'Dead ESTABLISHED entries stay for 5 days.', writable: true, optional: false, params: { value: 7200, current: 432_000 } },
        {
          id: 's2',
          kind: 'sysctl',
          key: 'nf_conntrack_max',
          current: '262144',
          proposed: '524288',
          why: 'Headroom for peaks; costs about 80 MB at 320 bytes per entry.',
          writable: false,
          whereToChange: 'the host (init namespace): sysctl -w net.netfilter.nf_conntrack_max=524288',
          optional: false,
          params: { value: 524_288, current: 262_144 },
        },
        { id: 's3', kind: 'persist-sysctl', key: '/etc/sysctl.d/90-conntrack.conf', current: '(absent)', proposed: 'nf_conntrack_tcp_timeout_established=7200', why: 'Survive a reboot.', writable: true, optional: false, params: { path: '/etc/sysctl.d/90-conntrack-ops.conf', values: { nf_conntrack_tcp_timeout_established: 7200 }, content: 'net.netfilter.nf_conntrack_tcp_timeout_established = 7200\n', keys: 'nf_conntrack_tcp_timeout_established' } },
        { id: 's4', kind: 'notrack-management', key: 'NOTRACK tcp dport 22 on mgmt0', current: 'tracked', proposed: 'untracked', why: 'Keeps SSH usable when the table is full.', writable: true, optional: true, params: { backend: 'iptables', family: 'ipv4', source: '198.51.100.10', port: 22, tag: 'conntrack-ops:mgmt-ssh' } },
        { id: 's5', kind: 'delete-idle-entries', key: 'ESTABLISHED idle > 7200 s', current: '150000 entries', proposed: 'deleted', why: 'Frees the table now.', writable: true, optional: true, params: { proto: 'tcp', state: 'ESTABLISHED', idleAtLeastSeconds: 7200, timeoutUsed: 432_000, remainingAtMost: 424_800, expected: 150_000 } },
      ],
      notes: ['Memory estimate uses 320 bytes per entry (slabinfo).', 'Inside a network namespace nf_conntrack_max is read-only.'],
    },
    timings: { connect: 290, dump: 1150 },
  });
}

/** Deterministic, so "random" reports are reproducible. */
export const rng = seededRandom;

/** Strings that hurt: emoji (surrogates), ZWJ families, flags, combining marks, mrkdwn and Slack markup. */
export const NASTY = [
  '😀',
  '👨‍👩‍👧‍👦',
  '🇩🇪',
  'é',
  'a\u0301',
  '<!channel>',
  '<@U123|x>',
  '&amp;',
  '*bold*',
  '`tick`',
  '```',
  '_i_',
  '~s~',
  '\n',
  '\t',
  '|',
  '>',
  '<',
  '&',
  '中文',
  'ﷺ',
  '\u200b',
];

/** 64 KiB of hostile text to slice from: generating 20 million characters one at a time is too slow. */
let corpus: string | null = null;
function nastyCorpus(): string {
  if (corpus !== null) return corpus;
  const rand = rng(42);
  const parts: string[] = [];
  let n = 0;
  while (n < 65_536) {
    const piece = rand() < 0.5 ? (NASTY[Math.floor(rand() * NASTY.length)] ?? '') : 'abcdefghijklmnopqrstuvwxyz'.slice(0, 1 + Math.floor(rand() * 8));
    parts.push(piece);
    n += piece.length;
  }
  corpus = parts.join('');
  return corpus;
}

function isLow(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** `length` (about) characters of hostile text, never starting or ending inside a surrogate pair. */
export function nastyString(length: number, rand: () => number): string {
  const c = nastyCorpus();
  let out = '';
  while (out.length < length) {
    const want = Math.min(length - out.length, c.length - 2);
    let start = Math.floor(rand() * (c.length - want));
    if (isLow(c.charCodeAt(start))) start += 1;
    let end = Math.min(c.length, start + want);
    if (isLow(c.charCodeAt(end))) end += 1;
    out += c.slice(start, end);
  }
  return out;
}

const SEVERITIES = ['critical', 'warning', 'info', 'ok'] as const;
const IDS = ['table-saturated', 'drops-observed', 'heavy-hitter', 'timewait-pile', 'hashsize-ratio', 'port-exhaustion-risk'] as const;

export interface HugeOptions {
  findings?: number;
  steps?: number;
  talkers?: number;
  stringLength?: number;
  seed?: number;
  notes?: number;
  evidence?: number;
}

/** A report far beyond any limit: thousands of items, 10,000-character hostile strings. */
export function hugeReport(opts: HugeOptions = {}): CheckReport {
  const rand = rng(opts.seed ?? 1);
  const len = opts.stringLength ?? 10_000;
  const str = (n = len): string => nastyString(n, rand);
  const base = realisticReport();
  const findings: Finding[] = Array.from({ length: opts.findings ?? 1000 }, (_, i) => ({
    id: IDS[i % IDS.length] ?? 'table-high',
    severity: SEVERITIES[Math.floor(rand() * SEVERITIES.length)] ?? 'info',
    title: `#${i} ${str()}`,
    evidence: Object.fromEntries(Array.from({ length: opts.evidence ?? 30 }, (_, k) => [`${str(200)} ${k}`, k % 2 === 0 ? rand() * 1e9 : str(500)])),
    detail: str(),
  }));
  const steps: PlanStep[] = Array.from({ length: opts.steps ?? 1000 }, (_, i) => ({
    id: `s${i}`,
    kind: 'sysctl',
    key: `key-${i}-${str(300)}`,
    current: str(),
    proposed: str(),
    why: str(),
    writable: rand() < 0.5,
    whereToChange: rand() < 0.5 ? str() : undefined,
    optional: rand() < 0.3,
    params: { value: i, current: i },
  }));
  const talkers = Array.from({ length: opts.talkers ?? 1000 }, (_, i) => ({ key: `${str(100)}-${i}`, count: Math.floor(rand() * 1e6) }));
  return checkReportSchema.parse({
    ...base,
    gateway: `gw-${str(300)}`,
    topSources: talkers,
    topDestinations: talkers.slice().reverse(),
    states: Object.fromEntries(talkers.slice(0, 200).map((t) => [t.key, t.count])),
    timeouts: Object.fromEntries(talkers.slice(0, 200).map((t) => [`nf_conntrack_${t.key}`, t.count])),
    facts: { ...base.facts, kernelRelease: str() },
    drops: { ...base.drops, lastTableFullAt: str(50) },
    findings,
    plan: { steps, notes: Array.from({ length: opts.notes ?? 50 }, () => str()) },
  });
}
