/**
 * timewait-pile: TIME_WAIT (and CLOSE_WAIT) entries holding a large share of
 * the table. In steady state count = closes per second x timeout, so the
 * timeout scales the pile directly.
 */
import type { Finding, TableSummary } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtDuration, fmtInt, fmtPct, pctNumber, ratio } from '../format.js';

export const TIME_WAIT_STATE = 'tcp TIME_WAIT';
export const CLOSE_WAIT_STATE = 'tcp CLOSE_WAIT';
/** A pile: at least this share of the table and this many entries. */
export const TIME_WAIT_PILE_SHARE = 0.2;
export const CLOSE_WAIT_PILE_SHARE = 0.1;
export const PILE_MIN_ENTRIES = 1000;

export interface Pile {
  state: string;
  count: number;
  share: number;
  isPile: boolean;
}

export function pileOf(table: TableSummary, state: string, minShare: number): Pile {
  const count = table.states[state] ?? 0;
  const share = ratio(count, table.entries);
  return { state, count, share, isPile: count >= PILE_MIN_ENTRIES && share >= minShare };
}

export function timeWaitFindings(ctx: AnalysisContext): Finding[] {
  const { table, facts } = ctx;
  const tw = pileOf(table, TIME_WAIT_STATE, TIME_WAIT_PILE_SHARE);
  const cw = pileOf(table, CLOSE_WAIT_STATE, CLOSE_WAIT_PILE_SHARE);
  if (!tw.isPile && !cw.isPile) return [];
  const twTimeout = facts.timeouts['nf_conntrack_tcp_timeout_time_wait'] ?? 120;
  const cwTimeout = facts.timeouts['nf_conntrack_tcp_timeout_close_wait'] ?? 60;
  const closesPerSecond = Math.round(tw.count / twTimeout);

  const parts: string[] = [];
  if (tw.isPile) {
    parts.push(`TIME_WAIT pile: ${fmtInt(tw.count)} entries (${fmtPct(tw.share)}) at ${fmtDuration(twTimeout)}, ~${fmtInt(closesPerSecond)} closes/s`);
  }
  if (cw.isPile) parts.push(`CLOSE_WAIT ${fmtInt(cw.count)} entries (${fmtPct(cw.share)}) at ${fmtDuration(cwTimeout)}`);

  return [
    {
      id: 'timewait-pile',
      severity: ctx.pressure ? 'warning' : 'info',
      title: parts.join('; '),
      evidence: {
        timeWait: tw.count,
        timeWaitPercent: pctNumber(tw.share),
        timeWaitTimeout: twTimeout,
        closesPerSecond,
        closeWait: cw.count,
        closeWaitPercent: pctNumber(cw.share),
        closeWaitTimeout: cwTimeout,
      },
      detail:
        'Short-lived connections churning through the gateway; each closed connection keeps its entry (and its NAT port) for the TIME_WAIT timeout.',
    },
  ];
}
