/**
 * findings -> plan: each step says what it changes (current -> proposed), why
 * (with the numbers), and whether this session can write it. Computed from the
 * gateway's data, not copied from the runbook. Pure: no I/O.
 */
import { isSerious, type Finding, type GatewayFacts, type Plan, type PlanStep, type PlanStepOf, type TableSummary } from '../core/model.js';
import { fmtDuration, fmtInt, fmtPct, ratio } from '../analysis/format.js';
import { CLOSE_WAIT_PILE_SHARE, CLOSE_WAIT_STATE, TIME_WAIT_PILE_SHARE, TIME_WAIT_STATE, pileOf } from '../analysis/findings/timewait.js';
import { CLOSE_WAIT_TARGET, ESTABLISHED_CANDIDATES, TIME_WAIT_TARGET } from './compute-constants.js';
import { flowNotrack, managementNotrack, type NotrackOptions } from './compute-notrack.js';
import { persistModprobeStep, persistSysctlStep } from './compute-persist.js';
import { tableWasFull } from '../analysis/context.js';
import { activeFinding, activeFindings, canWrite, canWriteHashsize, underPressure } from './compute-signals.js';
import { bucketsFor, describeMemoryModel, memoryModel, sizeMax } from './compute-sizing.js';
import { hashsizeStep, maxStep } from './compute-table-steps.js';
import { chooseEstablishedTimeout, deleteIdleStep, establishedStep, pileTimeoutStep } from './compute-timeouts.js';

export { IDLE_THRESHOLDS } from './compute-constants.js';

export type PlanOptions = NotrackOptions;

interface Draft {
  steps: PlanStep[];
  notes: string[];
  /** Writable sysctl changes: short key -> value. */
  changed: Map<string, number>;
}

function push<S extends PlanStep>(draft: Draft, step: S | null): S | null {
  if (step) draft.steps.push(step);
  return step;
}

/** A sysctl step; the writable ones are persisted. */
function pushSysctl(draft: Draft, step: PlanStepOf<'sysctl'> | null): PlanStepOf<'sysctl'> | null {
  if (step?.writable) draft.changed.set(step.key, step.params.value);
  return push(draft, step);
}

/** nf_conntrack_max and buckets; returns the hash size to persist (null when none). */
function planTableSize(draft: Draft, facts: GatewayFacts, table: TableSummary, findings: readonly Finding[], pressure: boolean): number | null {
  let maxForBuckets = facts.max;
  if (pressure) {
    const m = memoryModel(facts);
    const sizing = sizeMax(facts, table, tableWasFull(facts), m);
    draft.notes.push(describeMemoryModel(m));
    const step = pushSysctl(draft, maxStep(facts, sizing, m));
    if (step && sizing.proposed !== null) maxForBuckets = sizing.proposed;
    else if (sizing.reason) draft.notes.push(`nf_conntrack_max not raised: ${sizing.reason}.`);
  }
  const raised = maxForBuckets > facts.max;
  if (!raised && !activeFinding(findings, 'hashsize-ratio')) return null;
  const buckets = push(draft, hashsizeStep(facts, bucketsFor(maxForBuckets, facts.buckets), maxForBuckets));
  if (!buckets && raised) {
    draft.notes.push(`Hash buckets stay at ${fmtInt(facts.buckets)}: already >= max/4 for ${fmtInt(maxForBuckets)} (buckets are never reduced).`);
  }
  return buckets && canWriteHashsize(facts) ? buckets.params.value : null;
}

