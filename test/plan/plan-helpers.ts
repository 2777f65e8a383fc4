import { analyze } from '../../src/analysis/analyze.js';
import type { GatewayFacts, Plan, PlanStep, PlanStepKind, PlanStepOf, TableSummary } from '../../src/core/model.js';
import { computePlan, type PlanOptions } from '../../src/plan/compute.js';
import { THRESHOLDS } from '../support/facts-fixtures.js';

/** facts + table -> findings -> plan, the way the check pipeline runs it. */
export function planFor(facts: GatewayFacts, table: TableSummary, opts: PlanOptions = {}): Plan {
  return computePlan(facts, table, analyze(facts, table, THRESHOLDS, opts), opts);
}

export function step(plan: Plan, id: string): PlanStep {
  const s = plan.steps.find((x) => x.id === id);
  if (!s) throw new Error(`no step ${id} in: ${plan.steps.map((x) => x.id).join(', ')}`);
  return s;
}

/** The step with this id, which must be of this kind (its params typed for the kind). */
export function stepOf<K extends PlanStepKind>(plan: Plan, id: string, kind: K): PlanStepOf<K> {
  const s = step(plan, id);
  if (!isKind(s, kind)) throw new Error(`step ${id} is ${s.kind}, not ${kind}`);
  return s;
}

function isKind<K extends PlanStepKind>(s: PlanStep, kind: K): s is PlanStepOf<K> {
  return s.kind === kind;
}
