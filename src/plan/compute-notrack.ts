/**
 * NOTRACK steps (optional): exempt management SSH, or a heavy flow that is
 * not NATed, from connection tracking in the raw table of the firewall the
 * gateway uses. NOTRACK'd packets skip NAT too, so NATed traffic is never
 * exempted; when that cannot be told, nothing is proposed.
 */
import type { Finding, GatewayFacts, PlanStep, TableSummary } from '../core/model.js';
import { fmtInt, fmtPct, ratio } from '../analysis/format.js';
import { DEFAULT_SSH_PORT } from '../analysis/findings/management-ssh.js';
import { FLOW_DESTINATION_SHARE, NOTRACK_FLOW_TAG, NOTRACK_MANAGEMENT_TAG } from './compute-constants.js';
import { canWrite } from './compute-signals.js';

export interface NotrackOptions {
  managementSource?: string;
  sshPort?: number;
}

export interface StepsAndNotes {
  steps: PlanStep[];
  notes: string[];
}

/** A per-source profile must cover this share of the source's entries before "not NATed" is trusted. */
export const PROFILE_COVERAGE = 0.9;

/** The nft table the bot owns for its NOTRACK rules (chains prerouting/output at priority raw). */
export const NFT_TABLE = 'inet conntrack_ops';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(\/([12]?\d|3[0-2]))?$/;
const IPV6 = /^[0-9a-fA-F:]*:[0-9a-fA-F:.]*(\/(\d{1,2}|1[01]\d|12[0-8]))?$/;

export function addressFamily(address: string): 'ipv4' | 'ipv6' | null {
  if (IPV4.test(address)) return 'ipv4';
  if (IPV6.test(address)) return 'ipv6';
  return null;
}

type Chain = 'PREROUTING' | 'OUTPUT';
interface Match {
  chain: Chain;
  saddr?: string;
  daddr?: string;
  proto?: 'tcp';
  sport?: number;
  dport?: number;
}

function iptablesRule(family: 'ipv4' | 'ipv6', m: Match, tag: string): string {
  const bin = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const parts = [bin, '-t raw -I', m.chain];
  if (m.saddr) parts.push('-s', m.saddr);
  if (m.daddr) parts.push('-d', m.daddr);
  if (m.proto) parts.push('-p', m.proto);
  if (m.sport !== undefined) parts.push('--sport', String(m.sport));
  if (m.dport !== undefined) parts.push('--dport', String(m.dport));
  parts.push('-m comment --comment', tag, '-j CT --notrack');
  return parts.join(' ');
}

function nftRule(family: 'ipv4' | 'ipv6', m: Match, tag: string): string {
  const ip = family === 'ipv4' ? 'ip' : 'ip6';
  const parts = ['nft add rule', NFT_TABLE, m.chain.toLowerCase()];
  if (m.saddr) parts.push(ip, 'saddr', m.saddr);
  if (m.daddr) parts.push(ip, 'daddr', m.daddr);
  if (m.proto && m.sport !== undefined) parts.push(m.proto, 'sport', String(m.sport));
  if (m.proto && m.dport !== undefined) parts.push(m.proto, 'dport', String(m.dport));
  parts.push('notrack comment', `"${tag}"`);
  return parts.join(' ');
}

function rules(backend: 'iptables' | 'nft', family: 'ipv4' | 'ipv6', matches: Match[], tag: string): string[] {
  return matches.map((m) => (backend === 'nft' ? nftRule(family, m, tag) : iptablesRule(family, m, tag)));
}

const NFT_SETUP =
  `nft add table ${NFT_TABLE}; ` +
  `nft add chain ${NFT_TABLE} prerouting '{ type filter hook prerouting priority raw; policy accept; }'; ` +
  `nft add chain ${NFT_TABLE} output '{ type filter hook output priority raw; policy accept; }'`;

function untrackedAccept(backend: 'iptables' | 'nft'): string {
  return backend === 'nft' ? '`ct state untracked accept`' : '`-m conntrack --ctstate UNTRACKED -j ACCEPT`';
}

/** Root in this namespace: the session could write a namespaced sysctl. */
function rootHere(facts: GatewayFacts): boolean {
  return canWrite(facts, 'nf_conntrack_tcp_timeout_established');
}

