/**
 * Pre-flight, right before anything changes: re-read the gateway and ask each selected
 * step's module whether it can run here (read-only keys, memory, missing tools: refused,
 * saying where to change it instead) and whether the gateway drifted from the plan
 * (someone changed a value: run a new check). The table count moving a lot makes the
 * whole plan stale.
 */
import { ESTABLISHED_TIMEOUT_KEY, type PlanStep } from '../core/model.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import type { PlanRecord } from '../store/plan-store.js';
import { isWritable, readCount, type LiveState } from './gateway-io.js';
import { stepModule } from './steps/registry.js';
import type { PreflightContext } from './steps/types.js';

/** Count drift beyond this share of max makes the plan stale. */
export const COUNT_DRIFT_SHARE = 0.2;

export interface StepVerdict {
  step: PlanStep;
  /** null: go ahead. Otherwise why the step cannot run here, and where to change it. */
  refusal: string | null;
}

export interface PreflightResult {
  /** Problems that stop the whole apply (nothing will be changed). */
  problems: string[];
  verdicts: StepVerdict[];
  count: number;
}

function preflightContext(session: GatewaySession, live: LiveState, count: number, selected: readonly PlanStep[]): PreflightContext {
  const asked = new Map<string, Promise<boolean>>();
  const writable = (key: string): Promise<boolean> => {
    let v = asked.get(key);
    if (v === undefined) {
      v = isWritable(session, key);
      asked.set(key, v);
    }
    return v;
  };
  return {
    session,
    live,
    count,
    selected,
    writable,
    hashsizeWritable: async () => (await writable('nf_conntrack_max')) && (await writable('hashsize')),
    // A namespaced key root may always write: writable means root in this namespace.
    rootHere: () => writable(ESTABLISHED_TIMEOUT_KEY),
  };
}

export async function preflight(session: GatewaySession, plan: PlanRecord, selected: PlanStep[], live: LiveState): Promise<PreflightResult> {
  const report = plan.report;
  const count = await readCount(session);
  const problems: string[] = [];

  // The table moved a lot since the check: sizes and delete counts were computed for another table.
  const countDrift = Math.abs(count - report.conntrack.count);
  if (countDrift > COUNT_DRIFT_SHARE * Math.max(report.conntrack.max, 1)) {
    problems.push(
      `The table count moved from ${report.conntrack.count} (at the check, ${report.checkedAt}) to ${count} now: ` +
        'the plan was computed for another table. Run a new check.',
    );
  }

  const ctx = preflightContext(session, live, count, selected);
  const verdicts: StepVerdict[] = [];
  for (const step of selected) {
    const v = await stepModule(step).preflight(step, ctx);
    problems.push(...v.problems);
    verdicts.push({ step, refusal: v.refusal });
  }
  return { problems, verdicts, count };
}
