/**
 * What the apply feature stores and reports. Everything here crosses a process
 * boundary (Redis, the BullMQ job result, Slack), so it is a zod schema and is
 * validated when read back.
 *
 *   plan (approved) -> pre-flight -> snapshot (stored BEFORE the first change)
 *     -> steps (each one's state stored before and after it runs) -> verify
 *     -> outcome; on a failing step: restore the snapshot -> verify the restore.
 */
import { z } from 'zod';
import { conntrackStatsSchema, planStepKindSchema } from '../core/model.js';
import { notrackRuleSchema } from '../core/notrack.js';

/** Status of one step, as stored per plan and shown to people. */
export const stepStatusSchema = z.enum([
  /** Not run yet. */
  'pending',
  /** Started; if the worker dies now the step's effect is unknown until read back. */
  'running',
  /** Changed and read back equal to the proposal. */
  'applied',
  /** Already at the proposed value: nothing written. */
  'unchanged',
  /** Not part of this apply: optional and not selected, or not writable per the plan (see detail). */
  'skipped',
  /** Refused by the pre-flight (read-only here, drift, memory). */
  'refused',
  'failed',
  /** Undone by a restore or roll back. */
  'rolled-back',
  /** Never reached because an earlier step failed. */
  'not-run',
  /** The worker stopped while the step ran: the gateway may or may not have the change. */
  'unknown',
]);
export type StepStatus = z.infer<typeof stepStatusSchema>;

export const applyStepStateSchema = z.object({
  stepId: z.string(),
  kind: planStepKindSchema,
  key: z.string(),
  status: stepStatusSchema,
  /** Value read from the gateway before the step (a number as text, "absent", a rule state...). */
  before: z.string().nullable(),
  /** Value read back after the step (or after the restore for rolled-back steps). */
  after: z.string().nullable(),
  /** What the plan proposed. */
  expected: z.string().nullable(),
  detail: z.string().optional(),
  durationMs: z.number().optional(),
});
export type ApplyStepState = z.infer<typeof applyStepStateSchema>;

export const managedFileSnapshotSchema = z.object({
  path: z.string(),
  exists: z.boolean(),
  content: z.string().nullable(),
});
export type ManagedFileSnapshot = z.infer<typeof managedFileSnapshotSchema>;

export const ruleSnapshotSchema = z.object({
  stepId: z.string(),
  backend: z.enum(['iptables', 'nft']),
  rule: notrackRuleSchema,
  /** Whether the rule was there before the apply (then the apply never adds nor removes it). */
  existed: z.boolean(),
});
export type RuleSnapshot = z.infer<typeof ruleSnapshotSchema>;

/** Everything the plan will touch, as it was right before the first change. */
export const snapshotSchema = z.object({
  takenAt: z.string(),
  /** Netfilter sysctls the plan touches (the persistence file's keys included): short key -> value. */
  sysctl: z.record(z.string(), z.number()),
  hashsize: z.number().nullable(),
  files: z.object({ sysctl: managedFileSnapshotSchema.nullable(), modprobe: managedFileSnapshotSchema.nullable() }),
  rules: z.array(ruleSnapshotSchema),
  /** Whether `table inet conntrack_ops` existed (nft backend only). */
  nftTableExisted: z.boolean().nullable(),
  count: z.number(),
  max: z.number(),
  stats: conntrackStatsSchema.nullable(),
  /** "table full" kernel log lines present before the apply (to count new ones). */
  tableFullLines: z.array(z.string()),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

export const verifyCheckSchema = z.object({ name: z.string(), ok: z.boolean(), detail: z.string().optional() });
export type VerifyCheck = z.infer<typeof verifyCheckSchema>;

export const deleteReportSchema = z.object({
  method: z.enum(['netlink', 'conntrack-R']),
  listed: z.number(),
  candidates: z.number(),
  deleted: z.number(),
  /** Candidates already gone when their delete arrived. */
  missing: z.number(),
  failed: z.number(),
  countBefore: z.number(),
  countAfter: z.number(),
  durationMs: z.number(),
  /** The selection: newTimeout < remaining <= oldTimeout - newTimeout. */
  rule: z.string(),
});
export type DeleteReport = z.infer<typeof deleteReportSchema>;

export const verifyReportSchema = z.object({
  at: z.string(),
  /** The gateway's own clock at the verify (its kernel log is stamped with that clock). */
  gatewayAt: z.string().nullable().default(null),
  checks: z.array(verifyCheckSchema),
  count: z.object({ before: z.number(), after: z.number() }),
  max: z.object({ before: z.number(), after: z.number() }),
  /** Counter deltas between the snapshot and the verify (conntrack -S, summed over CPUs). */
  drops: z
    .object({
      before: conntrackStatsSchema,
      after: conntrackStatsSchema,
      drop: z.number(),
      earlyDrop: z.number(),
      insertFailed: z.number(),
    })
    .nullable(),
  newTableFullLines: z.number(),
  deletes: deleteReportSchema.nullable(),
  ok: z.boolean(),
});
export type VerifyReport = z.infer<typeof verifyReportSchema>;

export const restoreReportSchema = z.object({
  at: z.string(),
  ok: z.boolean(),
  steps: z.array(applyStepStateSchema),
  checks: z.array(verifyCheckSchema),
  notes: z.array(z.string()),
});
export type RestoreReport = z.infer<typeof restoreReportSchema>;

export const followUpSchema = z.object({
  jobId: z.string(),
  dueAt: z.string(),
  /** Counters at verify time; the follow-up compares against them. */
  baseline: z.object({
    at: z.string(),
    /** Gateway clock at the verify: "table full" lines are placed against this, so a gateway whose clock is off is judged right. */
    gatewayAt: z.string().nullable().default(null),
    drop: z.number(),
    earlyDrop: z.number(),
    insertFailed: z.number(),
    tableFullLines: z.number(),
  }),
});
export type FollowUp = z.infer<typeof followUpSchema>;

export const outcomeStatusSchema = z.enum([
  'applied',
  /** Pre-flight said no: nothing was changed. */
  'refused',
  /** A step failed; the snapshot was restored (see restore.ok). */
  'apply-failed',
  /** The plan was applied before: nothing done this time. */
  'already-applied',
  /** Another apply/roll back of this plan or gateway is running. */
  'busy',
  /** A worker died during the apply; state reconstructed from the per-step record. */
  'interrupted',
  'rolled-back',
  'rollback-failed',
  /** Plan not in a state that allows this action (e.g. pending, rejected). */
  'not-allowed',
]);
export type OutcomeStatus = z.infer<typeof outcomeStatusSchema>;

export const applyOutcomeSchema = z.object({
  planId: z.string(),
  gateway: z.string(),
  action: z.enum(['apply', 'rollback']),
  outcome: outcomeStatusSchema,
  by: z.string(),
  startedAt: z.string(),
  at: z.string(),
  durationMs: z.number(),
  message: z.string(),
  steps: z.array(applyStepStateSchema),
  /** Pre-flight problems (refusals), each naming where the change must be made. */
  problems: z.array(z.string()),
  verify: z.array(verifyCheckSchema),
  verifyReport: verifyReportSchema.nullable(),
  restore: restoreReportSchema.nullable(),
  notes: z.array(z.string()),
  /** A snapshot exists and the plan is in a state a roll back accepts. */
  canRollBack: z.boolean(),
  followUp: followUpSchema.nullable(),
});
export type ApplyOutcome = z.infer<typeof applyOutcomeSchema>;
