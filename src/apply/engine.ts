/**
 * Apply, verify and roll back an approved plan on its gateway.
 *
 *   lock the gateway -> take the plan's lease -> CAS approved -> applying
 *   -> pre-flight (refuse read-only keys, memory, drift) -> snapshot (stored in Redis
 *   before the first change) -> steps (state stored before/after each) -> verify
 *   -> applied | on a failing step: restore the snapshot, verify it -> apply-failed.
 *
 *   rollback: CAS applied|apply-failed -> rolling-back -> restore -> verify
 *   -> rolled-back | rollback-failed.
 *
 * Guards against applying twice: the plan state (CAS), a per-plan lease in Redis
 * checked by every state write, the gateway lock, and every step reads the current
 * value first (already at the proposal: "unchanged").
 */
import type { Inventory } from '../config/inventory.js';
import { findGateway } from '../config/inventory.js';
import type { ConntrackStats, PlanStep } from '../core/model.js';
import type { SessionLease, SessionProvider } from '../check/run-check.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import type { Origin } from '../queue/jobs.js';
import { enqueueCheck, type Queues } from '../queue/producer.js';
import type { GatewayLocks, HeldLock } from '../store/gateway-lock.js';
import type { HistoryStore } from '../store/history-store.js';
import type { PlanRecord, PlanStore } from '../store/plan-store.js';
import {
  readCount,
  readHashsize,
  readManaged,
  readState,
  readStats,
  readSysctl,
  readTableFullLines,
  removeManaged,
  setHashsize,
  setSysctl,
  writeManaged,
  type LiveState,
} from './gateway-io.js';
import { deleteIdleEntries } from './idle-delete.js';
import type {
  ApplyOutcome,
  ApplyStepState,
  FollowUp,
  ManagedFileSnapshot,
  OutcomeStatus,
  RestoreReport,
  RuleSnapshot,
  Snapshot,
  VerifyCheck,
  VerifyReport,
} from './model.js';
import {
  modprobeFileFor,
  parseModprobeHashsize,
  parseSysctlText,
  persistedHashsize,
  persistedSysctlValues,
  sysctlFileFor,
} from './persist.js';
import { preflight, sysctlKeysOfStep } from './preflight.js';
import { describeRule, ensureRule, readNft, removeRule, ruleExists, rulesOfStep } from './rules.js';
import { LeaseLostError, type ApplyLease, type ApplyRecordStore } from './store.js';

import { commands } from '../gateway/commands.js';

export interface ApplyEngineDeps {
  inventory: () => Inventory;
  sessions: SessionProvider;
  plans: PlanStore;
  history: HistoryStore;
  locks: GatewayLocks;
  records: ApplyRecordStore;
  /** For the delayed follow-up check; absent: no follow-up is scheduled. */
  queues?: Queues;
  /** Delay of the follow-up check (default 5 minutes). */
  followUpDelayMs?: number;
  /** The slow delete path (conntrack -R) refuses more candidates than this. */
  maxSlowDeletes?: number;
}

export interface ApplyOptions {
  actor: string;
  /** Ids of optional plan steps the approver included (NOTRACK, deletes). */
  optionalSteps?: readonly string[];
  origin?: Origin;
  onProgress?: (plan: PlanRecord, steps: ApplyStepState[]) => Promise<void> | void;
  /** Test hook: called after each step's state is stored (e.g. to kill the worker mid-apply). */
  afterStep?: (stepId: string) => Promise<void> | void;
}

export interface RollbackOptions {
  actor: string;
  onProgress?: (plan: PlanRecord, steps: ApplyStepState[]) => Promise<void> | void;
}

const ESTABLISHED = 'nf_conntrack_tcp_timeout_established';
/** Execution order by kind (plan order within a kind): values, then deletes, then files, then rules. */
const KIND_ORDER: Record<PlanStep['kind'], number> = {
  sysctl: 0,
  hashsize: 0,
  'delete-idle-entries': 1,
  'persist-sysctl': 2,
  'persist-modprobe': 2,
  'notrack-management': 3,
  'notrack-flow': 3,
};

