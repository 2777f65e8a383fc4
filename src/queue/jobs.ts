/**
 * Queue names and job payloads. Payloads are validated with zod when a worker
 * reads them back from Redis: a job written by an older or foreign producer
 * fails loudly instead of running with half its fields.
 */
import { z } from 'zod';
import { gatewayNameSchema } from '../config/inventory.js';

export const QUEUES = { check: 'conntrack-check', apply: 'conntrack-apply', poll: 'conntrack-poll', saved: 'conntrack-saved-file' } as const;

/** Where the result goes: a Slack channel (with the live-updated message) or a terminal waiting on the job. */
export const originSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('slack'),
    channel: z.string().regex(/^[CDG][A-Z0-9]{2,}$/, 'not a Slack channel id'),
    /** Thread to post into, when the request came from one. */
    threadTs: z.string().optional(),
    /** Part of a `/conntrack check all` run: its one summary message shows this check (src/slack/publish/check-all-*.ts). */
    checkAll: z.string().regex(/^[A-Za-z0-9._-]{8,100}$/).optional(),
  }),
  z.object({ kind: z.literal('cli') }),
]);
export type Origin = z.infer<typeof originSchema>;

export const requestIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/);

export const checkJobSchema = z.object({
  gateway: gatewayNameSchema,
  requestedBy: z.string().min(1).max(64),
  /** Stable id of the request (Slack trigger id, CLI invocation id): same request, same job. */
  requestId: requestIdSchema,
  origin: originSchema,
  /** Set on the check queued a few minutes after an apply: says whether that plan's apply stopped the drops. */
  followUpOf: z.string().regex(/^[A-Za-z0-9-]{8,64}$/).optional(),
});
export type CheckJob = z.infer<typeof checkJobSchema>;

export const checkResultSchema = z.object({
  planId: z.string(),
  gateway: z.string(),
  worst: z.string(),
  findings: z.number(),
  steps: z.number(),
  /** Answered by a run of the same gateway that started after this check was requested (that run's plan id). */
  sharedRunOf: z.string().optional(),
  /** For a follow-up check: did the apply stop the drops? */
  followUp: z.object({ planId: z.string(), stopped: z.boolean(), summary: z.string() }).optional(),
});
export type CheckResult = z.infer<typeof checkResultSchema>;

export const applyJobSchema = z.object({
  action: z.enum(['apply', 'rollback']),
  planId: z.string().regex(/^[A-Za-z0-9-]{8,64}$/),
  gateway: gatewayNameSchema,
  decidedBy: z.string().min(1).max(64),
  origin: originSchema,
  /** Ids of OPTIONAL plan steps (NOTRACK, deletes) the approver included; absent: none. */
  steps: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/)).max(50).optional(),
  /** Roll back: how many roll backs of this plan had run when it was requested (each retry is its own job). */
  attempt: z.number().int().min(0).max(1_000_000).optional(),
});
export type ApplyJob = z.infer<typeof applyJobSchema>;

/** BullMQ custom ids may not contain ':' nor be integers. */
export function checkJobId(job: Pick<CheckJob, 'gateway' | 'requestId'>): string {
  return `check-${job.gateway}-${job.requestId}`;
}
/**
 * One apply per plan. A roll back per attempt: a second click before it runs is the same
 * job; a retry after a failed roll back (the attempt count moved) is a new one.
 */
export function applyJobId(job: Pick<ApplyJob, 'action' | 'planId' | 'attempt'>): string {
  return job.action === 'apply' ? `apply-${job.planId}` : `rollback-${job.planId}-${job.attempt ?? 0}`;
}

/** One light poll of a watched gateway, produced by its job scheduler (src/monitor/schedulers.ts). */
export const pollJobSchema = z.object({ gateway: gatewayNameSchema });
export type PollJob = z.infer<typeof pollJobSchema>;

/** The job scheduler of a watched gateway ('watch-gw-3'); one per gateway whatever the number of workers. */
export function pollSchedulerId(gateway: string): string {
  return `watch-${gateway}`;
}

/** A Slack file id (files.info, file_shared). */
export const slackFileIdSchema = z.string().regex(/^F[A-Z0-9]{2,30}$/, 'not a Slack file id');

/** A file shared in a Slack channel, to be read as a saved file (src/worker/saved-file-processor.ts). */
export const savedFileJobSchema = z.object({
  fileId: slackFileIdSchema,
  /** The conversation it was shared in (file_shared's channel_id): where the answer goes. */
  channel: z.string().regex(/^[CDG][A-Z0-9]{2,}$/, 'not a Slack channel id'),
  sharedBy: z.string().regex(/^[UW][A-Z0-9]{2,30}$/, 'not a Slack user id'),
  /** The event's time (Slack's event_ts): from it to the posted report is what the user waits. */
  eventTs: z.string().regex(/^\d{9,11}(\.\d{1,6})?$/),
});
export type SavedFileJob = z.infer<typeof savedFileJobSchema>;

/**
 * One analysis per share: Slack's retries of an event carry the same event_ts and are the same
 * job; the same file shared again (a new event_ts) is analysed again.
 */
export function savedFileJobId(job: Pick<SavedFileJob, 'fileId' | 'channel' | 'eventTs'>): string {
  return `saved-${job.fileId}-${job.channel}-${job.eventTs}`;
}
