import { analyze } from '../../src/analysis/analyze.js';
import type { GatewayFacts, Plan, PlanStep, TableSummary } from '../../src/core/model.js';
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
