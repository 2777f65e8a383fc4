/**
 * One module per plan-step kind owns everything the write side does with that kind:
 * its pre-flight, what it snapshots, the change itself, the verify, the restore and
 * how an approver sees it. The engine (../engine.ts) only sequences them; the modules
 * are listed in ./registry.ts, keyed by kind, so a kind without a module does not compile.
 */
import type { PlanStep, PlanStepKind, PlanStepOf } from '../../core/model.js';
import type { GatewaySession } from '../../gateway/ssh-session.js';
import type { LiveState } from '../gateway-io.js';
import type { ApplyStepState, DeleteReport, RuleSnapshot, Snapshot, VerifyCheck } from '../model.js';

export interface PreflightContext {
  readonly session: GatewaySession;
  readonly live: LiveState;
  /** Entries in the table now. */
  readonly count: number;
  /** Every step selected for this apply (some checks depend on another step being part of it). */
  readonly selected: readonly PlanStep[];
  /** `test -w` as root (sudo when configured), asked once per key. */
  writable(key: string): Promise<boolean>;
  /** The hash size can change here (initial network namespace: nf_conntrack_max writable too). */
  hashsizeWritable(): Promise<boolean>;
  /** Root (CAP_NET_ADMIN) in the gateway's network namespace. */
  rootHere(): Promise<boolean>;
}

export interface PreflightVerdict {
  /** null: go ahead. Otherwise why the step cannot run here, and where to change it. */
  refusal: string | null;
  /** Problems that stop the whole apply (the gateway drifted from the plan: run a new check). */
  problems: string[];
}

/** The parts of the snapshot the steps fill in (the engine adds the counters and the kernel log). */
export interface SnapshotParts {
  sysctl: Record<string, number>;
  files: Snapshot['files'];
  rules: RuleSnapshot[];
  nftTableExisted: boolean | null;
}

export interface SnapshotContext {
  readonly session: GatewaySession;
  readonly live: LiveState;
  readonly parts: SnapshotParts;
}

export interface StepResult {
  changed: boolean;
  before: string;
  after: string;
  detail?: string;
  /** The delete step's report (shown with the verify). */
  deletes?: DeleteReport;
}

export interface ApplyContext {
  readonly session: GatewaySession;
  readonly planId: string;
  readonly snapshot: Snapshot;
  /** The gateway's user is not root: privileged commands run through sudo. */
  readonly useSudo: boolean;
  /** The slow delete path (conntrack -R) refuses more candidates than this. */
  readonly maxSlowDeletes?: number;
}

export interface VerifyContext {
  readonly session: GatewaySession;
  /** Read after every step ran. */
  readonly live: LiveState;
  readonly snapshot: Snapshot;
}

export interface RestoreContext {
  readonly session: GatewaySession;
  readonly snapshot: Snapshot;
  /** This step's state in the run (what it did). */
  readonly state: ApplyStepState;
  /** Said to people with the restore report. */
  readonly notes: string[];
  /** Run one undo action; its error is recorded and the restore goes on with the next. */
  attempt(what: string, work: () => Promise<void>): Promise<void>;
  /** Run `work` once, after every step's restore (e.g. drop a table several steps share). */
  afterAll(key: string, work: () => Promise<void>): void;
}

export interface RollbackContext {
  readonly session: GatewaySession;
  readonly snapshot: Snapshot;
}

/** How an approver sees an optional step: a checkbox text (<= 75 characters) and a sub-line. */
export interface StepDescription {
  text: string;
  description: string;
}

/** How most kinds describe a step to an approver: its key, with its id as the detail. */
export function describeByKey(step: { key: string; id: string }): StepDescription {
  return { text: step.key, description: step.id };
}

export interface StepModule<K extends PlanStepKind> {
  readonly kind: K;
  /** Apply order, ascending (plan order within one value): values, deletes, files, rules. Restores run in reverse. */
  readonly order: number;
  /** False when a restore cannot undo the step (deleted entries do not come back). */
  readonly reversible: boolean;
  /** An optional step of this kind is proposed as included when an approver is asked. */
  readonly includedByDefault: boolean;
  describe(step: PlanStepOf<K>): StepDescription;
  preflight(step: PlanStepOf<K>, ctx: PreflightContext): Promise<PreflightVerdict>;
  /** Record what the step may change, as it is now (before any step runs). */
  snapshot(step: PlanStepOf<K>, ctx: SnapshotContext): Promise<void>;
  apply(step: PlanStepOf<K>, ctx: ApplyContext): Promise<StepResult>;
  /** Read back after every step ran: is the step's effect in place? */
  verify(step: PlanStepOf<K>, ctx: VerifyContext): Promise<VerifyCheck[]>;
  /** Put back what the step changed, from the snapshot. */
  restore(step: PlanStepOf<K>, ctx: RestoreContext): Promise<void>;
  /** Read back after the restore: is the snapshot's state back? */
  verifyRestore(step: PlanStepOf<K>, ctx: RollbackContext): Promise<VerifyCheck[]>;
  /** Before a roll back: what someone changed after the apply (restored too, so said), or null. */
  changedSinceApply(step: PlanStepOf<K>, ctx: RollbackContext): Promise<string | null>;
}

/** A verdict: refused with this reason (null: go ahead), and problems that stop the whole apply. */
export function verdict(refusal: string | null, problems: string[] = []): PreflightVerdict {
  return { refusal, problems };
}

/** The selected steps of one kind, typed for it. */
export function stepsOfKind<K extends PlanStepKind>(steps: readonly PlanStep[], kind: K): PlanStepOf<K>[] {
  return steps.filter((s): s is PlanStepOf<K> => s.kind === kind);
}

/** "change it at: <whereToChange>" when the plan says where, else the fallback. */
export function where(step: PlanStep, fallback: string): string {
  return step.whereToChange ? `change it at: ${step.whereToChange}` : fallback;
}
