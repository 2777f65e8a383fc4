/**
 * drops-observed: the cumulative drop counters (since boot, or since the
 * namespace was created) and the kernel's "table full" lines with their times.
 */
import type { Finding, Severity } from '../../core/model.js';
import { tableWasFull, type AnalysisContext } from '../context.js';
import { INIT_NET_INODE } from '../../diagnostics/parsers/system.js';
import { fmtInt } from '../format.js';

/** The counters start with the namespace: boot for the initial one. */
function countersSince(facts: AnalysisContext['facts']): string {
  if (facts.netnsInode === null || facts.netnsInode === INIT_NET_INODE) return 'since boot';
  return facts.netnsSince ? `since this network namespace was created (${facts.netnsSince})` : 'since this network namespace was created';
}

export function dropFindings(ctx: AnalysisContext): Finding[] {
  const { facts, tableFull, thresholds, fill } = ctx;
  const { drop, early_drop: earlyDrop, insert_failed: insertFailed } = facts.stats;
  if (drop === 0 && earlyDrop === 0 && insertFailed === 0 && tableFull.total === 0) return [];

  const wasFull = tableWasFull(facts, tableFull);
  let severity: Severity = 'warning';
  if (tableFull.lastHour > 0 || ((drop > 0 || earlyDrop > 0) && fill * 100 >= thresholds.critPercent)) severity = 'critical';

  const parts: string[] = [];
  if (drop > 0 || earlyDrop > 0) parts.push(`${fmtInt(drop)} dropped + ${fmtInt(earlyDrop)} early-dropped ${countersSince(facts)}`);
  if (insertFailed > 0) parts.push(`${fmtInt(insertFailed)} insert failures`);
  if (tableFull.total > 0) {
    parts.push(
      `"table full" ${tableFull.last5Min}x in 5 min, ${tableFull.lastHour}x in 1 h, last ${tableFull.lastSeen ?? 'at an unknown time'}`,
    );
  }

  const detail: string[] = [];
  if (wasFull) {
    detail.push('early_drop, and drop beyond insert_failed, rise only when the table is full: demand has exceeded nf_conntrack_max.');
  }
  if (insertFailed > 0) {
    detail.push('insert_failed rises when a new entry clashes or NAT finds no free source port (see port exhaustion); such packets count in drop too.');
  }
  if (tableFull.total > 0) {
    detail.push('The kernel rate-limits these lines (about 10 per burst): counters give the volume, the log the timing.');
  }
  if (tableFull.otherNetns > 0) {
    detail.push(`${tableFull.otherNetns} more "table full" lines name other network namespaces (${tableFull.otherNetnsInodes.join(', ')}), not this table.`);
  }

  return [
    {
      id: 'drops-observed',
      severity,
      title: `Conntrack drops: ${parts.join('; ')}`,
      evidence: {
        drop,
        earlyDrop,
        insertFailed,
        tableFullLines: tableFull.total,
        tableFullLast5Min: tableFull.last5Min,
        tableFullLastHour: tableFull.lastHour,
        lastTableFull: tableFull.lastSeen ?? 'none',
        ...(tableFull.lastSeenAgoSeconds !== null ? { lastTableFullAgoSeconds: tableFull.lastSeenAgoSeconds } : {}),
        suppressedLogLines: tableFull.suppressedCallbacks,
        otherNetnsTableFullLines: tableFull.otherNetns,
      },
      detail: detail.join(' '),
    },
  ];
}
