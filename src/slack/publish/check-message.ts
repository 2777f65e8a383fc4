/**
 * A check in Slack: one message posted when the job starts, updated as each step ends,
 * then replaced by the findings with Approve / Reject. What did not fit the message
 * (`overflow`) follows in its thread, cut by the overflow chunker into replies within
 * Slack's limits; past OVERFLOW_REPLIES replies the whole text goes up as one file too,
 * so nothing is lost. A follow-up check's verdict goes to the applied plan's thread.
 */
import type { FollowUpVerdict } from '../../apply/follow-up.js';
import type { CheckReport } from '../../core/model.js';
import type { Origin } from '../../queue/jobs.js';
import type { PlanRecord } from '../../store/plan-store.js';
import type { CheckPublisher, StepState } from '../../worker/ports.js';
import { renderFindings, renderFollowUp, renderOverflowReplies, renderProgress, withoutOverflow, type RenderedMessage } from '../blocks/index.js';
import { esc, section } from '../blocks/kit.js';
import type { JobMessageStore } from '../../store/job-messages.js';
import type { MessagePlace, SlackMessageRef, SlackMessageWriter } from './message-writer.js';

type SlackOrigin = Extract<Origin, { kind: 'slack' }>;

/** Thread replies for the overflow before it is (also) uploaded as a file. */
export const OVERFLOW_REPLIES = 3;

export class SlackCheckPublisher implements CheckPublisher {
  private message: SlackMessageRef | null = null;

  constructor(
    private readonly writer: SlackMessageWriter,
    private readonly origin: SlackOrigin,
    /** Where an earlier attempt of the same job left its message (absent: a new message per publisher). */
    private readonly attempts?: { store: JobMessageStore; jobId: string },
  ) {}

  private get place(): MessagePlace {
    return { channel: this.origin.channel, ...(this.origin.threadTs ? { threadTs: this.origin.threadTs } : {}) };
  }

  private async show(content: RenderedMessage): Promise<SlackMessageRef> {
    const first = this.message === null;
    if (first && this.attempts) this.message = await this.attempts.store.get(this.attempts.jobId);
    this.message = await this.writer.show(this.message, this.place, content);
    if (first && this.attempts) await this.attempts.store.set(this.attempts.jobId, this.message);
    return this.message;
  }

  async progress(gateway: string, steps: StepState[]): Promise<void> {
    await this.show(renderProgress(gateway, steps, 'check'));
  }

  async findings(report: CheckReport, plan: PlanRecord): Promise<SlackMessageRef> {
    const rendered = renderFindings(report, {
      planId: plan.planId,
      requestedBy: plan.requestedBy,
      expiresAt: plan.expiresAt,
      approvable: report.plan.steps.some((s) => s.writable),
    });
    const ref = await this.show(withoutOverflow(rendered));
    if (rendered.overflow) await this.postOverflow(ref, report.gateway, plan.planId, rendered.overflow);
    return ref;
  }

  /** The full detail in the findings' thread: every chunk a reply, or (when too long for OVERFLOW_REPLIES) also the whole text as a file. */
  private async postOverflow(ref: SlackMessageRef, gateway: string, planId: string, overflow: string): Promise<void> {
    // Slack threads have one level: a message that is itself a reply keeps its parent's thread.
    const thread: SlackMessageRef = { channel: ref.channel, ts: this.origin.threadTs ?? ref.ts };
    const title = `Full detail for ${gateway}`;
    const replies = renderOverflowReplies(overflow, { title, maxMessages: OVERFLOW_REPLIES });
    for (const reply of replies.messages) await this.writer.reply(thread, reply);
    if (replies.complete) return;
    const bytes = new TextEncoder().encode(overflow);
    await this.writer.upload(
      { filename: `conntrack-${gateway.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 60)}-${planId}.txt`, bytes, title, snippetType: 'text' },
      { channel: thread.channel, threadTs: thread.ts, comment: `${title}: all ${overflow.length.toLocaleString('en-US')} characters in one file.` },
    );
  }

  /** `error` and `hint` may carry gateway text (stderr): escaped, so no mention or link it holds can render. */
  async failed(gateway: string, steps: StepState[], error: string, hint?: string): Promise<void> {
    const progress = renderProgress(gateway, steps, 'check');
    const detail = `:x: *Check of ${esc(gateway)} failed:* ${esc(error.slice(0, 1500))}${hint ? `\n:bulb: ${esc(hint.slice(0, 1000))}` : ''}`;
    await this.show({ text: `Check of ${esc(gateway)} failed: ${esc(error.slice(0, 200))}`, blocks: [...progress.blocks, section(detail)] });
  }

  /** The verdict goes where the follow-up check went: the thread of the applied plan. */
  async followUp(gateway: string, planId: string, verdict: FollowUpVerdict): Promise<void> {
    // Still dropping: also shown in the channel, not only in the thread.
    await this.writer.post(this.place, renderFollowUp(gateway, planId, verdict), { broadcast: !verdict.stopped });
  }
}