function nowIso(): string {
  return new Date().toISOString();
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function initialState(step: PlanStep): ApplyStepState {
  return { stepId: step.id, kind: step.kind, key: step.key, status: 'pending', before: null, after: null, expected: step.proposed };
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
      const t = await this.deps.plans.transition(planId, ['approved'], 'applying', { actor: opts.actor });
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
    const all = plan.report.plan.steps;
    const chosen = new Set(opts.optionalSteps ?? []);
    const steps = all.map(initialState);
    const selected: PlanStep[] = [];
    all.forEach((step, i) => {
      const state = steps[i]!;
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

    let leaseSession: SessionLease;
    try {
      const config = findGateway(this.deps.inventory(), plan.gateway);
      leaseSession = await this.deps.sessions(plan.gateway, config);
    } catch (err) {
      await this.deps.records.saveSteps(planId, lease, steps);
      await this.deps.plans.transition(planId, ['applying'], 'apply-failed', { actor: opts.actor });
      const outcome = { ...this.bare(planId, plan.gateway, 'apply', 'refused', opts.actor, startedAt, `Cannot reach ${plan.gateway}: ${errMessage(err)}. Nothing was changed.`), steps };
      await this.finish(plan, lease, outcome, 'refused');
      return outcome;
    }
    const run = new Run(plan, lease, leaseSession.session, steps);
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
      if (problems.length > 0 || runnable.length === 0) {
        for (const s of run.steps) if (s.status === 'pending') s.status = 'not-run';
        await this.save(run);
        await this.deps.plans.transition(planId, ['applying'], 'apply-failed', { actor: opts.actor });
        const message =
          problems.length > 0
            ? `Pre-flight refused the apply of plan ${planId}; nothing was changed.`
            : `Nothing in plan ${planId} can be applied from this session; nothing was changed.`;
        const outcome: ApplyOutcome = {
          ...this.bare(planId, plan.gateway, 'apply', 'refused', opts.actor, startedAt, message),
          steps: run.steps,
          problems,
          notes: run.steps.filter((s) => s.status === 'refused' && s.detail).map((s) => `${s.key}: ${s.detail}`),
        };
        await this.finish(plan, lease, outcome, 'refused');
        return outcome;
      }

      const snapshot = await this.takeSnapshot(run.session, runnable, live, pre.count);
      await this.deps.records.saveSnapshot(planId, lease, snapshot);
      await this.save(run, opts.onProgress);

      const ordered = [...runnable].sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
      let failure: { step: PlanStep; error: string } | null = null;
      let deletes: VerifyReport['deletes'] = null;
      for (const step of ordered) {
        if (!lease.held()) throw new LeaseLostError(`lost the lease of plan ${planId} before ${step.id}`);
        const state = this.stateOf(run, step.id);
        state.status = 'running';
        await this.save(run, opts.onProgress);
        const t0 = performance.now();
        try {
          const r = await this.applyStep(run, step, snapshot, useSudo);
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
        if (failure) break;
      }

      if (failure) {
        for (const s of run.steps) if (s.status === 'pending') s.status = 'not-run';
        const restore = await this.restore(run, snapshot, runnable, 'restore after failure');
        await this.save(run, opts.onProgress);
        await this.deps.plans.transition(planId, ['applying'], 'apply-failed', { actor: opts.actor });
        const outcome: ApplyOutcome = {
          ...this.bare(
            planId,
            plan.gateway,
            'apply',
            'apply-failed',
            opts.actor,
            startedAt,
            `Step ${failure.step.id} (${failure.step.key}) failed: ${failure.error}. ` +
              (restore.ok ? 'The snapshot was restored and verified.' : 'The restore did NOT fully succeed: see the restore checks; the gateway needs attention.'),
          ),
          steps: run.steps,
          restore,
          verify: restore.checks,
          notes: restore.notes,
          canRollBack: !restore.ok,
        };
        await this.finish(plan, lease, outcome, 'apply-failed');
        return outcome;
      }

      const verifyReport = await this.verify(run, snapshot, deletes);
      const followUp = await this.scheduleFollowUp(plan, lease, opts, verifyReport);
      await this.deps.plans.transition(planId, ['applying'], 'applied', { actor: opts.actor });
      const changed = run.steps.filter((s) => s.status === 'applied').length;
      const unchanged = run.steps.filter((s) => s.status === 'unchanged').length;
      const outcome: ApplyOutcome = {
        ...this.bare(
          planId,
          plan.gateway,
          'apply',
          'applied',
          opts.actor,
          startedAt,
          `Applied plan ${planId}: ${changed} step(s) changed, ${unchanged} already in place` +
            (verifyReport.ok ? '; verified.' : '; VERIFY FOUND PROBLEMS (see the checks).'),
        ),
        steps: run.steps,
        verify: verifyReport.checks,
        verifyReport,
        notes: run.steps.filter((s) => (s.status === 'refused' || s.status === 'skipped') && s.detail).map((s) => `${s.key}: ${s.detail}`),
        canRollBack: true,
        followUp,
      };
      await this.finish(plan, lease, outcome, 'applied');
      return outcome;
    } catch (err) {
      // Lease lost or an unexpected error outside a step: report what is known, change nothing more.
      for (const s of run.steps) if (s.status === 'running') s.status = 'unknown';
      for (const s of run.steps) if (s.status === 'pending') s.status = 'not-run';
      const snapshot = await this.deps.records.snapshot(planId).catch(() => null);
      const ours = !(err instanceof LeaseLostError);
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

  private stateOf(run: Run, stepId: string): ApplyStepState {
    const s = run.steps.find((x) => x.stepId === stepId);
    if (!s) throw new Error(`no state for step ${stepId}`);
    return s;
  }

  private async save(run: Run, onProgress?: ApplyOptions['onProgress']): Promise<void> {
    await this.deps.records.saveSteps(run.plan.planId, run.lease, run.steps);
    await onProgress?.(run.plan, run.steps.map((s) => ({ ...s })));
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

  // ------------------------------------------------------------------ snapshot

  private async takeSnapshot(session: GatewaySession, steps: PlanStep[], live: LiveState, count: number): Promise<Snapshot> {
    const sysctl: Record<string, number> = {};
    for (const step of steps) {
      for (const key of sysctlKeysOfStep(step)) {
        const v = live.sysctl[key];
        if (v !== undefined) sysctl[key] = v;
      }
    }
    const touchesFile = (kind: PlanStep['kind']) => steps.some((s) => s.kind === kind);
    const rules: RuleSnapshot[] = [];
    let nftTableExisted: boolean | null = null;
    for (const step of steps) {
      if (step.kind !== 'notrack-management' && step.kind !== 'notrack-flow') continue;
      const { backend, rules: list } = rulesOfStep(step);
      const nft = backend === 'nft' ? await readNft(session) : undefined;
      if (nft && nftTableExisted === null) nftTableExisted = nft.exists;
      for (const rule of list) rules.push({ stepId: step.id, backend, rule, existed: await ruleExists(session, backend, rule, nft) });
    }
    return {
      takenAt: nowIso(),
      sysctl,
      hashsize: live.hashsize,
      files: {
        sysctl: touchesFile('persist-sysctl') ? await readManaged(session, 'sysctl') : null,
        modprobe: touchesFile('persist-modprobe') ? await readManaged(session, 'modprobe') : null,
      },
      rules,
      nftTableExisted,
      count,
      max: live.sysctl['nf_conntrack_max'] ?? 0,
      stats: await readStats(session),
      tableFullLines: await readTableFullLines(session),
    };
  }

  // ------------------------------------------------------------------ steps

  private async applyStep(
    run: Run,
    step: PlanStep,
    snapshot: Snapshot,
    useSudo: boolean,
  ): Promise<{ changed: boolean; before: string; after: string; detail?: string; deletes?: VerifyReport['deletes'] }> {
    const s = run.session;
    const planId = run.plan.planId;
    switch (step.kind) {
      case 'sysctl': {
        const proposed = Number(step.proposed);
        const before = await readSysctl(s, step.key);
        if (before === proposed) return { changed: false, before: String(before), after: String(before) };
        const after = await setSysctl(s, step.key, proposed);
        return { changed: true, before: String(before), after: String(after) };
      }
      case 'hashsize': {
        const proposed = Number(step.proposed);
        const before = await readHashsize(s);
        if (before === proposed) return { changed: false, before: String(before), after: String(before) };
        const after = await setHashsize(s, proposed);
        return { changed: true, before: String(before), after: String(after) };
      }
      case 'persist-sysctl': {
        const values = persistedSysctlValues(step);
        const current = await readManaged(s, 'sysctl');
        const currentValues = current.content ? safeSysctlValues(current.content) : null;
        const same = currentValues !== null && currentValues.size === values.size && [...values].every(([k, v]) => currentValues.get(k) === v);
        const liveSame = await allLive(s, values);
        const before = current.exists ? describeValues(currentValues) : 'absent';
        if (same && liveSame) return { changed: false, before, after: before, detail: `${current.path} already has these values` };
        if (!same) await writeManaged(s, 'sysctl', sysctlFileFor(planId, values));
        // Load only our file, never `sysctl --system`; its exit status is not trusted: read back.
        await s.exec(commands.loadSysctlFile(), { allowFailure: true, timeoutMs: 15_000 });
        const mismatches: string[] = [];
        for (const [k, v] of values) {
          const back = await readSysctl(s, k);
          if (back !== v) mismatches.push(`${k}: file ${v}, kernel ${back}`);
        }
        if (mismatches.length) throw new Error(`sysctl -p ${current.path} did not take: ${mismatches.join('; ')}`);
        return { changed: !same, before, after: describeValues(values), detail: `written and loaded with sysctl -p ${current.path}` };
      }
      case 'persist-modprobe': {
        const hashsize = persistedHashsize(step);
        const current = await readManaged(s, 'modprobe');
        const currentHashsize = parseModprobeHashsize(current.content);
        const before = current.exists ? `hashsize=${currentHashsize ?? '(none)'}` : 'absent';
        if (currentHashsize === hashsize) return { changed: false, before, after: before };
        await writeManaged(s, 'modprobe', modprobeFileFor(planId, hashsize));
        return { changed: true, before, after: `hashsize=${hashsize}`, detail: 'takes effect at the next load of nf_conntrack (boot)' };
      }
      case 'notrack-management':
      case 'notrack-flow': {
        const { backend, rules } = rulesOfStep(step);
        let added = 0;
        for (const rule of rules) if (await ensureRule(s, backend, rule)) added += 1;
        return {
          changed: added > 0,
          before: `${rules.length - added}/${rules.length} rules present`,
          after: `${rules.length}/${rules.length} rules present`,
          detail: rules.map((r) => describeRule(backend, r)).join('\n'),
        };
      }
      case 'delete-idle-entries': {
        const newTimeout = Number(step.params['idleAtLeastSeconds']);
        const oldTimeout = snapshot.sysctl[ESTABLISHED];
        if (!Number.isFinite(newTimeout) || newTimeout <= 0 || oldTimeout === undefined) throw new Error('delete step without idleAtLeastSeconds or a snapshot of the ESTABLISHED timeout');
        const liveTimeout = await readSysctl(s, ESTABLISHED);
        if (liveTimeout > newTimeout) throw new Error(`the ESTABLISHED timeout is ${liveTimeout}, not lowered to ${newTimeout}: refusing to delete`);
        if (oldTimeout <= newTimeout) {
          return { changed: false, before: 'no entry on an older timer', after: 'unchanged', detail: `the ESTABLISHED timeout was already ${oldTimeout} s before this apply: nothing is on a longer timer` };
        }
        const state = await readState(s);
        const report = await deleteIdleEntries(s, {
          oldTimeout,
          newTimeout,
          method: !useSudo && state.hasPython3 ? 'netlink' : 'conntrack-R',
          maxSlowDeletes: this.deps.maxSlowDeletes,
        });
        if (report.failed > 0) throw new Error(`${report.failed} of ${report.candidates} deletes failed (${report.deleted} deleted)`);
        return {
          changed: report.deleted > 0,
          before: `${report.countBefore} entries`,
          after: `${report.countAfter} entries`,
          detail:
            `${report.deleted} of ${report.candidates} idle ESTABLISHED entries deleted by exact tuple (${report.method}, ${report.durationMs} ms; ` +
            `${report.missing} already gone; selection ${report.rule})`,
          deletes: report,
        };
      }
    }
  }

  // ------------------------------------------------------------------ verify

  private async verify(run: Run, snapshot: Snapshot, deletes: VerifyReport['deletes']): Promise<VerifyReport> {
    const s = run.session;
    const checks: VerifyCheck[] = [];
    const plan = run.plan.report.plan.steps;
    const live = await readState(s);
    for (const state of run.steps) {
      if (state.status !== 'applied' && state.status !== 'unchanged') continue;
      const step = plan.find((p) => p.id === state.stepId);
      if (!step) continue;
      if (step.kind === 'sysctl') {
        const v = live.sysctl[step.key];
        checks.push({ name: step.key, ok: v === Number(step.proposed), detail: `${snapshot.sysctl[step.key] ?? '?'} -> ${v ?? '?'} (wanted ${step.proposed})` });
      } else if (step.kind === 'hashsize') {
        checks.push({ name: 'hashsize', ok: live.hashsize === Number(step.proposed), detail: `${snapshot.hashsize ?? '?'} -> ${live.hashsize ?? '?'} (wanted ${step.proposed})` });
      } else if (step.kind === 'persist-sysctl' || step.kind === 'persist-modprobe') {
        const which = step.kind === 'persist-sysctl' ? 'sysctl' : 'modprobe';
        const file = await readManaged(s, which);
        const ok =
          which === 'sysctl'
            ? file.content !== null && sameMap(safeSysctlValues(file.content), persistedSysctlValues(step))
            : parseModprobeHashsize(file.content) === persistedHashsize(step);
        checks.push({ name: file.path, ok, detail: ok ? 'present with the approved values' : 'missing or different' });
      } else if (step.kind === 'notrack-management' || step.kind === 'notrack-flow') {
        const { backend, rules } = rulesOfStep(step);
        const nft = backend === 'nft' ? await readNft(s) : undefined;
        let present = 0;
        for (const r of rules) if (await ruleExists(s, backend, r, nft)) present += 1;
        checks.push({ name: step.id, ok: present === rules.length, detail: `${present}/${rules.length} NOTRACK rules present (${backend})` });
      }
    }
    const count = await readCount(s);
    const max = live.sysctl['nf_conntrack_max'] ?? 0;
    checks.push({ name: 'count/max', ok: max === 0 ? true : count < max, detail: `${snapshot.count}/${snapshot.max} -> ${count}/${max} (${max ? Math.round((count / max) * 1000) / 10 : 0}%)` });
    const statsAfter = await readStats(s);
    let drops: VerifyReport['drops'] = null;
    if (snapshot.stats && statsAfter) {
      drops = {
        before: snapshot.stats,
        after: statsAfter,
        drop: statsAfter.drop - snapshot.stats.drop,
        earlyDrop: statsAfter.early_drop - snapshot.stats.early_drop,
        insertFailed: statsAfter.insert_failed - snapshot.stats.insert_failed,
      };
      checks.push({ name: 'drops since the snapshot', ok: true, detail: `drop +${drops.drop}, early_drop +${drops.earlyDrop}, insert_failed +${drops.insertFailed} (conntrack -S)` });
    }
    const seen = new Set(snapshot.tableFullLines);
    const newLines = (await readTableFullLines(s)).filter((l) => !seen.has(l)).length;
    checks.push({ name: '"table full" lines since the snapshot', ok: true, detail: String(newLines) });
    if (deletes) {
      checks.push({
        name: 'idle entries deleted',
        ok: deletes.failed === 0,
        detail: `${deletes.deleted}/${deletes.candidates} deleted; count ${deletes.countBefore} -> ${deletes.countAfter}`,
      });
    }
    return {
      at: nowIso(),
      gatewayAt: new Date(live.now * 1000).toISOString(),
      checks,
      count: { before: snapshot.count, after: count },
      max: { before: snapshot.max, after: max },
      drops,
      newTableFullLines: newLines,
      deletes,
      ok: checks.every((c) => c.ok || c.name === 'count/max'),
    };
  }

  private async scheduleFollowUp(plan: PlanRecord, lease: ApplyLease, opts: ApplyOptions, v: VerifyReport): Promise<FollowUp | null> {
    if (!this.deps.queues) return null;
    const delayMs = this.deps.followUpDelayMs ?? 5 * 60_000;
    const jobId = await enqueueCheck(
      this.deps.queues,
      {
        gateway: plan.gateway,
        requestedBy: opts.actor,
        requestId: `followup-${plan.planId}`,
        origin: followUpOrigin(plan, opts.origin ?? plan.origin),
        followUpOf: plan.planId,
      },
      { delayMs },
    );
    const followUp: FollowUp = {
      jobId,
      dueAt: new Date(Date.now() + delayMs).toISOString(),
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

  /**
   * Put back everything in the snapshot that the given steps touch, newest first:
   * rules added, files, values. Deleted conntrack entries cannot come back (said in notes).
   */
  private async restore(run: Run, snapshot: Snapshot, steps: PlanStep[], label: string): Promise<RestoreReport> {
    const s = run.session;
    const notes: string[] = [];
    const errors: string[] = [];
    const attempt = async (what: string, work: () => Promise<void>): Promise<void> => {
      try {
        await work();
      } catch (err) {
        errors.push(`${what}: ${errMessage(err)}`);
      }
    };
    const stepIds = new Set(steps.map((x) => x.id));
    const touched = (stepId: string) => {
      const st = run.steps.find((x) => x.stepId === stepId);
      return st !== undefined && st.status !== 'skipped' && st.status !== 'refused' && st.status !== 'not-run' && st.status !== 'pending';
    };

    // Rules: remove only the ones that were not there before.
    for (const r of snapshot.rules) {
      if (r.existed || !stepIds.has(r.stepId)) continue;
      await attempt(describeRule(r.backend, r.rule), async () => {
        await removeRule(s, r.backend, r.rule);
      });
    }
    if (snapshot.nftTableExisted === false) {
      await attempt('nft table conntrack_ops', async () => {
        const nft = await readNft(s);
        if (nft.exists && nft.rules.length === 0) await s.exec(commands.nftDeleteTable(), { timeoutMs: 15_000 });
        else if (nft.exists) notes.push('nft table inet conntrack_ops kept: it holds rules added after this plan');
      });
    }
    // Files.
    for (const [which, snap] of [
      ['sysctl', snapshot.files.sysctl],
      ['modprobe', snapshot.files.modprobe],
    ] as const) {
      if (!snap) continue;
      await attempt(snap.path, async () => {
        await restoreFile(s, which, snap);
      });
    }
    // Values (hash size first back down is fine: the kernel rehashes online).
    for (const [key, value] of Object.entries(snapshot.sysctl)) {
      await attempt(key, async () => {
        const now = await readSysctl(s, key);
        if (now !== value) await setSysctl(s, key, value);
      });
    }
    if (steps.some((x) => x.kind === 'hashsize') && snapshot.hashsize !== null) {
      const hs = snapshot.hashsize;
      await attempt('hashsize', async () => {
        const now = await readHashsize(s);
        if (now !== hs) await setHashsize(s, hs);
      });
    }
    if (steps.some((x) => x.kind === 'delete-idle-entries') && run.steps.some((x) => x.kind === 'delete-idle-entries' && x.status === 'applied')) {
      notes.push('Deleted conntrack entries cannot be restored: a connection that was still alive re-creates its entry with its next packet.');
    }

    // Verify the restore against the snapshot.
    const checks = await this.verifyRestore(s, snapshot, steps);
    for (const st of run.steps) {
      if (!stepIds.has(st.stepId) || !touched(st.stepId)) continue;
      if (st.kind === 'delete-idle-entries') continue;
      const bad = checks.find((c) => !c.ok && relatedCheck(c.name, st, steps));
      if (st.status === 'applied' || st.status === 'unknown') {
        if (!bad) {
          st.status = 'rolled-back';
          st.after = st.before;
        }
      } else if (st.status === 'failed') {
        // Keep 'failed' (that is what happened); say whether its partial effect is undone.
        st.detail = `${st.detail ?? 'failed'}; ${bad ? 'its partial effect could NOT be undone' : 'its partial effect was undone by the restore'}`;
      }
    }
    const ok = errors.length === 0 && checks.every((c) => c.ok);
    for (const e of errors) notes.push(`restore error: ${e}`);
    return {
      at: nowIso(),
      ok,
      steps: run.steps.map((x) => ({ ...x })),
      checks,
      notes: [`${label}: ${ok ? 'snapshot restored and verified' : 'INCOMPLETE'}`, ...notes],
    };
  }

  private async verifyRestore(s: GatewaySession, snapshot: Snapshot, steps: PlanStep[]): Promise<VerifyCheck[]> {
    const checks: VerifyCheck[] = [];
    for (const [key, value] of Object.entries(snapshot.sysctl)) {
      const now = await readSysctl(s, key).catch(() => null);
      checks.push({ name: key, ok: now === value, detail: `now ${now ?? '?'}, snapshot ${value}` });
    }
    if (steps.some((x) => x.kind === 'hashsize') && snapshot.hashsize !== null) {
      const now = await readHashsize(s);
      checks.push({ name: 'hashsize', ok: now === snapshot.hashsize, detail: `now ${now ?? '?'}, snapshot ${snapshot.hashsize}` });
    }
    for (const which of ['sysctl', 'modprobe'] as const) {
      const snap = snapshot.files[which];
      if (!snap) continue;
      const now = await readManaged(s, which);
      const ok = now.exists === snap.exists && (!snap.exists || now.content === snap.content);
      checks.push({ name: snap.path, ok, detail: snap.exists ? (ok ? 'previous content back' : 'content differs from the snapshot') : ok ? 'absent again' : 'still present' });
    }
    const stepIds = new Set(steps.map((x) => x.id));
    for (const r of snapshot.rules) {
      if (!stepIds.has(r.stepId)) continue;
      const present = await ruleExists(s, r.backend, r.rule).catch(() => null);
      checks.push({ name: `rule ${r.stepId} ${r.rule.chain}`, ok: present === r.existed, detail: `${describeRule(r.backend, r.rule)}: ${present ? 'present' : 'absent'} (snapshot: ${r.existed ? 'present' : 'absent'})` });
    }
    return checks;
  }

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
    const snapshot = await this.deps.records.snapshot(planId);
    if (!snapshot) {
      return this.bare(planId, plan.gateway, 'rollback', 'not-allowed', opts.actor, startedAt, `Plan ${planId} has no snapshot: it never changed the gateway, nothing to roll back.`);
    }
    const lease = await this.deps.records.acquire(planId);
    if (!lease) return this.bare(planId, plan.gateway, 'rollback', 'busy', opts.actor, startedAt, `Another run of plan ${planId} is in progress.`);
    try {
      const t = await this.deps.plans.transition(planId, ['applied', 'apply-failed'], 'rolling-back', { actor: opts.actor });
      if (!t.ok) {
        const status: OutcomeStatus = t.current === 'rolled-back' ? 'rolled-back' : 'not-allowed';
        return this.bare(planId, plan.gateway, 'rollback', status === 'rolled-back' ? 'not-allowed' : status, opts.actor, startedAt, `Plan ${planId} is ${t.current}: nothing to roll back.`);
      }
      await this.deps.records.countRun(planId, 'rollback');
      const stored = (await this.deps.records.steps(planId)) ?? [];
      const config = findGateway(this.deps.inventory(), plan.gateway);
      const leaseSession = await this.deps.sessions(plan.gateway, config);
      try {
        const all = plan.report.plan.steps;
        const snapshotted = all.filter((st) => stored.some((x) => x.stepId === st.id && x.status !== 'skipped' && x.status !== 'refused' && x.status !== 'not-run'));
        const steps = all.map((st) => stored.find((x) => x.stepId === st.id) ?? initialState(st));
        const run = new Run(plan, lease, leaseSession.session, steps);
        // Values someone changed after the apply are restored too; say so.
        const notes: string[] = [];
        for (const st of snapshotted) {
          if (st.kind !== 'sysctl') continue;
          const now = await readSysctl(run.session, st.key).catch(() => null);
          if (now !== null && now !== Number(st.proposed) && now !== snapshot.sysctl[st.key]) {
            notes.push(`${st.key} was ${now} (changed after this apply, which set ${st.proposed}); restored to ${snapshot.sysctl[st.key]}`);
          }
        }
        const restore = await this.restore(run, snapshot, snapshotted, 'roll back');
        await this.deps.records.saveSteps(planId, lease, run.steps);
        await opts.onProgress?.(plan, run.steps);
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
          canRollBack: false,
        };
        await this.finish(plan, lease, outcome, restore.ok ? 'rolled-back' : 'rollback-failed');
        return outcome;
      } finally {
        leaseSession.release();
      }
    } catch (err) {
      await this.deps.plans.transition(planId, ['rolling-back'], 'rollback-failed', { actor: opts.actor }).catch(() => undefined);
      const outcome = this.bare(planId, plan.gateway, 'rollback', 'rollback-failed', opts.actor, startedAt, `Roll back of plan ${planId} failed: ${errMessage(err)}`);
      await this.finish(plan, lease, outcome, 'rollback-failed').catch(() => undefined);
      return outcome;
    } finally {
      await lease.release();
    }
  }
}

function relatedCheck(checkName: string, st: ApplyStepState, steps: PlanStep[]): boolean {
  const step = steps.find((x) => x.id === st.stepId);
  if (!step) return false;
  if (step.kind === 'sysctl') return checkName === step.key;
  if (step.kind === 'hashsize') return checkName === 'hashsize';
  if (step.kind === 'persist-sysctl' || step.kind === 'persist-modprobe') return checkName === step.key || checkName.startsWith('/etc/');
  return checkName.startsWith(`rule ${step.id} `);
}

async function restoreFile(s: GatewaySession, which: 'sysctl' | 'modprobe', snap: ManagedFileSnapshot): Promise<void> {
  const now = await readManaged(s, which);
  if (!snap.exists) {
    if (now.exists) await removeManaged(s, which);
    return;
  }
  if (now.content !== snap.content) await writeManaged(s, which, snap.content ?? '');
}

function safeSysctlValues(text: string): Map<string, number> | null {
  try {
    return parseSysctlText(text);
  } catch {
    return null;
  }
}

function sameMap(a: Map<string, number> | null, b: Map<string, number>): boolean {
  return a !== null && a.size === b.size && [...b].every(([k, v]) => a.get(k) === v);
}

function describeValues(values: Map<string, number> | null): string {
  if (!values) return 'present (not parseable)';
  return [...values].map(([k, v]) => `${k}=${v}`).join(', ') || 'empty';
}

async function allLive(s: GatewaySession, values: Map<string, number>): Promise<boolean> {
  for (const [k, v] of values) if ((await readSysctl(s, k)) !== v) return false;
  return true;
}

/** A follow-up from Slack goes into the thread of the applied plan's message. */
function followUpOrigin(plan: PlanRecord, origin: Origin): Origin {
  if (origin.kind !== 'slack' || !plan.message) return origin;
  return { kind: 'slack', channel: plan.message.channel, threadTs: origin.threadTs ?? plan.message.ts };
}
