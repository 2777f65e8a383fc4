/**
 * The worker's ports: where a check or an apply / roll back job shows its progress and
 * result. Data only, no Slack: the Slack implementations live in src/slack/publish/,
 * the terminal follows the BullMQ job (progress and return value) instead.
 *
 * An ApplyOutcome carries, per step, before -> after (read back from the gateway), the
 * verify checks and figures (count/max, drop counters and "table full" lines since the
 * snapshot, entries before -> after for deletes), the restore report when a step failed,
 * whether a roll back is possible, and the scheduled follow-up check.
 */
import type { FollowUpVerdict } from '../apply/follow-up.js';
import type { ApplyOutcome, ApplyStepState } from '../apply/model.js';
import type { CheckReport } from '../core/model.js';
import type { ApplyJob } from '../queue/jobs.js';
import type { PlanRecord, SlackMessageRef } from '../store/plan-store.js';

/** One step of a check as it runs. */
export interface StepState {
  name: string;
  status: 'pending' | 'running' | 'done' | 'failed';
  detail?: string;
}

export interface CheckPublisher {
  progress(gateway: string, steps: StepState[]): Promise<void>;
  /** Show the findings and the plan; returns the message carrying the buttons, if any. */
  findings(report: CheckReport, plan: PlanRecord): Promise<SlackMessageRef | null>;
  failed(gateway: string, steps: StepState[], error: string, hint?: string): Promise<void>;
  /** A follow-up check's answer to "did the apply of `planId` stop the drops?". */
  followUp(gateway: string, planId: string, verdict: FollowUpVerdict): Promise<void>;
}

export interface ApplyPublisher {
  /** Live step states (pending/running/applied/unchanged/failed/rolled-back...). */
  progress(plan: PlanRecord, steps: ApplyStepState[]): Promise<void>;
  /** The final outcome of an apply or roll back (including refusals and "already applied"). */
  result(plan: PlanRecord, outcome: ApplyOutcome): Promise<void>;
  /** The job itself failed before producing an outcome (bad payload, Redis down, bug). */
  failed(job: ApplyJob, plan: PlanRecord | null, error: string): Promise<void>;
}

/** For check jobs whose requester follows the job itself (terminal): nothing to post. */
export const silentCheckPublisher: CheckPublisher = {
  progress: async () => undefined,
  findings: async () => null,
  failed: async () => undefined,
  followUp: async () => undefined,
};

/** For apply jobs whose requester follows the job itself (terminal): nothing to post. */
export const silentApplyPublisher: ApplyPublisher = {
  progress: async () => undefined,
  result: async () => undefined,
  failed: async () => undefined,
};
