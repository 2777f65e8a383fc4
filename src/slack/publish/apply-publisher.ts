/**
 * Apply / roll back in Slack: the findings message (whose buttons are gone after the
 * decision) is updated step by step, then replaced by the result: per-step before ->
 * after, verification, and a Roll back button for approvers.
 */
import type { WebClient } from '@slack/web-api';
import type { ApplyOutcome, ApplyStepState } from '../../apply/model.js';
import type { ApplyJob } from '../../queue/jobs.js';
import type { PlanRecord, PlanStore, SlackMessageRef } from '../../store/plan-store.js';
import type { ApplyPublisher } from '../../worker/apply-publisher.js';
import type { StepState } from '../../worker/publisher.js';
import { renderApplyResult, renderProgress } from '../blocks/index.js';

const PROGRESS: Record<string, StepState['status']> = {
  pending: 'pending',
  running: 'running',
  applied: 'done',
  unchanged: 'done',
  skipped: 'done',
  'rolled-back': 'done',
  refused: 'failed',
  failed: 'failed',
  'not-run': 'pending',
  unknown: 'failed',
};

export function applyProgressSteps(steps: ApplyStepState[]): StepState[] {
  return steps.map((s) => ({
    name: `${s.key}${s.expected ? ` -> ${s.expected}` : ''}`,
    status: PROGRESS[s.status] ?? 'failed',
    detail: s.status === 'running' || s.status === 'pending' ? undefined : [s.status, s.before !== null && s.after !== null ? `${s.before} -> ${s.after}` : '', s.detail ?? ''].filter(Boolean).join(': '),
  }));
}

export function applyResultView(outcome: ApplyOutcome) {
  return {
    planId: outcome.planId,
    gateway: outcome.gateway,
    action: outcome.action,
    outcome: outcome.outcome,
    by: outcome.by,
    at: outcome.at,
    durationMs: outcome.durationMs,
    steps: outcome.steps,
    verify: [...outcome.verify, ...(outcome.restore?.checks ?? []).map((c) => ({ ...c, name: `restore: ${c.name}` }))],
    notes: [outcome.message, ...outcome.problems, ...outcome.notes, ...(outcome.restore?.notes ?? [])].filter(Boolean),
    canRollBack: outcome.canRollBack,
  };
}

export class SlackApplyPublisher implements ApplyPublisher {
  constructor(
    private readonly client: WebClient,
    private readonly plans: PlanStore,
  ) {}

  private async show(plan: PlanRecord, content: { text: string; blocks: unknown[] }): Promise<void> {
    const ref: SlackMessageRef | null = plan.message ?? (await this.plans.get(plan.planId))?.message ?? null;
    if (ref) {
      await this.client.chat.update({ channel: ref.channel, ts: ref.ts, text: content.text, blocks: content.blocks as never });
      return;
    }
    if (plan.origin.kind !== 'slack') return;
    const res = await this.client.chat.postMessage({ channel: plan.origin.channel, text: content.text, blocks: content.blocks as never });
    if (res.ts && res.channel) await this.plans.setMessage(plan.planId, { channel: res.channel, ts: res.ts });
  }

  async progress(plan: PlanRecord, steps: ApplyStepState[]): Promise<void> {
    await this.show(plan, renderProgress(`${plan.gateway} (applying plan)`, applyProgressSteps(steps)));
  }

  async result(plan: PlanRecord, outcome: ApplyOutcome): Promise<void> {
    await this.show(plan, renderApplyResult(applyResultView(outcome)));
  }

  async failed(job: ApplyJob, plan: PlanRecord | null, error: string): Promise<void> {
    if (!plan) return;
    await this.show(plan, {
      text: `${job.action} of ${job.gateway} failed: ${error.slice(0, 200)}`,
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `:x: *${job.action === 'apply' ? 'Apply' : 'Roll back'} of ${job.gateway} failed:* ${error.slice(0, 2500)}` } }],
    });
  }
}
