/**
 * Timeouts sized from what the table shows. ESTABLISHED idle time =
 * timeout - remaining; the aggregator counts entries idle >= each threshold.
 * Lowering a timeout does not shorten existing entries, so freeing the idle
 * ones takes a targeted delete (separately approvable).
 */
import { ESTABLISHED_TIMEOUT_KEY, type GatewayFacts, type PlanStepOf, type TableSummary } from '../core/model.js';
import { deletableAfterLowering, establishedTimeout, idleAtLeast } from '../analysis/context.js';
import { fmtDuration, fmtInt, fmtPct, ratio } from '../analysis/format.js';
import { CLOSE_WAIT_STATE, TIME_WAIT_STATE } from '../analysis/findings/timewait.js';
import {
  DEAD_IDLE_SECONDS,
  ESTABLISHED_CANDIDATES,
  TARGET_FILL_AFTER_RELIEF,
  TCP_KEEPALIVE_DEFAULT,
} from './compute-constants.js';
import { canWrite } from './compute-signals.js';

const ESTABLISHED_KEY = ESTABLISHED_TIMEOUT_KEY;

export interface EstablishedChoice {
  current: number;
  proposed: number;
  /** Entries idle >= proposed with more than proposed left: what the delete step frees now. */
  freed: number;
  /** Entries idle between proposed and DEAD_IDLE_SECONDS (all of them freed): may be quiet but alive. */
  atRisk: number;
  /** Count after the delete. */
  after: number;
  /** Target count: TARGET_FILL_AFTER_RELIEF x max. */
  goal: number;
  reachesGoal: boolean;
  /** The timeout the aggregator used to compute idle times. */
  timeoutUsed: number;
}

export type EstablishedDecision = { choice: EstablishedChoice } | { reason: string };

/**
 * The largest candidate timeout whose delete brings the table to the goal; if
 * none does, the smallest candidate (1 h). Among timeouts that free the same
 * number of entries, the largest (least risky) wins.
 */
export function chooseEstablishedTimeout(facts: GatewayFacts, table: TableSummary): EstablishedDecision {
  const current = establishedTimeout(facts);
  const candidates = ESTABLISHED_CANDIDATES.filter((t) => t < current && idleAtLeast(table, t) !== undefined);
  if (candidates.length === 0) {
    return {
      reason:
        current <= ESTABLISHED_CANDIDATES[ESTABLISHED_CANDIDATES.length - 1]!
          ? `the ESTABLISHED timeout is already ${fmtDuration(current)}`
          : 'ESTABLISHED idle times were not measured by the table dump',
    };
  }
  const goal = Math.floor(TARGET_FILL_AFTER_RELIEF * facts.max);
  const freedAt = (t: number): number => deletableAfterLowering(table, t) ?? 0;
  const smallest = candidates[candidates.length - 1]!;
  if (freedAt(smallest) === 0) {
    return { reason: `no ESTABLISHED entry is idle >= ${fmtDuration(smallest)}: the ESTABLISHED timeout is not what fills the table` };
  }
  let index = candidates.findIndex((t) => facts.count - freedAt(t) <= goal);
  const reachesGoal = index !== -1;
  if (!reachesGoal) index = candidates.length - 1;
  while (index > 0 && freedAt(candidates[index - 1]!) === freedAt(candidates[index]!)) index -= 1;
  const proposed = candidates[index]!;
  const freed = freedAt(proposed);
  const dead = idleAtLeast(table, DEAD_IDLE_SECONDS);
  // Entries idle in [proposed, DEAD) have far more than `proposed` left: all of them are freed.
  const atRisk = proposed < DEAD_IDLE_SECONDS ? Math.max(0, (idleAtLeast(table, proposed) ?? 0) - (dead ?? 0)) : 0;
  return {
    choice: {
      current,
      proposed,
      freed,
      atRisk,
      after: Math.max(0, facts.count - freed),
      goal,
      reachesGoal,
      timeoutUsed: table.establishedIdle.timeoutUsed,
    },
  };
}

function timeoutWhere(key: string, value: number): string {
  return `root in the gateway's network namespace: \`sysctl -w net.netfilter.${key}=${value}\` (timeouts are per namespace)`;
}

