/**
 * Check progress and findings in Slack: one message posted when the job starts, updated
 * as each step ends, then replaced by the findings with Approve / Reject. Detail that
 * does not fit Slack's limits goes into a thread reply.
 */
import type { WebClient } from '@slack/web-api';
import type { FollowUpVerdict } from '../../apply/follow-up.js';
import type { CheckReport } from '../../core/model.js';
import type { Origin } from '../../queue/jobs.js';
import type { PlanRecord, SlackMessageRef } from '../../store/plan-store.js';
import type { CheckPublisher, StepState } from '../../worker/publisher.js';
import { renderFindings, renderFollowUp, renderProgress } from '../blocks/index.js';

type SlackOrigin = Extract<Origin, { kind: 'slack' }>;

export class SlackCheckPublisher implements CheckPublisher {
  private message: SlackMessageRef | null = null;

  constructor(
    private readonly client: WebClient,
    private readonly origin: SlackOrigin,
  ) {}

  private async show(content: { text: string; blocks: unknown[] }): Promise<SlackMessageRef> {
    if (this.message) {
      await this.client.chat.update({ channel: this.message.channel, ts: this.message.ts, text: content.text, blocks: content.blocks as never });
      return this.message;
    }
    const res = await this.client.chat.postMessage({
      channel: this.origin.channel,
      text: content.text,
      blocks: content.blocks as never,
      ...(this.origin.threadTs ? { thread_ts: this.origin.threadTs } : {}),
    });
    if (!res.ts || !res.channel) throw new Error('chat.postMessage returned no ts');
    this.message = { channel: res.channel, ts: res.ts };
    return this.message;
  }

  async progress(gateway: string, steps: StepState[]): Promise<void> {
    await this.show(renderProgress(gateway, steps));
  }

  async findings(report: CheckReport, plan: PlanRecord): Promise<SlackMessageRef> {
    const rendered = renderFindings(report, {
      planId: plan.planId,
      requestedBy: plan.requestedBy,
      expiresAt: plan.expiresAt,
      approvable: report.plan.steps.some((s) => s.writable),
    });
    const ref = await this.show(rendered);
    if (rendered.overflow) {
      await this.client.chat.postMessage({
        channel: ref.channel,
        thread_ts: ref.ts,
        text: `Full detail for ${report.gateway}`,
        blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '```' + rendered.overflow.slice(0, 2900) + '```' } }] as never,
      });
    }
    return ref;
  }

  async failed(gateway: string, steps: StepState[], error: string, hint?: string): Promise<void> {
    const progress = renderProgress(gateway, steps);
    const detail = `:x: *Check of ${gateway} failed:* ${error.slice(0, 1500)}${hint ? `\n:bulb: ${hint.slice(0, 1000)}` : ''}`;
    await this.show({
      text: `Check of ${gateway} failed: ${error.slice(0, 200)}`,
      blocks: [...progress.blocks, { type: 'section', text: { type: 'mrkdwn', text: detail } }],
    });
  }

  /** The verdict goes where the follow-up check went: the thread of the applied plan. */
  async followUp(gateway: string, planId: string, verdict: FollowUpVerdict): Promise<void> {
    const m = renderFollowUp(gateway, planId, verdict);
    const base = { channel: this.origin.channel, text: m.text, blocks: m.blocks as never };
    const thread = this.origin.threadTs;
    // Still dropping: also shown in the channel, not only in the thread.
    if (thread && !verdict.stopped) await this.client.chat.postMessage({ ...base, thread_ts: thread, reply_broadcast: true });
    else await this.client.chat.postMessage({ ...base, ...(thread ? { thread_ts: thread } : {}) });
  }
}
