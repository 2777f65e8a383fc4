/**
 * NOTRACK steps (optional): exempt management SSH, or a heavy flow that is
 * not NATed, from connection tracking in the raw table of the firewall the
 * gateway uses. NOTRACK'd packets skip NAT too, so NATed traffic is never
 * exempted; when that cannot be told, nothing is proposed.
 */
import type { Finding, GatewayFacts, PlanStepOf, TableSummary } from '../core/model.js';
import { NFT_TABLE, NOTRACK_TAG } from '../core/managed.js';
import { addressFamily, flowRules, managementRules, type FirewallBackend, type NotrackRule } from '../core/notrack.js';
import { nftSetupText, notrackRuleText } from '../gateway/commands.js';
import { fmtInt, fmtPct, ratio } from '../analysis/format.js';
import { DEFAULT_SSH_PORT } from '../analysis/findings/management-ssh.js';
import { FLOW_DESTINATION_SHARE } from './compute-constants.js';
import { canWrite } from './compute-signals.js';

export interface NotrackOptions {
  managementSource?: string;
  sshPort?: number;
}

export interface StepsAndNotes<K extends 'notrack-management' | 'notrack-flow'> {
  steps: PlanStepOf<K>[];
  notes: string[];
}

/** A per-source profile must cover this share of the source's entries before "not NATed" is trusted. */
export const PROFILE_COVERAGE = 0.9;

/** The rules as the plan shows them, rendered by the same templates the apply runs. */
function rulesText(backend: FirewallBackend, rules: readonly NotrackRule[]): string[] {
  return rules.map((r) => notrackRuleText(backend, r));
}

function untrackedAccept(backend: 'iptables' | 'nft'): string {
  return backend === 'nft' ? '`ct state untracked accept`' : '`-m conntrack --ctstate UNTRACKED -j ACCEPT`';
}

/** Root in this namespace: the session could write a namespaced sysctl. */
function rootHere(facts: GatewayFacts): boolean {
  return canWrite(facts, 'nf_conntrack_tcp_timeout_established');
}

export function managementNotrack(facts: GatewayFacts, finding: Finding | undefined, opts: NotrackOptions): StepsAndNotes<'notrack-management'> {
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
  const [ruleIn = '', ruleOut = ''] = rulesText(backend, managementRules({ family, source, port }));
  const step: PlanStepOf<'notrack-management'> = {
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
    ...notrackStepCommon(facts),
    params: { backend, family, source, port, tag: NOTRACK_TAG.management, ruleIn, ruleOut, ...nftDisplay(backend) },
  };
  return { steps: [step], notes: [] };
}

/** What every NOTRACK step shares: optional, writable only as root here. */
function notrackStepCommon(facts: GatewayFacts): { writable: boolean; whereToChange?: string; optional: true } {
  const writable = rootHere(facts);
  return {
    writable,
    ...(writable ? {} : { whereToChange: "root in the gateway's network namespace (raw table rules need CAP_NET_ADMIN)" }),
    optional: true,
  };
}

/** With nft: the table the rules go to and the commands that create it, for people. */
function nftDisplay(backend: FirewallBackend): { setup?: string; table?: string } {
  return backend === 'nft' ? { setup: nftSetupText(), table: NFT_TABLE } : {};
}

/** NOTRACK for heavy flows that are demonstrably not NATed; notes for the others. */
export function flowNotrack(facts: GatewayFacts, table: TableSummary, heavy: readonly Finding[]): StepsAndNotes<'notrack-flow'> {
  const steps: PlanStepOf<'notrack-flow'>[] = [];
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
    const ruleList = rulesText(backend, flowRules({ family, source, destination: dest.key }));
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
      ...notrackStepCommon(facts),
      params: { backend, family, source, destination: dest.key, tag: NOTRACK_TAG.flow, rules: ruleList.join('\n'), ...nftDisplay(backend) },
    });
  }
  return { steps, notes };
}
