/**
 * Where a job shows its progress and result. The Slack publisher posts one message
 * and updates it step by step; the terminal follows the BullMQ job progress instead.
 */
import type { FollowUpVerdict } from '../apply/follow-up.js';
import type { CheckReport } from '../core/model.js';
import type { PlanRecord, SlackMessageRef } from '../store/plan-store.js';

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

/** For jobs whose requester follows the job itself (terminal): nothing to post. */
export const silentPublisher: CheckPublisher = {
  progress: async () => undefined,
  findings: async () => null,
  failed: async () => undefined,
  followUp: async () => undefined,
};
