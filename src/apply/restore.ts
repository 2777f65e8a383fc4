/**
 * Restore the snapshot for the given steps, newest change first (rules, files, deletes,
 * values: the reverse of the apply order), each step's module undoing its own part;
 * then read everything back, and mark each step rolled back when its own checks pass.
 * Deleted conntrack entries cannot come back (said in the notes).
 */
import type { PlanStep } from '../core/model.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import type { ApplyStepState, RestoreReport, Snapshot, VerifyCheck } from './model.js';
import { inRestoreOrder, stepModule } from './steps/registry.js';

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether the run got as far as this step (a restore only touches what ran). */
function touched(state: ApplyStepState): boolean {
  return state.status !== 'skipped' && state.status !== 'refused' && state.status !== 'not-run' && state.status !== 'pending';
}

/**
 * Restores `steps` (their states in `states` are updated: rolled back, or a failed step's
 * detail says whether its partial effect was undone).
 */
export async function restoreSnapshot(session: GatewaySession, snapshot: Snapshot, steps: readonly PlanStep[], states: ApplyStepState[], label: string): Promise<RestoreReport> {
  const notes: string[] = [];
  const errors: string[] = [];
  const attempt = async (what: string, work: () => Promise<void>): Promise<void> => {
    try {
      await work();
    } catch (err) {
      errors.push(`${what}: ${errMessage(err)}`);
    }
  };
  const finally_ = new Map<string, () => Promise<void>>();
  const stateOf = (stepId: string): ApplyStepState | undefined => states.find((x) => x.stepId === stepId);

  for (const step of inRestoreOrder(steps)) {
    const state = stateOf(step.id);
    if (!state) continue;
    await stepModule(step).restore(step, {
      session,
      snapshot,
      state,
      notes,
      attempt,
      afterAll: (key, work) => {
        if (!finally_.has(key)) finally_.set(key, work);
      },
    });
  }
  for (const work of finally_.values()) await work();

  // Read back: each step's own checks decide whether it is rolled back.
  const checks: VerifyCheck[] = [];
  for (const step of inRestoreOrder(steps)) {
    const module = stepModule(step);
    const own = await module.verifyRestore(step, { session, snapshot });
    for (const c of own) if (!checks.some((x) => x.name === c.name)) checks.push(c);
    const state = stateOf(step.id);
    if (!state || !touched(state) || !module.reversible) continue;
    const undone = own.every((c) => c.ok);
    if (state.status === 'applied' || state.status === 'unknown') {
      if (undone) {
        state.status = 'rolled-back';
        state.after = state.before;
      }
    } else if (state.status === 'failed') {
      // Keep 'failed' (that is what happened); say whether its partial effect is undone.
      state.detail = `${state.detail ?? 'failed'}; ${undone ? 'its partial effect was undone by the restore' : 'its partial effect could NOT be undone'}`;
    }
  }
  const ok = errors.length === 0 && checks.every((c) => c.ok);
  for (const e of errors) notes.push(`restore error: ${e}`);
  return {
    at: new Date().toISOString(),
    ok,
    steps: states.map((x) => ({ ...x })),
    checks,
    notes: [`${label}: ${ok ? 'snapshot restored and verified' : 'INCOMPLETE'}`, ...notes],
  };
}
