/**
 * established-timeout-long: the ESTABLISHED timeout (5 days by default) keeps a
 * dead connection's entry for days. Evidence from the table: idle time =
 * timeout - remaining, counted per threshold by the aggregator.
 */
import type { Finding } from '../../core/model.js';
import { establishedTimeout, idleAtLeast, type AnalysisContext } from '../context.js';
import { fmtDuration, fmtInt, fmtPct, pctNumber, ratio } from '../format.js';

/** Above this an ESTABLISHED timeout is "long" for a NAT gateway. */
export const LONG_ESTABLISHED_TIMEOUT = 86_400;

/**
 * The timeout is short, but entries created before it was lowered still run
 * on their old, longer timers (remaining > timeout): lowering a timeout does
 * not shorten existing entries.
 */
function staleTimerFinding(ctx: AnalysisContext, timeout: number, stale: number): Finding {
  return {
    id: 'established-timeout-long',
    severity: ctx.pressure ? 'warning' : 'info',
    title: `ESTABLISHED timeout is ${fmtDuration(timeout)}, but ${fmtInt(stale)} entries still run on older, longer timers (${fmtPct(ratio(stale, ctx.table.entries))} of the table)`,
    evidence: { timeoutSeconds: timeout, established: ctx.table.establishedIdle.total, staleTimers: stale },
    detail:
      'These entries have seen no packet since the timeout was lowered (a packet would reset them to the new timeout); they expire on their old timers unless deleted by tuple.',
  };
}

export function establishedTimeoutFindings(ctx: AnalysisContext): Finding[] {
  const { facts, table } = ctx;
  const timeout = establishedTimeout(facts);
  const stale = table.establishedIdle.aboveTimeout ?? 0;
  if (timeout <= LONG_ESTABLISHED_TIMEOUT) return stale > 0 ? [staleTimerFinding(ctx, timeout, stale)] : [];

  const idle = table.establishedIdle;
  const measured = Object.keys(idle.idleAtLeast)
    .map(Number)
    .filter((t) => Number.isFinite(t) && t < timeout)
    .sort((a, b) => a - b);
  const idle1h = idleAtLeast(table, 3600);
  const idle24h = idleAtLeast(table, 86_400);

  const evidence: Record<string, number | string> = {
    timeoutSeconds: timeout,
    established: idle.total,
  };
  for (const t of measured) evidence[`idle>=${t}s`] = idle.idleAtLeast[String(t)] ?? 0;
  if (idle1h !== undefined) evidence['idle>=1h percentOfTable'] = pctNumber(ratio(idle1h, table.entries));
  if (stale > 0) evidence['staleTimers'] = stale;
  const short = idle.shortTimer ?? 0;
  if (short > 0) evidence['onShortTimer'] = short;

  let title = `ESTABLISHED timeout is ${fmtDuration(timeout)}: a dead connection holds its entry for ${fmtDuration(timeout)}`;
  if (idle1h !== undefined) {
    title =
      `ESTABLISHED timeout is ${fmtDuration(timeout)}: ${fmtInt(idle1h)} of ${fmtInt(idle.total)} ESTABLISHED entries idle >= 1 h` +
      (idle24h !== undefined ? `, ${fmtInt(idle24h)} idle >= 24 h` : '') +
      ` (${fmtPct(ratio(idle1h, table.entries))} of the table)`;
  }
  const detail: string[] = [
    'Entries idle for hours on a NAT gateway are mostly connections whose ends vanished without FIN/RST.',
  ];
  if (short > 0) {
    detail.push(
      `${fmtInt(short)} more are on the kernel's ${fmtDuration(idle.shortTimerSeconds ?? 300)} short timer (data unacknowledged, retransmissions or a zero window): likely active, not counted as idle.`,
    );
  }
  if (idle.timeoutUsed !== timeout) {
    detail.push(`Idle times were computed with a ${fmtDuration(idle.timeoutUsed)} timeout, not the current ${fmtDuration(timeout)}.`);
  }
  return [
    {
      id: 'established-timeout-long',
      severity: ctx.pressure && (idle1h ?? 0) > 0 ? 'warning' : 'info',
      title,
      evidence,
      detail: detail.join(' '),
    },
  ];
}
