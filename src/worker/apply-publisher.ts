/**
 * Where an apply / roll back job shows its progress and result. Data only: the Slack
 * implementation (src/slack/publish/) renders it; the terminal reads the job's return
 * value (the same ApplyOutcome) instead.
 *
 * An ApplyOutcome carries, per step, before -> after (read back from the gateway),
 * the verify checks and figures (count/max, drop counters and "table full" lines since
 * the snapshot, entries before -> after for deletes), the restore report when a step
 * failed, whether a roll back is possible, and the scheduled follow-up check.
 */
import type { ApplyOutcome, ApplyStepState } from '../apply/model.js';
import type { ApplyJob } from '../queue/jobs.js';
import type { PlanRecord } from '../store/plan-store.js';

export type { ApplyOutcome, ApplyStepState } from '../apply/model.js';

export interface ApplyPublisher {
  /** Live step states (pending/running/applied/unchanged/failed/rolled-back...). */
  progress(plan: PlanRecord, steps: ApplyStepState[]): Promise<void>;
  /** The final outcome of an apply or roll back (including refusals and "already applied"). */
  result(plan: PlanRecord, outcome: ApplyOutcome): Promise<void>;
  /** The job itself failed before producing an outcome (bad payload, Redis down, bug). */
  failed(job: ApplyJob, plan: PlanRecord | null, error: string): Promise<void>;
}

/** For jobs whose requester follows the job itself (terminal): nothing to post. */
export const silentApplyPublisher: ApplyPublisher = {
  progress: async () => undefined,
  result: async () => undefined,
  failed: async () => undefined,
};
