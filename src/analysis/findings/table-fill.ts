/** table-saturated (critical) and table-high (warning): count against nf_conntrack_max. */
import type { Finding } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtInt, fmtPct, pctNumber } from '../format.js';

export function tableFillFindings(ctx: AnalysisContext): Finding[] {
  const { facts, thresholds, fill } = ctx;
  const percent = fill * 100;
  const evidence = {
    count: facts.count,
    max: facts.max,
    percentFull: pctNumber(fill),
    free: Math.max(0, facts.max - facts.count),
  };
  if (percent >= thresholds.critPercent) {
    return [
      {
        id: 'table-saturated',
        severity: 'critical',
        title: `Conntrack table saturated: ${fmtInt(facts.count)} of ${fmtInt(facts.max)} entries (${fmtPct(fill)})`,
        evidence: { ...evidence, critPercent: thresholds.critPercent },
        detail:
          'New connections are dropped while the table is full of assured entries; existing connections keep working, so users see intermittent failures.',
      },
    ];
  }
  if (percent >= thresholds.warnPercent) {
    return [
      {
        id: 'table-high',
        severity: 'warning',
        title: `Conntrack table high: ${fmtInt(facts.count)} of ${fmtInt(facts.max)} entries (${fmtPct(fill)})`,
        evidence: { ...evidence, warnPercent: thresholds.warnPercent },
        detail: `${fmtInt(facts.max - facts.count)} entries left before new connections are dropped.`,
      },
    ];
  }
  return [];
}