export function managementNotrack(facts: GatewayFacts, finding: Finding | undefined, opts: NotrackOptions): StepsAndNotes {
  if (!finding) return { steps: [], notes: [] };
  const backend = facts.firewallBackend;
  const fromFinding = finding.evidence['managementSource'];
  const source = opts.managementSource ?? (typeof fromFinding === 'string' && fromFinding !== 'unknown' ? fromFinding : undefined);
  if (backend === 'none') {
    return { steps: [], notes: ['Management SSH is tracked, but no iptables/nft ruleset was found to add a NOTRACK rule to: not proposed.'] };
  }
  if (source === undefined) {
    return {
      steps: [],
      notes: ['Management SSH is tracked; NOTRACK for it is not proposed because the management source address is unknown (set managementSource in the inventory).'],
    };
  }
  const family = addressFamily(source);
  if (family === null) {
    return { steps: [], notes: [`managementSource "${source}" is not an IP address or prefix: NOTRACK for management SSH not proposed.`] };
  }
  const port = opts.sshPort ?? DEFAULT_SSH_PORT;
  const matches: Match[] = [
    { chain: 'PREROUTING', saddr: source, proto: 'tcp', dport: port },
    { chain: 'OUTPUT', daddr: source, proto: 'tcp', sport: port },
  ];
  const [ruleIn, ruleOut] = rules(backend, family, matches, NOTRACK_MANAGEMENT_TAG);
  const step: PlanStep = {
    id: 'notrack-management',
    kind: 'notrack-management',
    key: `management SSH ${source} -> :${port}/tcp (${backend})`,
    current: 'tracked',
    proposed: `${ruleIn}\n${ruleOut}`,
    why:
      `When the table is full of assured entries the gateway refuses new SSH connections, the bot's included; an open session keeps working. ` +
      `Exempting ${source} -> port ${port} and its replies keeps the gateway reachable. Safe for NAT: this traffic ends at the gateway's own sshd and is not NATed ` +
      `(NOTRACK'd packets skip NAT too, so NATed traffic is never exempted). Untracked packets do not match ct state rules: if the filter accepts SSH only as ` +
      `NEW/ESTABLISHED, first add ${untrackedAccept(backend)} for this flow or the change locks you out.`,
    ...notrackStepCommon(facts, backend, { family, source, port, tag: NOTRACK_MANAGEMENT_TAG, ruleIn: ruleIn ?? '', ruleOut: ruleOut ?? '' }),
  };
  return { steps: [step], notes: [] };
}

/** What every NOTRACK step shares: optional, writable only as root here, nft setup with nft. */
function notrackStepCommon(
  facts: GatewayFacts,
  backend: 'iptables' | 'nft',
  params: Record<string, string | number>,
): Pick<PlanStep, 'writable' | 'whereToChange' | 'optional' | 'params'> {
  const writable = rootHere(facts);
  return {
    writable,
    ...(writable ? {} : { whereToChange: "root in the gateway's network namespace (raw table rules need CAP_NET_ADMIN)" }),
    optional: true,
    params: { backend, ...params, ...(backend === 'nft' ? { setup: NFT_SETUP, table: NFT_TABLE } : {}) },
  };
}

/** NOTRACK for heavy flows that are demonstrably not NATed; notes for the others. */
export function flowNotrack(facts: GatewayFacts, table: TableSummary, heavy: readonly Finding[]): StepsAndNotes {
  const steps: PlanStep[] = [];
  const notes: string[] = [];
  const backend = facts.firewallBackend;
  for (const finding of heavy) {
    const source = String(finding.evidence['source'] ?? '');
    const profile = table.sourceProfiles?.find((p) => p.source === source);
    if (!profile) {
      notes.push(`Cannot tell whether heavy hitter ${source}'s traffic is NATed (no per-source breakdown): NOTRACK not proposed for it.`);
      continue;
    }
    const heavyCount = Number(finding.evidence['entries'] ?? profile.count);
    if (profile.count < PROFILE_COVERAGE * heavyCount) {
      notes.push(
        `Heavy hitter ${source}: its profile covers only ${fmtInt(profile.count)} of ${fmtInt(heavyCount)} entries, too few to be sure none is NATed: NOTRACK not proposed.`,
      );
      continue;
    }
    if (profile.natted > 0) {
      notes.push(
        `Heavy hitter ${source}: ${fmtInt(profile.natted)} of ${fmtInt(profile.count)} entries are NATed; NOTRACK would bypass NAT and break them, so it is not proposed. Fix the source instead.`,
      );
      continue;
    }
    const dest = profile.topDestinations[0];
    if (!dest || ratio(dest.count, profile.count) < FLOW_DESTINATION_SHARE) {
      notes.push(`Heavy hitter ${source} is not NATed but spreads over many destinations: no single flow to exempt.`);
      continue;
    }
    const family = addressFamily(source);
    if (family === null || addressFamily(dest.key) !== family) {
      notes.push(`Heavy hitter ${source} -> ${dest.key}: not a pair of IP addresses of one family, NOTRACK not proposed.`);
      continue;
    }
    if (backend === 'none') {
      notes.push(`Heavy flow ${source} <-> ${dest.key} is not NATed, but no iptables/nft ruleset was found: NOTRACK not proposed.`);
      continue;
    }
    const matches: Match[] = (['PREROUTING', 'OUTPUT'] as const).flatMap((chain) => [
      { chain, saddr: source, daddr: dest.key },
      { chain, saddr: dest.key, daddr: source },
    ]);
    const ruleList = rules(backend, family, matches, NOTRACK_FLOW_TAG);
    steps.push({
      id: `notrack-flow-${steps.length + 1}`,
      kind: 'notrack-flow',
      key: `flow ${source} <-> ${dest.key} (${backend})`,
      current: `tracked: ${dest.count} entries`,
      proposed: ruleList.join('\n'),
      why:
        `${source} owns ${fmtInt(profile.count)} entries (${fmtPct(ratio(profile.count, table.entries))} of the table), ${fmtInt(dest.count)} of them to ${dest.key}, ` +
        `and none of its entries is NATed, so exempting this pair in both directions (arriving and locally generated packets) stops it filling the table without touching NAT. ` +
        `Existing entries expire on their timers. Untracked packets do not match ct state rules: make sure the filter accepts them (${untrackedAccept(backend)}).`,
      ...notrackStepCommon(facts, backend, { family, source, destination: dest.key, tag: NOTRACK_FLOW_TAG, rules: ruleList.join('\n') }),
    });
  }
  return { steps, notes };
}
