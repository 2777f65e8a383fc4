/**
 * The follow-up after an apply (runbook step 8, "did it help?"): a check queued a few
 * minutes after the verify compares the gateway's drop counters and kernel log with the
 * counters read at verify time, and says whether the drops stopped.
 */
import { z } from 'zod';
import type { CheckReport } from '../core/model.js';
import type { PlanRecord } from '../store/plan-store.js';
import type { FollowUp } from './model.js';

/** What the follow-up check of an applied plan needs. */
export interface FollowUpRequest {
  plan: PlanRecord;
  /** Who approved the apply. */
  actor: string;
  /** Where the apply was asked for (the follow-up reports there). */
  origin: PlanRecord['origin'];
}

/** The port the apply engine schedules its follow-up check through (the worker queues it). */
export interface FollowUpScheduler {
  schedule(request: FollowUpRequest): Promise<{ jobId: string; dueAt: string }>;
}

export const followUpVerdictSchema = z.object({
  stopped: z.boolean(),
  /** One line for Slack, the terminal and the history. */
  summary: z.string(),
  drop: z.number(),
  earlyDrop: z.number(),
  insertFailed: z.number(),
  tableFullLines: z.number(),
  percent: z.number(),
});
export type FollowUpVerdict = z.infer<typeof followUpVerdictSchema>;

/**
 * "table full" lines of this gateway logged after `sinceIso`. Lines naming another
 * namespace are not ours; lines without a wall clock cannot be placed and are left out.
 */
export function tableFullLinesSince(report: CheckReport, sinceIso: string): number {
  const since = Date.parse(sinceIso);
  const own = report.facts.netnsInode;
  return report.facts.kernelLog.filter(
    (e) => e.kind === 'table-full' && e.at !== null && Date.parse(e.at) > since && (e.netns === null || own === null || e.netns === own),
  ).length;
}

/** Drops and "table full" lines since the verify of the apply: did the apply stop them? */
export function followUpVerdict(followUp: FollowUp, report: CheckReport): FollowUpVerdict {
  const stats = report.facts.stats;
  const base = followUp.baseline;
  // Counters only grow; smaller now means they were reset (reboot, module reload): all of it is new.
  const delta = (now: number, then: number) => (now >= then ? now - then : now);
  const drop = delta(stats.drop, base.drop);
  const earlyDrop = delta(stats.early_drop, base.earlyDrop);
  const insertFailed = delta(stats.insert_failed, base.insertFailed);
  // The kernel log carries the gateway's clock: compare with the gateway's clock at the verify.
  const tableFullLines = tableFullLinesSince(report, base.gatewayAt ?? base.at);
  const stopped = drop === 0 && tableFullLines === 0;
  const where = `${report.conntrack.count}/${report.conntrack.max} (${report.conntrack.percent}%)`;
  const counters = `drop +${drop}, early_drop +${earlyDrop}, insert_failed +${insertFailed}, "table full" lines ${tableFullLines}`;
  return {
    stopped,
    summary: stopped
      ? `Drops stopped: nothing dropped since the apply was verified at ${base.at} (${counters}); table now ${where}.`
      : `Still dropping since the apply was verified at ${base.at}: ${counters}; table now ${where}.`,
    drop,
    earlyDrop,
    insertFailed,
    tableFullLines,
    percent: report.conntrack.percent,
  };
}
