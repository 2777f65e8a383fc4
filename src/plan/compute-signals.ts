/** What the findings say about the gateway, as the plan needs it. */
import { isSerious, type Finding, type FindingId, type GatewayFacts } from '../core/model.js';

/** Plan steps act on critical and warning findings; info findings are advice only. */
export function activeFinding(findings: readonly Finding[], id: FindingId): Finding | undefined {
  return findings.find((f) => f.id === id && isSerious(f.severity));
}

export function activeFindings(findings: readonly Finding[], id: FindingId): Finding[] {
  return findings.filter((f) => f.id === id && isSerious(f.severity));
}

/** The table is high/saturated, or was full within the last hour. */
export function underPressure(findings: readonly Finding[]): boolean {
  return (
    activeFinding(findings, 'table-saturated') !== undefined ||
    activeFinding(findings, 'table-high') !== undefined ||
    findings.some((f) => f.id === 'drops-observed' && f.severity === 'critical')
  );
}

export function canWrite(facts: GatewayFacts, key: string): boolean {
  return facts.writable[key] === true;
}

/** Hash size: via the module parameter or nf_conntrack_buckets, and only where max is writable too (init namespace). */
export function canWriteHashsize(facts: GatewayFacts): boolean {
  return (canWrite(facts, 'hashsize') || canWrite(facts, 'nf_conntrack_buckets')) && canWrite(facts, 'nf_conntrack_max');
}
