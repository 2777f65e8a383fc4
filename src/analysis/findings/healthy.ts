/** table-healthy: reported when no other finding is critical or a warning. */
import { isSerious, type Finding } from '../../core/model.js';
import type { AnalysisContext } from '../context.js';
import { fmtInt, fmtPct, pctNumber } from '../format.js';

export function healthyFindings(ctx: AnalysisContext, others: readonly Finding[]): Finding[] {
  if (others.some((f) => isSerious(f.severity))) return [];
  const { facts } = ctx;
  const dropped = facts.stats.drop + facts.stats.early_drop;
  return [
    {
      id: 'table-healthy',
      severity: 'ok',
      title: `Conntrack table healthy: ${fmtInt(facts.count)} of ${fmtInt(facts.max)} entries (${fmtPct(ctx.fill)}), ${dropped === 0 ? 'no drops' : `${fmtInt(dropped)} old drops, none in the last hour`}`,
      evidence: {
        count: facts.count,
        max: facts.max,
        percentFull: pctNumber(ctx.fill),
        drop: facts.stats.drop,
        earlyDrop: facts.stats.early_drop,
      },
    },
  ];
}
