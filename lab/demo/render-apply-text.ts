/** An apply or roll back outcome for a terminal: each step before -> after, verify, notes. */
import { applyOutcomeSchema } from '../../src/apply/model.js';

export function renderApplyOutcomeText(raw: unknown): string {
  const parsed = applyOutcomeSchema.safeParse(raw);
  if (!parsed.success) {
    const failed = (raw as { failed?: string } | null)?.failed;
    return `   the job failed: ${failed ?? JSON.stringify(raw)}`;
  }
  const o = parsed.data;
  const out = [`   ${o.action} ${o.outcome} in ${(o.durationMs / 1000).toFixed(1)} s: ${o.message}`];
  for (const s of o.steps) {
    const change = s.before !== null || s.after !== null ? `${s.before ?? '?'} -> ${s.after ?? '?'}` : '';
    out.push(`   - ${s.key.padEnd(42)} ${s.status.padEnd(11)} ${change}${s.detail ? `  (${s.detail})` : ''}`);
  }
  for (const p of o.problems) out.push(`   ! ${p}`);
  if (o.verifyReport) {
    const v = o.verifyReport;
    out.push(`   verify: count ${v.count.before} -> ${v.count.after}, max ${v.max.before} -> ${v.max.after}, new drops ${v.drops?.drop ?? 'n/a'}, new "table full" lines ${v.newTableFullLines}`);
    if (v.deletes) out.push(`   idle entries deleted: ${v.deletes.deleted} of ${v.deletes.candidates} selected (${v.deletes.rule}); count ${v.deletes.countBefore} -> ${v.deletes.countAfter}`);
  }
  for (const c of o.verify) out.push(`   ${c.ok ? '✓' : '✗'} ${c.name}${c.detail ? `: ${c.detail}` : ''}`);
  if (o.restore) out.push(`   restore ${o.restore.ok ? 'verified' : 'FAILED'}: ${o.restore.notes.join('; ')}`);
  for (const n of o.notes) out.push(`   note: ${n}`);
  if (o.followUp) out.push(`   follow-up check ${o.followUp.jobId} due ${o.followUp.dueAt}`);
  return out.join('\n');
}
