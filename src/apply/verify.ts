/**
 * The verify after the steps ran: each applied step's module reads its effect back,
 * then what the whole apply is for: count against max, drops and "table full" lines
 * since the snapshot, and what the delete freed.
 */
import type { PlanStep } from '../core/model.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { readCount, readState, readStats, readTableFullLines } from './gateway-io.js';
import type { ApplyStepState, DeleteReport, Snapshot, VerifyCheck, VerifyReport } from './model.js';
import { stepModule } from './steps/registry.js';

export async function verifyApply(
  session: GatewaySession,
  plan: readonly PlanStep[],
  states: readonly ApplyStepState[],
  snapshot: Snapshot,
  deletes: DeleteReport | null,
): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  const live = await readState(session);
  for (const state of states) {
    if (state.status !== 'applied' && state.status !== 'unchanged') continue;
    const step = plan.find((p) => p.id === state.stepId);
    if (step) checks.push(...(await stepModule(step).verify(step, { session, live, snapshot })));
  }
  const count = await readCount(session);
  const max = live.sysctl['nf_conntrack_max'] ?? 0;
  checks.push({ name: 'count/max', ok: max === 0 ? true : count < max, detail: `${snapshot.count}/${snapshot.max} -> ${count}/${max} (${max ? Math.round((count / max) * 1000) / 10 : 0}%)` });
  const statsAfter = await readStats(session, live.hasConntrack);
  let drops: VerifyReport['drops'] = null;
  if (snapshot.stats && statsAfter) {
    drops = {
      before: snapshot.stats,
      after: statsAfter,
      drop: statsAfter.drop - snapshot.stats.drop,
      earlyDrop: statsAfter.early_drop - snapshot.stats.early_drop,
      insertFailed: statsAfter.insert_failed - snapshot.stats.insert_failed,
    };
    checks.push({ name: 'drops since the snapshot', ok: true, detail: `drop +${drops.drop}, early_drop +${drops.earlyDrop}, insert_failed +${drops.insertFailed}` });
  }
  const seen = new Set(snapshot.tableFullLines);
  const newLines = (await readTableFullLines(session)).filter((l) => !seen.has(l)).length;
  checks.push({ name: '"table full" lines since the snapshot', ok: true, detail: String(newLines) });
  if (deletes) {
    checks.push({
      name: 'idle entries deleted',
      ok: deletes.failed === 0,
      detail: `${deletes.deleted}/${deletes.candidates} deleted; count ${deletes.countBefore} -> ${deletes.countAfter}`,
    });
  }
  return {
    at: new Date().toISOString(),
    gatewayAt: new Date(live.now * 1000).toISOString(),
    checks,
    count: { before: snapshot.count, after: count },
    max: { before: snapshot.max, after: max },
    drops,
    newTableFullLines: newLines,
    deletes,
    ok: checks.every((c) => c.ok || c.name === 'count/max'),
  };
}
