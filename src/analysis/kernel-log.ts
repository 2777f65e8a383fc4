/**
 * "table full" kernel log lines, restricted to this table's network namespace
 * and bucketed by age. The log is shared by every namespace on the host, and
 * rate-limited (~10 lines per burst): counters give the volume, the log gives
 * timing and proof.
 */
import type { GatewayFacts, KernelLogEvent } from '../core/model.js';

export interface TableFullSummary {
  /** Lines about this namespace (or lines that name no namespace, older kernels). */
  total: number;
  last5Min: number;
  lastHour: number;
  /** ISO time of the newest dated line, or null. */
  lastSeen: string | null;
  /** Seconds between lastSeen and collection time, or null. */
  lastSeenAgoSeconds: number | null;
  /** Lines naming another network namespace (a container or lab netns on the same host). */
  otherNetns: number;
  /** Other namespaces named by those lines. */
  otherNetnsInodes: number[];
  /** Sum of "net_ratelimit: N callbacks suppressed": lines the kernel did not print. */
  suppressedCallbacks: number;
}

function belongsHere(event: KernelLogEvent, netnsInode: number | null): boolean {
  return event.netns === null || netnsInode === null || event.netns === netnsInode;
}

function timeOf(event: KernelLogEvent): number | null {
  if (event.at === null) return null;
  const t = Date.parse(event.at);
  return Number.isNaN(t) ? null : t;
}

export function summarizeTableFull(facts: GatewayFacts): TableFullSummary {
  const now = Date.parse(facts.collectedAt);
  const full = facts.kernelLog.filter((e) => e.kind === 'table-full');
  const here = full.filter((e) => belongsHere(e, facts.netnsInode));
  const other = full.filter((e) => !belongsHere(e, facts.netnsInode));

  let last5Min = 0;
  let lastHour = 0;
  let newest: number | null = null;
  let newestIso: string | null = null;
  for (const event of here) {
    const t = timeOf(event);
    if (t === null) continue;
    if (newest === null || t > newest) {
      newest = t;
      newestIso = event.at;
    }
    if (Number.isNaN(now)) continue;
    const age = (now - t) / 1000;
    if (age <= 300) last5Min += 1;
    if (age <= 3600) lastHour += 1;
  }
  const suppressedCallbacks = facts.kernelLog
    .filter((e) => e.kind === 'suppressed')
    .reduce((sum, e) => sum + (e.suppressed ?? 0), 0);

  return {
    total: here.length,
    last5Min,
    lastHour,
    lastSeen: newestIso,
    lastSeenAgoSeconds: newest === null || Number.isNaN(now) ? null : Math.max(0, Math.round((now - newest) / 1000)),
    otherNetns: other.length,
    otherNetnsInodes: [...new Set(other.map((e) => e.netns).filter((n): n is number => n !== null))].sort((a, b) => a - b),
    suppressedCallbacks,
  };
}