export function establishedStep(facts: GatewayFacts, table: TableSummary, c: EstablishedChoice): PlanStepOf<'sysctl'> {
  const writable = canWrite(facts, ESTABLISHED_KEY);
  const risk =
    c.atRisk > 0
      ? `At risk: ${fmtInt(c.atRisk)} entries idle between ${fmtDuration(c.proposed)} and ${fmtDuration(DEAD_IDLE_SECONDS)} may be quiet but alive; a NATed connection whose entry expires breaks at its next packet.`
      : `At risk: none (every entry freed has been idle >= ${fmtDuration(DEAD_IDLE_SECONDS)}).`;
  const keepalive =
    c.proposed <= TCP_KEEPALIVE_DEFAULT
      ? ` Connections relying on the default TCP keepalive (${fmtDuration(TCP_KEEPALIVE_DEFAULT)}) will be cut.`
      : '';
  const goal = c.reachesGoal
    ? `within the ${fmtPct(TARGET_FILL_AFTER_RELIEF)} goal`
    : `still above the ${fmtPct(TARGET_FILL_AFTER_RELIEF)} goal: the rest of the table is active`;
  return {
    id: 'tcp-timeout-established',
    kind: 'sysctl',
    key: ESTABLISHED_KEY,
    current: String(c.current),
    proposed: String(c.proposed),
    why:
      `An ESTABLISHED entry stays ${fmtDuration(c.current)} after its last packet. Of ${fmtInt(table.establishedIdle.total)} ESTABLISHED entries, ` +
      `${fmtInt(c.freed)} have been idle >= ${fmtDuration(c.proposed)}; freeing them takes the table from ${fmtInt(facts.count)} to ${fmtInt(c.after)} ` +
      `(${fmtPct(ratio(c.after, facts.max))} of ${fmtInt(facts.max)}, ${goal}). ${risk}${keepalive} ` +
      'Existing entries keep their old timers: see the delete step.',
    writable,
    ...(writable ? {} : { whereToChange: timeoutWhere(ESTABLISHED_KEY, c.proposed) }),
    optional: false,
    params: { value: c.proposed, current: c.current, freedNow: c.freed, atRisk: c.atRisk, countAfter: c.after },
  };
}

export function deleteIdleStep(facts: GatewayFacts, c: EstablishedChoice): PlanStepOf<'delete-idle-entries'> {
  const remainingAtMost = Math.max(0, c.timeoutUsed - c.proposed);
  const writable = facts.hasConntrackTool && canWrite(facts, ESTABLISHED_KEY);
  const whereToChange = !facts.hasConntrackTool
    ? 'install conntrack-tools on the gateway: entries can only be deleted with `conntrack -D` (netlink); /proc/net/nf_conntrack is read-only'
    : `root in the gateway's network namespace (\`conntrack -D\` of each selected tuple)`;
  return {
    id: 'delete-idle-entries',
    kind: 'delete-idle-entries',
    key: `tcp ESTABLISHED idle >= ${c.proposed} s`,
    current: `${c.freed} entries idle >= ${fmtDuration(c.proposed)} (remaining timeout ${c.proposed} < r <= ${remainingAtMost} s of ${c.timeoutUsed} s)`,
    proposed: `delete those ${c.freed} entries one tuple at a time (no flush)`,
    why:
      `Lowering the timeout does not shorten existing entries: an idle entry keeps its old remaining time (up to ${fmtDuration(c.timeoutUsed)}) until its next packet. ` +
      `${fmtInt(c.freed)} ESTABLISHED entries have been silent for >= ${fmtDuration(c.proposed)}; deleting exactly those (selected again at apply time) frees them now. ` +
      (c.atRisk > 0 ? `${fmtInt(c.atRisk)} of them were active within ${fmtDuration(DEAD_IDLE_SECONDS)}. ` : '') +
      'Run it after the timeout change; entries that die later expire on their old timers or on a re-run.',
    writable,
    ...(writable ? {} : { whereToChange }),
    optional: true,
    params: {
      proto: 'tcp',
      state: 'ESTABLISHED',
      idleAtLeastSeconds: c.proposed,
      timeoutUsed: c.timeoutUsed,
      remainingAtMost,
      expected: c.freed,
    },
  };
}

/**
 * TIME_WAIT / CLOSE_WAIT: in steady state count = closes/s x timeout, so the
 * pile shrinks in proportion within one old timeout; no delete needed.
 */
export function pileTimeoutStep(
  facts: GatewayFacts,
  table: TableSummary,
  which: 'time_wait' | 'close_wait',
  target: number,
): PlanStepOf<'sysctl'> | null {
  const key = `nf_conntrack_tcp_timeout_${which}`;
  const state = which === 'time_wait' ? TIME_WAIT_STATE : CLOSE_WAIT_STATE;
  const current = facts.timeouts[key] ?? (which === 'time_wait' ? 120 : 60);
  if (current <= target) return null;
  const count = table.states[state] ?? 0;
  const after = Math.round((count * target) / current);
  const writable = canWrite(facts, key);
  const label = which === 'time_wait' ? 'TIME_WAIT' : 'CLOSE_WAIT';
  const caveat =
    which === 'time_wait'
      ? 'The endpoints keep their own TIME_WAIT; conntrack only needs long enough to absorb late segments.'
      : 'A half-closed connection silent for longer than this loses its entry.';
  return {
    id: `tcp-timeout-${which.replace('_', '-')}`,
    kind: 'sysctl',
    key,
    current: String(current),
    proposed: String(target),
    why:
      `${fmtInt(count)} ${label} entries (${fmtPct(ratio(count, table.entries))} of the table) at ${current} s is ~${fmtInt(count / current)} closes/s; ` +
      `at ${target} s the same rate keeps ~${fmtInt(after)}, freeing ~${fmtInt(count - after)} entries (and their NAT ports) within ${current} s. ${caveat}`,
    writable,
    ...(writable ? {} : { whereToChange: timeoutWhere(key, target) }),
    optional: false,
    params: { value: target, current, expectedAfter: after, freed: count - after },
  };
}
