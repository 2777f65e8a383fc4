/**
 * Apply, verify and roll back an approved plan on its gateway.
 *
 *   lock the gateway -> take the plan's lease -> CAS approved -> applying
 *   -> pre-flight (refuse read-only keys, memory, drift) -> snapshot (a copy on the gateway,
 *   then Redis, before the first change; gateway-snapshot.ts) -> steps (state stored before/after each) -> verify
 *   -> applied | on a failing step, a failed verify or any error after the snapshot:
 *   restore the snapshot, verify it -> apply-failed. Progress messages are best effort.
 *
 *   rollback: CAS applied|apply-failed|rollback-failed -> rolling-back -> restore -> verify
 *   -> rolled-back | rollback-failed (which can be rolled back again).
 *
 * What each step does (its pre-flight, snapshot, change, verify and restore) is its kind's
 * module (steps/registry.ts); this file only sequences the states.
 *
 * Guards against applying twice: the plan state (CAS), a per-plan lease in Redis
 * checked by every state write, the gateway lock, and every step reads the current
 * value first (already at the proposal: "unchanged").
 */
import type { Inventory } from '../config/inventory.js';
import { findGateway } from '../config/inventory.js';
import type { PlanStep } from '../core/model.js';
import type { SessionLease, SessionProvider } from '../gateway/session-provider.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import type { GatewayLocks, HeldLock } from '../store/gateway-lock.js';
import { logger } from '../infra/logger.js';
import { metrics } from '../metrics/registry.js';
import type { HistoryStore } from '../store/history-store.js';
import type { PlanRecord, PlanStore } from '../store/plan-store.js';
import type { FollowUpScheduler } from './follow-up.js';
import { readState } from './gateway-io.js';
import { dropGatewaySnapshot, keepGatewaySnapshot, snapshotForRollback } from './gateway-snapshot.js';
import type { ApplyOutcome, ApplyStepState, FollowUp, OutcomeStatus, Snapshot, VerifyReport } from './model.js';
import { preflight } from './preflight.js';
import { restoreSnapshot } from './restore.js';
import { rollbackRefusal } from './rollback-guard.js';
import { takeSnapshot } from './snapshot.js';
import { inApplyOrder, stepModule } from './steps/registry.js';
import { LeaseLostError, type ApplyLease, type ApplyRecordStore } from './store.js';
import { verifyApply } from './verify.js';

export interface ApplyEngineDeps {
  inventory: () => Inventory;
  sessions: SessionProvider;
  plans: PlanStore;
  history: HistoryStore;
  locks: GatewayLocks;
  records: ApplyRecordStore;
  /** Queues the check that says, a few minutes after the verify, whether the drops stopped; absent: none. */
  followUps?: FollowUpScheduler;
  /** The slow delete path (conntrack -R) refuses more candidates than this. */
  maxSlowDeletes?: number;
}

export interface ApplyOptions {
  actor: string;
  /** Ids of optional plan steps the approver included (NOTRACK, deletes). */
  optionalSteps?: readonly string[];
  /** Where the approval came from (the follow-up reports there); default: where the plan was requested. */
  origin?: PlanRecord['origin'];
  onProgress?: (plan: PlanRecord, steps: ApplyStepState[]) => Promise<void> | void;
  /** Test hook: called after each step's state is stored (e.g. to kill the worker mid-apply). */
  afterStep?: (stepId: string) => Promise<void> | void;
}

export interface RollbackOptions {
  actor: string;
  onProgress?: (plan: PlanRecord, steps: ApplyStepState[]) => Promise<void> | void;
}

