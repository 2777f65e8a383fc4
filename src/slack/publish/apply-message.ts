/**
 * An apply or roll back in Slack: the plan's findings message (whose buttons are gone
 * after the decision) is updated step by step, then replaced by the result: per step
 * before -> after, the verification, and a Roll back button for approvers.
 */
import type { ApplyOutcome, ApplyStepState } from '../../apply/model.js';
import type { ApplyJob } from '../../queue/jobs.js';
import type { PlanRecord, PlanStore } from '../../store/plan-store.js';
import type { ApplyPublisher } from '../../worker/ports.js';
import { renderApplyResult, renderProgress, type ApplyResultView, type ProgressStatus, type ProgressStep, type RenderedMessage } from '../blocks/index.js';
import { esc, section } from '../blocks/kit.js';
import { logger } from '../../infra/logger.js';
import { metrics } from '../../metrics/registry.js';
import { slackErrorCode, type MessagePlace, type SlackMessageWriter } from './message-writer.js';

const PROGRESS: Record<ApplyStepState['status'], ProgressStatus> = {
  pending: 'pending',
  running: 'running',
  applied: 'done',
  unchanged: 'done',
  'rolled-back': 'done',
  skipped: 'skipped',
  refused: 'skipped',
  'not-run': 'skipped',
  failed: 'failed',
  unknown: 'failed',
};

export function applyProgressSteps(steps: ApplyStepState[]): ProgressStep[] {
  return steps.map((s) => ({
    name: `${s.key}${s.expected ? ` -> ${s.expected}` : ''}`,
    status: PROGRESS[s.status] ?? 'failed',
    detail: s.status === 'running' || s.status === 'pending' ? undefined : [s.status, s.before !== null && s.after !== null ? `${s.before} -> ${s.after}` : '', s.detail ?? ''].filter(Boolean).join(': '),
  }));
}

export function applyResultView(outcome: ApplyOutcome): ApplyResultView {
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
    // The restore's notes often repeat the outcome's: each note once.
    notes: [...new Set([outcome.message, ...outcome.problems, ...outcome.notes, ...(outcome.restore?.notes ?? [])].filter(Boolean))],
    canRollBack: outcome.canRollBack,
  };
}

/**
 * Progress edits do not hold the apply: `progress()` hands the newest state to a sender
 * and returns; at most one edit is in flight and only the newest state waits behind it
 * (older ones are superseded, never sent late). A rate-limited edit (429) waits its
 * Retry-After in the sender while the apply goes on; `result()` and `failed()` wait for the
 * edit in flight, then write the final message.
 */
export class SlackApplyPublisher implements ApplyPublisher {
  private sending: Promise<void> | null = null;
  private next: { plan: PlanRecord; content: RenderedMessage } | null = null;

  constructor(
    private readonly writer: SlackMessageWriter,
    private readonly plans: PlanStore,
    /** What the job does: the progress message says it. */
    private readonly action: ApplyJob['action'],
  ) {}

  /** Resolves when no progress edit is in flight or waiting. */
  async settled(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async sendProgress(): Promise<void> {
    while (this.next) {
      const { plan, content } = this.next;
      this.next = null;
      try {
        await this.show(plan, content);
      } catch (err) {
        // Best effort, as before: counted and logged, the apply goes on.
        metrics.applyPublishFailures.inc({ action: this.action, what: 'progress' });
        logger.warn({ plan: plan.planId, gateway: plan.gateway, err: slackErrorCode(err) }, `${this.action} progress not shown (the ${this.action} goes on)`);
      }
    }
    this.sending = null;
  }

  /** The final message: no progress state is sent after it. */
  private async showFinal(plan: PlanRecord, content: RenderedMessage): Promise<void> {
    this.next = null;
    await this.settled();
    await this.show(plan, content);
  }

  /** On the plan's message; when it has none (yet), a new message where the plan came from. */
  private async show(plan: PlanRecord, content: RenderedMessage): Promise<void> {
    const ref = plan.message ?? (await this.plans.get(plan.planId))?.message ?? null;
    const place: MessagePlace | null = plan.origin.kind === 'slack' ? { channel: plan.origin.channel, ...(plan.origin.threadTs ? { threadTs: plan.origin.threadTs } : {}) } : null;
    const shown = await this.writer.show(ref, place, content);
    if (!ref && shown) await this.plans.setMessage(plan.planId, shown);
  }

  async progress(plan: PlanRecord, steps: ApplyStepState[]): Promise<void> {
    this.next = { plan, content: renderProgress(plan.gateway, applyProgressSteps(steps), this.action) };
    this.sending ??= this.sendProgress();
  }

  async result(plan: PlanRecord, outcome: ApplyOutcome): Promise<void> {
    await this.showFinal(plan, renderApplyResult(applyResultView(outcome)));
  }

  async failed(job: ApplyJob, plan: PlanRecord | null, error: string): Promise<void> {
    if (!plan) return;
    await this.showFinal(plan, {
      text: `${job.action} of ${esc(job.gateway)} failed: ${esc(error.slice(0, 200))}`,
      blocks: [section(`:x: *${job.action === 'apply' ? 'Apply' : 'Roll back'} of ${esc(job.gateway)} failed:* ${esc(error.slice(0, 2500))}`)],
    });
  }
}