function planTimeouts(draft: Draft, facts: GatewayFacts, table: TableSummary, findings: readonly Finding[], pressure: boolean): void {
  if (pressure) {
    const decision = chooseEstablishedTimeout(facts, table);
    if ('choice' in decision) {
      pushSysctl(draft, establishedStep(facts, table, decision.choice));
      push(draft, deleteIdleStep(facts, decision.choice));
      draft.notes.push(
        `Idle time = timeout - remaining, computed with the ${fmtDuration(table.establishedIdle.timeoutUsed)} timeout; ` +
          `candidates ${ESTABLISHED_CANDIDATES.map(fmtDuration).join(', ')}: the largest that brings the table under half of max after the delete (else the smallest), never below 1 h.`,
      );
    } else {
      draft.notes.push(`ESTABLISHED timeout not changed: ${decision.reason}.`);
    }
  }
  if (activeFinding(findings, 'timewait-pile')) {
    if (pileOf(table, TIME_WAIT_STATE, TIME_WAIT_PILE_SHARE).isPile) pushSysctl(draft, pileTimeoutStep(facts, table, 'time_wait', TIME_WAIT_TARGET));
    if (pileOf(table, CLOSE_WAIT_STATE, CLOSE_WAIT_PILE_SHARE).isPile) pushSysctl(draft, pileTimeoutStep(facts, table, 'close_wait', CLOSE_WAIT_TARGET));
  }
}

function planAdvice(draft: Draft, facts: GatewayFacts, table: TableSummary, findings: readonly Finding[]): void {
  const stale = table.establishedIdle.aboveTimeout ?? 0;
  if (stale > 0) {
    draft.notes.push(
      `${fmtInt(stale)} ESTABLISHED entries still carry timers longer than the ${fmtDuration(table.establishedIdle.timeoutUsed)} timeout (set before it was lowered); ` +
        'their idle time is unknown, so no delete is proposed for them: they have seen no packet since the change and expire on their old timers.',
    );
  }
  for (const f of activeFindings(findings, 'port-exhaustion-risk')) {
    draft.notes.push(
      `NAT ports to ${f.evidence['destination']} from ${f.evidence['natSource']}: no sysctl fixes this (raising nf_conntrack_max does not help). ` +
        'Add NAT addresses (an SNAT --to-source pool) or spread the load; a shorter TIME_WAIT releases ports sooner.',
    );
  }
  if (draft.steps.length === 0) {
    const serious = findings.some((f) => isSerious(f.severity));
    draft.notes.push(
      serious
        ? `No change proposed: the table is ${fmtPct(ratio(facts.count, facts.max))} full and was not full in the last hour; the findings are for follow-up.`
        : 'Nothing to change: no critical or warning finding.',
    );
    if (findings.some((f) => f.id === 'management-ssh-tracked')) {
      draft.notes.push('Management SSH is tracked; exempting it (NOTRACK) is offered when the table is under pressure.');
    }
  }
  if (draft.steps.some((s) => !s.writable) && !canWrite(facts, 'nf_conntrack_max')) {
    draft.notes.push('Steps marked not writable must be made where the setting lives (see each step); this session cannot change them.');
  }
}

export function computePlan(facts: GatewayFacts, table: TableSummary, findings: readonly Finding[], opts: PlanOptions = {}): Plan {
  const draft: Draft = { steps: [], notes: [], changed: new Map() };
  const pressure = underPressure(findings);

  const hashsize = planTableSize(draft, facts, table, findings, pressure);
  planTimeouts(draft, facts, table, findings, pressure);

  const maxAfter = draft.changed.get('nf_conntrack_max') ?? facts.max;
  push(draft, persistSysctlStep(facts, { changed: draft.changed, maxAfter, hashsize }));
  push(draft, persistModprobeStep(facts, hashsize));

  const mgmt = managementNotrack(facts, activeFinding(findings, 'management-ssh-tracked'), opts);
  draft.steps.push(...mgmt.steps);
  draft.notes.push(...mgmt.notes);
  const flows = flowNotrack(facts, table, activeFindings(findings, 'heavy-hitter'));
  draft.steps.push(...flows.steps);
  draft.notes.push(...flows.notes);

  planAdvice(draft, facts, table, findings);
  return { steps: draft.steps, notes: draft.notes };
}
