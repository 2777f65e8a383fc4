/**
 * A check that is part of `/conntrack check all`: no message of its own in the channel.
 * When it ends, its line in the run's one summary message is written (check-all-store.ts)
 * and the summary is edited; a gateway with something to act on also gets its findings,
 * with the Approve / Reject buttons, as a reply in the summary's thread.
 *
 * Several workers finish checks of the same run at once: each one edits the summary from
 * what Redis holds, then reads again, and edits again until what it showed is what Redis
 * holds. The last edit to land therefore shows every result recorded before it.
 */
import type { FollowUpVerdict } from '../../apply/follow-up.js';
import { isSerious, type CheckReport } from '../../core/model.js';
import { logger } from '../../infra/logger.js';
import type { PlanRecord } from '../../store/plan-store.js';
import type { CheckPublisher, StepState } from '../../worker/ports.js';
import { renderCheckAllSummary, type CheckAllResult } from '../blocks/check-all.js';
import { worstSeverity } from '../blocks/index.js';
import { SlackCheckPublisher } from './check-message.js';
import type { CheckAllStore } from './check-all-store.js';
import type { SlackMessageRef, SlackMessageWriter } from './message-writer.js';

/** Edits of the summary one check makes at most while results keep arriving. */
const MAX_EDITS = 6;

export class SlackCheckAllPublisher implements CheckPublisher {
  constructor(
    private readonly writer: SlackMessageWriter,
    private readonly store: CheckAllStore,
    private readonly runId: string,
    /** The summary's channel and thread: findings replies and follow-ups go there. */
    private readonly thread: { channel: string; threadTs: string },
  ) {}

  private get inThread(): SlackCheckPublisher {
    return new SlackCheckPublisher(this.writer, { kind: 'slack', channel: this.thread.channel, threadTs: this.thread.threadTs });
  }

  /** Progress is not shown per gateway: the summary says which checks are still running. */
  async progress(): Promise<void> {}

  async findings(report: CheckReport, plan: PlanRecord): Promise<SlackMessageRef | null> {
    const worst = worstSeverity(report.findings.map((f) => f.severity));
    const approvable = report.plan.steps.some((s) => s.writable);
    const actionable = approvable || isSerious(worst);
    // The reply first: the summary line points to it.
    const ref = actionable ? await this.inThread.findings(report, plan) : null;
    const result: CheckAllResult = actionable
      ? { state: 'findings', worst, percent: report.conntrack.percent, findings: report.findings.length, steps: report.plan.steps.length }
      : { state: 'healthy', worst, percent: report.conntrack.percent };
    await this.store.record(this.runId, report.gateway, result);
    await this.refresh();
    return ref;
  }

  async failed(gateway: string, _steps: StepState[], error: string, hint?: string): Promise<void> {
    await this.store.record(this.runId, gateway, { state: 'failed', error: hint ? `${error} (${hint})` : error });
    await this.refresh();
  }

  async followUp(gateway: string, planId: string, verdict: FollowUpVerdict): Promise<void> {
    await this.inThread.followUp(gateway, planId, verdict);
  }

  /** Edit the summary until it shows what Redis holds (see the header). */
  async refresh(): Promise<void> {
    let shown: string | null = null;
    for (let i = 0; i < MAX_EDITS; i++) {
      const run = await this.store.load(this.runId);
      if (!run) {
        logger.warn({ run: this.runId }, 'check all: the run is gone from Redis (expired?); its summary is not edited');
        return;
      }
      if (run.fingerprint === shown) return;
      await this.writer.update(run.meta.message, renderCheckAllSummary(run.view));
      shown = run.fingerprint;
    }
  }
}
