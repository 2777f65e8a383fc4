/**
 * Before a roll back writes old values: would they hurt now?
 *
 *   - a newer plan changed the same keys and is still in effect: rolling this one back would
 *     silently undo it too (and its own roll back later would restore this plan's values):
 *     refused, naming the newer plan, which is rolled back first;
 *   - the restored nf_conntrack_max is below the entries in the table now: the kernel would
 *     drop every new connection until enough expire: refused, with what to do first.
 *
 * Nothing is written on a refusal; the plan keeps its state, so Roll back can be asked again.
 */
import type { PlanRecord, PlanStatus, PlanStore } from '../store/plan-store.js';
import type { HistoryStore } from '../store/history-store.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { readCount } from './gateway-io.js';
import type { ApplyStepState, Snapshot } from './model.js';
import type { ApplyRecordStore } from './store.js';

export interface RollbackGuardDeps {
  plans: PlanStore;
  history: HistoryStore;
  records: ApplyRecordStore;
}

/** A newer plan in one of these states may still hold its values on the gateway. */
const IN_EFFECT: readonly PlanStatus[] = ['applied', 'rollback-failed', 'applying', 'rolling-back'];

/** Steps whose change may be on the gateway (what a restore writes back). */
function changedKeys(steps: readonly ApplyStepState[]): Set<string> {
  return new Set(steps.filter((s) => s.status === 'applied' || s.status === 'unknown' || s.status === 'failed').map((s) => s.key));
}

const fmt = (n: number): string => n.toLocaleString('en-US');

/** The newer plans on this gateway that changed a key this plan changed and are still in effect. */
export async function newerPlansOnSameKeys(
  deps: RollbackGuardDeps,
  plan: PlanRecord,
  snapshot: Snapshot,
  steps: readonly ApplyStepState[],
): Promise<{ planId: string; at: string; keys: string[] }[]> {
  const ours = changedKeys(steps);
  if (ours.size === 0) return [];
  const applied = await deps.history.appliedPlans(plan.gateway);
  const ourAt = applied.find((a) => a.planId === plan.planId)?.at ?? snapshot.takenAt;
  const newer: { planId: string; at: string; keys: string[] }[] = [];
  for (const other of applied) {
    if (other.planId === plan.planId || Date.parse(other.at) <= Date.parse(ourAt)) continue;
    const record = await deps.plans.get(other.planId);
    if (!record || !IN_EFFECT.includes(record.status)) continue;
    const theirs = changedKeys((await deps.records.steps(other.planId)) ?? []);
    const shared = [...ours].filter((k) => theirs.has(k));
    if (shared.length > 0) newer.push({ planId: other.planId, at: other.at, keys: shared });
  }
  return newer;
}

/** Why this roll back must not run now, or null. Reads the live entry count when max would be restored. */
export async function rollbackRefusal(
  deps: RollbackGuardDeps,
  plan: PlanRecord,
  snapshot: Snapshot,
  steps: readonly ApplyStepState[],
  session: GatewaySession,
): Promise<string | null> {
  const newer = await newerPlansOnSameKeys(deps, plan, snapshot, steps);
  if (newer.length > 0) {
    const list = newer.map((n) => `plan ${n.planId} (applied ${n.at}; ${n.keys.join(', ')})`).join('; ');
    return `Roll back of plan ${plan.planId} refused: a newer plan changed the same keys and is still in effect: ${list}. Roll back ${newer.length === 1 ? 'that plan' : 'those plans'} first (newest first), then this one. Nothing was changed.`;
  }
  const restoredMax = snapshot.sysctl['nf_conntrack_max'];
  if (restoredMax !== undefined && changedKeys(steps).has('nf_conntrack_max')) {
    const count = await readCount(session);
    if (restoredMax < count) {
      return (
        `Roll back of plan ${plan.planId} refused: it would set nf_conntrack_max back to ${fmt(restoredMax)}, but the table holds ${fmt(count)} entries now, ` +
        `so the kernel would drop every new connection until ${fmt(count - restoredMax)} of them expire. Nothing was changed. ` +
        'Free entries first (shorter timeouts, delete idle entries), then press Roll back again.'
      );
    }
  }
  return null;
}
