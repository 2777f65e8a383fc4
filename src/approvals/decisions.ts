/**
 * Decisions on a plan, for every front end (Slack buttons, the terminal).
 * Each is a compare-and-set on the plan's state, so a double click, two approvers at
 * once or a replayed payload yields exactly one apply job.
 */
import { ApplyRecordStore } from '../apply/store.js';
import { approvableOptionalSteps } from '../core/model.js';
import { enqueueApply } from '../queue/producer.js';
import type { Runtime } from '../runtime.js';
import type { ApplyJob } from '../queue/jobs.js';
import { ApplyOutbox } from '../store/apply-outbox.js';
import type { PlanRecord } from '../store/plan-store.js';
import type { ApprovalRules } from './rules.js';

export type DecisionOutcome =
  | { ok: true; plan: PlanRecord; at: string; jobId?: string }
  | { ok: false; reason: 'unknown-plan' | 'denied' | 'expired' | 'already-decided' | 'not-applied' | 'unknown-step'; message: string; plan: PlanRecord | null };

export async function approvePlan(
  rt: Runtime,
  rules: ApprovalRules,
  planId: string,
  userId: string,
  now = new Date(),
  /** Optional steps (NOTRACK, deleting idle entries) to include: their ids, or all of them. */
  opts: { optionalSteps?: readonly string[] | 'all' } = {},
): Promise<DecisionOutcome> {
  const plan = await rt.plans.get(planId);
  if (!plan) return { ok: false, reason: 'unknown-plan', message: 'This plan does not exist (any more). Run `/conntrack check <gateway>` again.', plan: null };
  const allowed = await rules.canApprove(userId, plan.requestedBy);
  if (!allowed.allowed) return { ok: false, reason: 'denied', message: allowed.reason, plan };
  // Optional steps run only when the approver chose them, and only steps this plan offers.
  const offered = approvableOptionalSteps(plan.report.plan.steps).map((s) => s.id);
  const chosen = opts.optionalSteps === 'all' ? offered : [...new Set(opts.optionalSteps ?? [])];
  const foreign = chosen.filter((id) => !offered.includes(id));
  if (foreign.length) {
    return { ok: false, reason: 'unknown-step', message: `This plan has no optional step ${foreign.join(', ')}. Nothing was done.`, plan };
  }
  const optional = offered.filter((id) => chosen.includes(id));
  const job: ApplyJob = { action: 'apply', planId, gateway: plan.gateway, decidedBy: userId, origin: plan.origin, ...(optional.length ? { steps: optional } : {}) };
  // The approval and its apply job's outbox entry are one atomic write: a crash before the
  // enqueue below leaves the entry, and the sweep queues the same job id (never twice).
  const outbox = new ApplyOutbox(rt.redis, rt.env.QUEUE_PREFIX);
  const t = await rt.plans.transition(planId, ['pending'], 'approved', { actor: userId, checkExpiry: true, now, also: outbox.entry(job, now.getTime()) });
  if (!t.ok) {
    if (t.current === 'expired') {
      await rt.history.record({ at: now.toISOString(), gateway: plan.gateway, event: 'expired', actor: userId, planId, summary: 'approve attempted after expiry' });
      return { ok: false, reason: 'expired', message: `This plan expired at ${plan.expiresAt}. The gateway may have changed: run \`/conntrack check ${plan.gateway}\` again.`, plan };
    }
    const fresh = await rt.plans.get(planId);
    return { ok: false, reason: 'already-decided', message: `This plan is already *${t.current}*${fresh?.decidedBy ? ` (by ${fresh.decidedBy})` : ''}. Nothing was done.`, plan: fresh ?? plan };
  }
  const jobId = await enqueueApply(rt.queues, job);
  await outbox.done(planId);
  await rt.history.record({ at: now.toISOString(), gateway: plan.gateway, event: 'approved', actor: userId, planId, summary: `apply queued${optional.length ? ` with optional steps: ${optional.join(', ')}` : ' (default steps)'}` });
  return { ok: true, plan: { ...plan, status: 'approved', decidedBy: userId, decidedAt: now.toISOString() }, at: now.toISOString(), jobId };
}

export async function rejectPlan(rt: Runtime, rules: ApprovalRules, planId: string, userId: string, now = new Date()): Promise<DecisionOutcome> {
  const plan = await rt.plans.get(planId);
  if (!plan) return { ok: false, reason: 'unknown-plan', message: 'This plan does not exist (any more).', plan: null };
  // The requester may withdraw their own plan; otherwise only approvers decide.
  if (userId !== plan.requestedBy && !(await rules.isApprover(userId))) {
    return { ok: false, reason: 'denied', message: 'Only approvers (or the requester) can reject a plan.', plan };
  }
  const t = await rt.plans.transition(planId, ['pending'], 'rejected', { actor: userId, now });
  if (!t.ok) return { ok: false, reason: 'already-decided', message: `This plan is already *${t.current}*. Nothing was done.`, plan };
  await rt.history.record({ at: now.toISOString(), gateway: plan.gateway, event: 'rejected', actor: userId, planId, summary: 'plan rejected; nothing changed' });
  return { ok: true, plan: { ...plan, status: 'rejected', decidedBy: userId, decidedAt: now.toISOString() }, at: now.toISOString() };
}

export async function requestRollback(rt: Runtime, rules: ApprovalRules, planId: string, userId: string, now = new Date()): Promise<DecisionOutcome> {
  const plan = await rt.plans.get(planId);
  if (!plan) return { ok: false, reason: 'unknown-plan', message: 'This plan does not exist (any more).', plan: null };
  if (!(await rules.isApprover(userId))) return { ok: false, reason: 'denied', message: 'Only approvers can roll back a change.', plan };
  if (plan.status !== 'applied' && plan.status !== 'apply-failed' && plan.status !== 'apply-interrupted' && plan.status !== 'rollback-failed') {
    return { ok: false, reason: 'not-applied', message: `Nothing to roll back: the plan is *${plan.status}*.`, plan };
  }
  // Clicks before the roll back runs share its job (and the engine's compare-and-set runs it once);
  // after a failed roll back the count has moved, so a retry is a job of its own.
  const attempt = await new ApplyRecordStore(rt.redis, rt.env.QUEUE_PREFIX).runs(planId, 'rollback');
  const jobId = await enqueueApply(rt.queues, { action: 'rollback', planId, gateway: plan.gateway, decidedBy: userId, origin: plan.origin, attempt });
  return { ok: true, plan, at: now.toISOString(), jobId };
}
