/**
 * Every plan-step kind and the module that applies it. Keyed by kind: a kind added to
 * PLAN_STEP_KINDS (core/model.ts) without a module here is a compile error.
 */
import type { PlanStep, PlanStepKind } from '../../core/model.js';
import { deleteIdleEntriesStep } from './delete-idle-entries.js';
import { hashsizeStep } from './hashsize.js';
import { notrackFlowStep } from './notrack-flow.js';
import { notrackManagementStep } from './notrack-management.js';
import { persistModprobeStep } from './persist-modprobe.js';
import { persistSysctlStep } from './persist-sysctl.js';
import { sysctlStep } from './sysctl.js';
import type { StepDescription, StepModule } from './types.js';

export const STEP_MODULES: { readonly [K in PlanStepKind]: StepModule<K> } = {
  sysctl: sysctlStep,
  hashsize: hashsizeStep,
  'persist-sysctl': persistSysctlStep,
  'persist-modprobe': persistModprobeStep,
  'notrack-management': notrackManagementStep,
  'notrack-flow': notrackFlowStep,
  'delete-idle-entries': deleteIdleEntriesStep,
};

/**
 * The module of a step's kind. Its methods take the step of that kind; the registry is
 * keyed by kind (and a test checks every module's own kind), so passing the step is sound.
 */
export function stepModule(step: PlanStep): StepModule<PlanStepKind> {
  // TypeScript cannot correlate STEP_MODULES[step.kind] with step's own kind: the one cast of the write side.
  return STEP_MODULES[step.kind] as StepModule<PlanStepKind>;
}

/** Steps in apply order: by their kind's order, plan order within one. */
export function inApplyOrder<S extends PlanStep>(steps: readonly S[]): S[] {
  return [...steps].sort((a, b) => stepModule(a).order - stepModule(b).order);
}

/** Steps in restore order: the reverse of the apply order (rules, files, deletes, values). */
export function inRestoreOrder<S extends PlanStep>(steps: readonly S[]): S[] {
  return [...steps].sort((a, b) => stepModule(b).order - stepModule(a).order);
}

/** How an approver sees an optional step. */
export function describeStep(step: PlanStep): StepDescription {
  return stepModule(step).describe(step);
}

/** Optional steps proposed as included when an approver is asked (the one that frees entries now). */
export function includedByDefault(step: PlanStep): boolean {
  return stepModule(step).includedByDefault;
}