function nowIso(): string {
  return new Date().toISOString();
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function initialState(step: PlanStep): ApplyStepState {
  return { stepId: step.id, kind: step.kind, key: step.key, status: 'pending', before: null, after: null, expected: step.proposed };
}

interface StepFailure {
  /** The step that failed; null: the run failed outside a step (an error, a failed verify). */
  step: PlanStep | null;
  error: string;
}

/** What the approver chose and the check said is writable here; the rest is skipped or refused now. */
function selectSteps(all: readonly PlanStep[], optionalSteps: readonly string[]): { states: ApplyStepState[]; selected: PlanStep[] } {
  const chosen = new Set(optionalSteps);
  const states = all.map(initialState);
  const selected: PlanStep[] = [];
  all.forEach((step, i) => {
    const state = states[i]!;
    if (step.optional && !chosen.has(step.id)) {
      state.status = 'skipped';
      state.detail = 'optional step, not selected by the approver';
    } else if (!step.writable) {
      state.status = 'refused';
      state.detail = `not writable from this session per the check; ${step.whereToChange ? `change it at: ${step.whereToChange}` : 'change it where the setting lives'}`;
    } else {
      selected.push(step);
    }
  });
  return { states, selected };
}

/**
 * Progress is best effort: a Slack error (message deleted, channel archived, 429, token
 * revoked) is logged and counted, never thrown into the run (it would skip the restore).
 */
async function tellProgress(onProgress: ApplyOptions['onProgress'], plan: PlanRecord, steps: readonly ApplyStepState[], action: 'apply' | 'rollback'): Promise<void> {
  if (!onProgress) return;
  try {
    await onProgress(plan, steps.map((s) => ({ ...s })));
  } catch (err) {
    metrics.applyPublishFailures.inc({ action, what: 'progress' });
    logger.warn({ plan: plan.planId, gateway: plan.gateway, err: errMessage(err) }, `${action} progress not shown (the ${action} goes on)`);
  }
}

class Run {
  readonly started = Date.now();
  readonly startedAt = nowIso();
  constructor(
    readonly plan: PlanRecord,
    readonly lease: ApplyLease,
    readonly session: GatewaySession,
    readonly steps: ApplyStepState[],
  ) {}
}

export class ApplyEngine {
  constructor(private readonly deps: ApplyEngineDeps) {}

  // ------------------------------------------------------------------ apply

  async apply(planId: string, opts: ApplyOptions): Promise<ApplyOutcome> {
    const startedAt = nowIso();
    const plan = await this.deps.plans.get(planId);
    if (!plan) return this.bare(planId, '?', 'apply', 'not-allowed', opts.actor, startedAt, `Plan ${planId} does not exist (any more).`);
    const lock = await this.deps.locks.tryAcquire(plan.gateway, `apply-${planId}`);
    if (!lock) {
      const holder = await this.deps.locks.holder(plan.gateway);
      return this.bare(planId, plan.gateway, 'apply', 'busy', opts.actor, startedAt, `Gateway ${plan.gateway} is busy (${holder ?? 'another job'}); try again when it finishes.`);
    }
    try {
      return await this.applyLocked(plan, opts, startedAt);
    } finally {
      await lock.release();
    }
  }

  private async applyLocked(plan: PlanRecord, opts: ApplyOptions, startedAt: string): Promise<ApplyOutcome> {
    const planId = plan.planId;
    const lease = await this.deps.records.acquire(planId);
    if (!lease) {
      return this.bare(planId, plan.gateway, 'apply', 'busy', opts.actor, startedAt, `Another run of plan ${planId} is in progress: nothing done.`);
    }
    try {
      // Expiry is checked again here: an approved plan that waited (a busy gateway, a queue) past it is not applied.
      const t = await this.deps.plans.transition(planId, ['approved'], 'applying', { actor: opts.actor, checkExpiry: true });
      if (!t.ok) return await this.notApproved(plan, t.current, opts.actor, startedAt, lease);
      await this.deps.records.markActive(planId);
      await this.deps.records.countRun(planId, 'apply');
      const outcome = await this.runApply(plan, lease, opts, startedAt);
      await this.deps.records.clearActive(planId);
      return outcome;
    } finally {
      await lease.release();
    }
  }

  /** The plan was not 'approved': report what it is, and detect an interrupted run. */
  private async notApproved(plan: PlanRecord, current: string, actor: string, startedAt: string, lease: ApplyLease): Promise<ApplyOutcome> {
    const planId = plan.planId;
    if (current === 'applying') {
      // We hold the lease, so the run that set 'applying' is gone: its worker died.
      return this.reportInterrupted(plan, actor, startedAt, lease);
    }
    if (current === 'expired') {
      const message = `Plan ${planId} expired at ${plan.expiresAt}, before its apply could start (it waited behind other work on ${plan.gateway}): nothing was applied. Run a new check for a fresh plan.`;
      if (plan.status === 'approved') await this.deps.history.record({ at: nowIso(), gateway: plan.gateway, event: 'expired', actor, planId, summary: 'approved, but expired before the apply started' });
      return this.bare(planId, plan.gateway, 'apply', 'not-allowed', actor, startedAt, message);
    }
    if (current === 'applied') {
      const previous = await this.deps.records.outcome(planId, 'apply');
      return {
        ...this.bare(planId, plan.gateway, 'apply', 'already-applied', actor, startedAt, `Plan ${planId} was already applied${previous ? ` at ${previous.at} by ${previous.by}` : ''}: nothing changed this time.`),
        steps: previous?.steps ?? [],
        canRollBack: (await this.deps.records.snapshot(planId)) !== null,
      };
    }
    return this.bare(planId, plan.gateway, 'apply', 'not-allowed', actor, startedAt, `Plan ${planId} is ${current}: only an approved plan is applied. Nothing done.`);
  }

  private async reportInterrupted(plan: PlanRecord, actor: string, startedAt: string, lease: ApplyLease): Promise<ApplyOutcome> {
    const planId = plan.planId;
    const stored = (await this.deps.records.steps(planId)) ?? plan.report.plan.steps.map(initialState);
    const steps = stored.map((s): ApplyStepState => {
      if (s.status === 'running') return { ...s, status: 'unknown', detail: 'the worker stopped while this step ran: read the gateway (or roll back) to know' };
      if (s.status === 'pending') return { ...s, status: 'not-run' };
      return s;
    });
    const snapshot = await this.deps.records.snapshot(planId);
    await this.deps.records.saveSteps(planId, lease, steps);
    await this.deps.plans.transition(planId, ['applying'], 'apply-failed', { actor });
    const changed = steps.filter((s) => s.status === 'applied').map((s) => s.key);
    const unknown = steps.filter((s) => s.status === 'unknown').map((s) => s.key);
    const message =
      `The apply of plan ${planId} was interrupted (its worker stopped) and was NOT re-run. ` +
      (changed.length ? `Applied before it stopped: ${changed.join(', ')}. ` : 'No step had completed. ') +
      (unknown.length ? `State unknown: ${unknown.join(', ')}. ` : '') +
      (snapshot ? 'The snapshot taken before the first change is stored: roll back restores it.' : 'No snapshot was stored: nothing had been changed.');
    const outcome: ApplyOutcome = {
      ...this.bare(planId, plan.gateway, 'apply', 'interrupted', actor, startedAt, message),
      steps,
      canRollBack: snapshot !== null,
    };
    await this.deps.records.saveOutcome(planId, lease, outcome);
    await this.deps.records.clearActive(planId);
    await this.deps.history.record({ at: nowIso(), gateway: plan.gateway, event: 'apply-failed', actor, planId, summary: `interrupted: ${changed.length} applied, ${unknown.length} unknown` });
    return outcome;
  }

  /** Runs whose worker died (plan still 'applying', no lease): report them honestly. */
  async reconcileInterrupted(actor = 'conntrack-ops'): Promise<ApplyOutcome[]> {
    const out: ApplyOutcome[] = [];
    for (const planId of await this.deps.records.active()) {
      if (await this.deps.records.leaseHeld(planId)) continue;
      const plan = await this.deps.plans.get(planId);
      if (!plan || plan.status !== 'applying') {
        await this.deps.records.clearActive(planId);
        continue;
      }
      const lease = await this.deps.records.acquire(planId);
      if (!lease) continue;
      try {
        out.push(await this.reportInterrupted(plan, actor, nowIso(), lease));
      } finally {
        await lease.release();
      }
    }
    return out;
  }

  private async runApply(plan: PlanRecord, lease: ApplyLease, opts: ApplyOptions, startedAt: string): Promise<ApplyOutcome> {
    const planId = plan.planId;
    const { states, selected } = selectSteps(plan.report.plan.steps, opts.optionalSteps ?? []);

    let leaseSession: SessionLease;
    try {
      const config = findGateway(this.deps.inventory(), plan.gateway);
      leaseSession = await this.deps.sessions(plan.gateway, config);
    } catch (err) {
      await this.deps.records.saveSteps(planId, lease, states);
      await this.deps.plans.transition(planId, ['applying'], 'apply-failed', { actor: opts.actor });
      const outcome = { ...this.bare(planId, plan.gateway, 'apply', 'refused', opts.actor, startedAt, `Cannot reach ${plan.gateway}: ${errMessage(err)}. Nothing was changed.`), steps: states };
      await this.finish(plan, lease, outcome, 'refused');
      return outcome;
    }
    const run = new Run(plan, lease, leaseSession.session, states);
    // Set once the snapshot is stored: from then on any failure restores it.
    let taken: { snapshot: Snapshot; runnable: readonly PlanStep[] } | null = null;
    try {
      const useSudo = findGateway(this.deps.inventory(), plan.gateway).sudo;
      const live = await readState(run.session);
      const pre = await preflight(run.session, plan, selected, live);
      const refusedNow = pre.verdicts.filter((v) => v.refusal !== null);
      for (const v of refusedNow) {
        const state = this.stateOf(run, v.step.id);
        state.status = 'refused';
        state.detail = v.refusal ?? undefined;
      }
      // A step the check believed writable but is not: the environment differs from the plan.
      const problems = [...pre.problems, ...refusedNow.map((v) => `${v.step.key}: ${v.refusal}`)];
      const runnable = pre.verdicts.filter((v) => v.refusal === null).map((v) => v.step);
      if (problems.length > 0 || runnable.length === 0) return await this.refusedAtPreflight(run, problems, opts, startedAt);

      const snapshot = await takeSnapshot(run.session, runnable, live, pre.count);
      // A copy on the gateway first (roll back must not depend on Redis alone); no copy, no change.
      await keepGatewaySnapshot(run.session, planId, plan.gateway, runnable, snapshot);
      await this.deps.records.saveSnapshot(planId, lease, snapshot);
      taken = { snapshot, runnable };
      await this.save(run, opts.onProgress);

      const { failure, deletes } = await this.runSteps(run, inApplyOrder(runnable), snapshot, useSudo, opts);
      if (failure) return await this.failedAndRestored(run, snapshot, runnable, failure, opts, startedAt);
      return await this.verified(run, snapshot, runnable, deletes, opts, startedAt);
    } catch (err) {
      // Lease lost or an unexpected error outside a step: report what is known, change nothing more.
      for (const s of run.steps) if (s.status === 'running') s.status = 'unknown';
      for (const s of run.steps) if (s.status === 'pending') s.status = 'not-run';
      const snapshot = await this.deps.records.snapshot(planId).catch(() => null);
      const ours = !(err instanceof LeaseLostError);
      if (ours && taken) {
        // The gateway may be half-changed: restore the snapshot and verify it (never leave it so).
        return await this.failedAndRestored(run, taken.snapshot, taken.runnable, { step: null, error: errMessage(err) }, opts, startedAt);
      }
      if (ours) {
        await this.save(run).catch(() => undefined);
        await this.deps.plans.transition(planId, ['applying'], 'apply-failed', { actor: opts.actor });
      }
      const outcome: ApplyOutcome = {
        ...this.bare(planId, plan.gateway, 'apply', 'apply-failed', opts.actor, startedAt, `The apply stopped: ${errMessage(err)}.` + (snapshot ? ' A snapshot is stored: roll back restores it.' : ' Nothing had been changed.')),
        steps: run.steps,
        canRollBack: snapshot !== null,
      };
      if (ours) await this.finish(plan, lease, outcome, 'apply-failed').catch(() => undefined);
      return outcome;
    } finally {
      leaseSession.release();
    }
  }

  /** Pre-flight said no (or nothing can run here): nothing was changed. */
  private async refusedAtPreflight(run: Run, problems: string[], opts: ApplyOptions, startedAt: string): Promise<ApplyOutcome> {
    const { plan } = run;
    for (const s of run.steps) if (s.status === 'pending') s.status = 'not-run';
    await this.save(run);
    await this.deps.plans.transition(plan.planId, ['applying'], 'apply-failed', { actor: opts.actor });
    const message =
      problems.length > 0
        ? `Pre-flight refused the apply of plan ${plan.planId}; nothing was changed.`
        : `Nothing in plan ${plan.planId} can be applied from this session; nothing was changed.`;
    const outcome: ApplyOutcome = {
      ...this.bare(plan.planId, plan.gateway, 'apply', 'refused', opts.actor, startedAt, message),
      steps: run.steps,
      problems,
      notes: run.steps.filter((s) => s.status === 'refused' && s.detail).map((s) => `${s.key}: ${s.detail}`),
    };
    await this.finish(plan, run.lease, outcome, 'refused');
    return outcome;
  }

  /** The steps in order, each one's state stored before and after it; stops at the first failure. */
  private async runSteps(
    run: Run,
    ordered: readonly PlanStep[],
    snapshot: Snapshot,
    useSudo: boolean,
    opts: ApplyOptions,
  ): Promise<{ failure: StepFailure | null; deletes: VerifyReport['deletes'] }> {
    let deletes: VerifyReport['deletes'] = null;
    for (const step of ordered) {
      if (!run.lease.held()) throw new LeaseLostError(`lost the lease of plan ${run.plan.planId} before ${step.id}`);
      const state = this.stateOf(run, step.id);
      state.status = 'running';
      await this.save(run, opts.onProgress);
      const t0 = performance.now();
      let failure: StepFailure | null = null;
      try {
        const r = await stepModule(step).apply(step, { session: run.session, planId: run.plan.planId, snapshot, useSudo, maxSlowDeletes: this.deps.maxSlowDeletes });
        state.status = r.changed ? 'applied' : 'unchanged';
        state.before = r.before;
        state.after = r.after;
        if (r.detail) state.detail = r.detail;
        if (r.deletes) deletes = r.deletes;
      } catch (err) {
        if (err instanceof LeaseLostError) throw err;
        state.status = 'failed';
        state.detail = errMessage(err);
        failure = { step, error: errMessage(err) };
      }
      state.durationMs = Math.round(performance.now() - t0);
      await this.save(run, opts.onProgress);
      await opts.afterStep?.(step.id);
      if (failure) return { failure, deletes };
    }
    return { failure: null, deletes };
  }

  /** A step failed: restore the snapshot for every runnable step and verify it. */
  private async failedAndRestored(run: Run, snapshot: Snapshot, runnable: readonly PlanStep[], failure: StepFailure, opts: ApplyOptions, startedAt: string): Promise<ApplyOutcome> {
    const { plan } = run;
    for (const s of run.steps) if (s.status === 'pending') s.status = 'not-run';
    const restore = await restoreSnapshot(run.session, snapshot, runnable, run.steps, 'restore after failure');
    if (restore.ok) restore.notes.push(...(await dropGatewaySnapshot(run.session, plan.planId)));
    await this.save(run, opts.onProgress);
    await this.deps.plans.transition(plan.planId, ['applying'], 'apply-failed', { actor: opts.actor });
    const message =
      (failure.step ? `Step ${failure.step.id} (${failure.step.key}) failed: ${failure.error}. ` : `The apply of plan ${plan.planId} stopped: ${failure.error}. `) +
      (restore.ok ? 'The snapshot was restored and verified.' : 'The restore did NOT fully succeed: see the restore checks; the gateway needs attention.');
    const outcome: ApplyOutcome = {
      ...this.bare(plan.planId, plan.gateway, 'apply', 'apply-failed', opts.actor, startedAt, message),
      steps: run.steps,
      restore,
      verify: restore.checks,
      notes: restore.notes,
      canRollBack: !restore.ok,
    };
    await this.finish(plan, run.lease, outcome, 'apply-failed');
    return outcome;
  }

  /** Every step ran: verify, schedule the follow-up, applied. */
  private async verified(run: Run, snapshot: Snapshot, runnable: readonly PlanStep[], deletes: VerifyReport['deletes'], opts: ApplyOptions, startedAt: string): Promise<ApplyOutcome> {
    const { plan } = run;
    const verifyReport = await verifyApply(run.session, plan.report.plan.steps, run.steps, snapshot, deletes);
    if (!verifyReport.ok) {
      // What the gateway holds is not what was approved: put back what was there.
      const failed = verifyReport.checks.filter((c) => !c.ok && c.name !== 'count/max').map((c) => `${c.name} (${c.detail})`);
      const outcome = await this.failedAndRestored(run, snapshot, runnable, { step: null, error: `the verify failed: ${failed.join('; ')}` }, opts, startedAt);
      return { ...outcome, verifyReport, verify: [...verifyReport.checks, ...outcome.verify] };
    }
    const followUpNotes: string[] = [];
    const followUp = await this.scheduleFollowUp(plan, run.lease, opts, verifyReport).catch((err: unknown) => {
      // The change is done and verified: a follow-up that cannot be queued does not undo it.
      logger.warn({ plan: plan.planId, gateway: plan.gateway, err: errMessage(err) }, 'follow-up check not scheduled');
      followUpNotes.push(`The follow-up check could not be scheduled (${errMessage(err)}): run \`check ${plan.gateway}\` in a few minutes to see whether the drops stopped.`);
      return null;
    });
    await this.deps.plans.transition(plan.planId, ['applying'], 'applied', { actor: opts.actor });
    const changed = run.steps.filter((s) => s.status === 'applied').length;
    const unchanged = run.steps.filter((s) => s.status === 'unchanged').length;
    const message =
      `Applied plan ${plan.planId}: ${changed} step(s) changed, ${unchanged} already in place` + (verifyReport.ok ? '; verified.' : '; VERIFY FOUND PROBLEMS (see the checks).');
    const outcome: ApplyOutcome = {
      ...this.bare(plan.planId, plan.gateway, 'apply', 'applied', opts.actor, startedAt, message),
      steps: run.steps,
      verify: verifyReport.checks,
      verifyReport,
      notes: [...run.steps.filter((s) => (s.status === 'refused' || s.status === 'skipped') && s.detail).map((s) => `${s.key}: ${s.detail}`), ...followUpNotes],
      canRollBack: true,
      followUp,
    };
    await this.finish(plan, run.lease, outcome, 'applied');
    return outcome;
  }

  private stateOf(run: Run, stepId: string): ApplyStepState {
    const s = run.steps.find((x) => x.stepId === stepId);
    if (!s) throw new Error(`no state for step ${stepId}`);
    return s;
  }

  private async save(run: Run, onProgress?: ApplyOptions['onProgress'], action: 'apply' | 'rollback' = 'apply'): Promise<void> {
    await this.deps.records.saveSteps(run.plan.planId, run.lease, run.steps);
    await tellProgress(onProgress, run.plan, run.steps, action);
  }

  private async finish(plan: PlanRecord, lease: ApplyLease, outcome: ApplyOutcome, event: 'applied' | 'apply-failed' | 'refused' | 'rolled-back' | 'rollback-failed'): Promise<void> {
    await this.deps.records.saveOutcome(plan.planId, lease, outcome);
    await this.deps.history.record({
      at: outcome.at,
      gateway: plan.gateway,
      event,
      actor: outcome.by,
      planId: plan.planId,
      summary: outcome.message.slice(0, 300),
    });
  }

  private bare(planId: string, gateway: string, action: 'apply' | 'rollback', status: OutcomeStatus, by: string, startedAt: string, message: string): ApplyOutcome {
    return {
      planId,
      gateway,
      action,
      outcome: status,
      by,
      startedAt,
      at: nowIso(),
      durationMs: Date.now() - Date.parse(startedAt),
      message,
      steps: [],
      problems: [],
      verify: [],
      verifyReport: null,
      restore: null,
      notes: [],
      canRollBack: false,
      followUp: null,
    };
  }

  private async scheduleFollowUp(plan: PlanRecord, lease: ApplyLease, opts: ApplyOptions, v: VerifyReport): Promise<FollowUp | null> {
    if (!this.deps.followUps) return null;
    const { jobId, dueAt } = await this.deps.followUps.schedule({ plan, actor: opts.actor, origin: opts.origin ?? plan.origin });
    const followUp: FollowUp = {
      jobId,
      dueAt,
      baseline: {
        at: v.at,
        gatewayAt: v.gatewayAt,
        drop: v.drops?.after.drop ?? 0,
        earlyDrop: v.drops?.after.early_drop ?? 0,
        insertFailed: v.drops?.after.insert_failed ?? 0,
        tableFullLines: v.newTableFullLines,
      },
    };
    await this.deps.records.saveFollowUp(plan.planId, lease, followUp);
    return followUp;
  }

  // ------------------------------------------------------------------ restore / roll back

  async rollback(planId: string, opts: RollbackOptions): Promise<ApplyOutcome> {
    const startedAt = nowIso();
    const plan = await this.deps.plans.get(planId);
    if (!plan) return this.bare(planId, '?', 'rollback', 'not-allowed', opts.actor, startedAt, `Plan ${planId} does not exist (any more).`);
    const lock = await this.deps.locks.tryAcquire(plan.gateway, `rollback-${planId}`);
    if (!lock) return this.bare(planId, plan.gateway, 'rollback', 'busy', opts.actor, startedAt, `Gateway ${plan.gateway} is busy; try again when it finishes.`);
    try {
      return await this.rollbackLocked(plan, opts, startedAt, lock);
    } finally {
      await lock.release();
    }
  }

  private async rollbackLocked(plan: PlanRecord, opts: RollbackOptions, startedAt: string, _lock: HeldLock): Promise<ApplyOutcome> {
    const planId = plan.planId;
    // Redis's snapshot, else the gateway's copy (Redis lost it).
    const found = await snapshotForRollback(() => this.deps.records.snapshot(planId), () => this.deps.sessions(plan.gateway, findGateway(this.deps.inventory(), plan.gateway)), planId);
    if (found.snapshot === null) return this.bare(planId, plan.gateway, 'rollback', 'not-allowed', opts.actor, startedAt, found.why);
    const snapshot = found.snapshot;
    const lease = await this.deps.records.acquire(planId);
    if (!lease) return this.bare(planId, plan.gateway, 'rollback', 'busy', opts.actor, startedAt, `Another run of plan ${planId} is in progress.`);
    try {
      const t = await this.deps.plans.transition(planId, ['applied', 'apply-failed', 'rollback-failed'], 'rolling-back', { actor: opts.actor });
      if (!t.ok) {
        const status: OutcomeStatus = t.current === 'rolled-back' ? 'rolled-back' : 'not-allowed';
        return this.bare(planId, plan.gateway, 'rollback', status === 'rolled-back' ? 'not-allowed' : status, opts.actor, startedAt, `Plan ${planId} is ${t.current}: nothing to roll back.`);
      }
      await this.deps.records.countRun(planId, 'rollback');
      const stored = (await this.deps.records.steps(planId)) ?? found.steps ?? [];
      const config = findGateway(this.deps.inventory(), plan.gateway);
      const leaseSession = await this.deps.sessions(plan.gateway, config);
      try {
        const all = plan.report.plan.steps;
        const snapshotted = all.filter((st) => stored.some((x) => x.stepId === st.id && x.status !== 'skipped' && x.status !== 'refused' && x.status !== 'not-run'));
        const steps = all.map((st) => stored.find((x) => x.stepId === st.id) ?? initialState(st));
        const run = new Run(plan, lease, leaseSession.session, steps);
        // What someone changed after the apply is restored too; say so.
        const notes: string[] = found.source === 'gateway' ? ["Redis had no snapshot of this plan: the gateway's copy was restored."] : [];
        for (const st of snapshotted) {
          const note = await stepModule(st).changedSinceApply(st, { session: run.session, snapshot });
          if (note) notes.push(note);
        }
        const refusal = await rollbackRefusal(this.deps, plan, snapshot, steps, run.session);
        if (refusal) {
          await this.deps.plans.transition(planId, ['rolling-back'], t.from, { actor: opts.actor });
          const refused = { ...this.bare(planId, plan.gateway, 'rollback', 'refused', opts.actor, startedAt, refusal), steps, canRollBack: true };
          await this.finish(plan, lease, refused, 'refused');
          return refused;
        }
        const restore = await restoreSnapshot(run.session, snapshot, snapshotted, run.steps, 'roll back');
        if (restore.ok) notes.push(...(await dropGatewaySnapshot(run.session, planId)));
        await this.save(run, opts.onProgress, 'rollback');
        await this.deps.plans.transition(planId, ['rolling-back'], restore.ok ? 'rolled-back' : 'rollback-failed', { actor: opts.actor });
        const outcome: ApplyOutcome = {
          ...this.bare(
            planId,
            plan.gateway,
            'rollback',
            restore.ok ? 'rolled-back' : 'rollback-failed',
            opts.actor,
            startedAt,
            restore.ok ? `Rolled back plan ${planId}: the snapshot of ${snapshot.takenAt} is restored and verified.` : `Roll back of plan ${planId} is INCOMPLETE: see the checks.`,
          ),
          steps: run.steps,
          restore,
          verify: restore.checks,
          notes: [...notes, ...restore.notes],
          // An incomplete roll back can be tried again (a new job per request).
          canRollBack: !restore.ok,
        };
        await this.finish(plan, lease, outcome, restore.ok ? 'rolled-back' : 'rollback-failed');
        return outcome;
      } finally {
        leaseSession.release();
      }
    } catch (err) {
      await this.deps.plans.transition(planId, ['rolling-back'], 'rollback-failed', { actor: opts.actor }).catch(() => undefined);
      const outcome = { ...this.bare(planId, plan.gateway, 'rollback', 'rollback-failed', opts.actor, startedAt, `Roll back of plan ${planId} failed: ${errMessage(err)}. Roll back can be tried again.`), canRollBack: true };
      await this.finish(plan, lease, outcome, 'rollback-failed').catch(() => undefined);
      return outcome;
    } finally {
      await lease.release();
    }
  }
}
