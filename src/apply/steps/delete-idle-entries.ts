/**
 * delete-idle-entries: free ESTABLISHED TCP entries idle longer than the new timeout, by
 * exact tuple (../idle-delete.ts), after the timeout was lowered. Deleted entries cannot
 * come back: a restore says so, and a connection still alive re-creates its entry.
 */
import { ESTABLISHED_TIMEOUT_KEY as ESTABLISHED } from '../../core/model.js';
import { readState, readSysctl } from '../gateway-io.js';
import { deleteIdleEntries } from '../idle-delete.js';
import { stepsOfKind, verdict, where, type StepModule } from './types.js';

export const deleteIdleEntriesStep: StepModule<'delete-idle-entries'> = {
  kind: 'delete-idle-entries',
  order: 1,
  reversible: false,
  includedByDefault: true,

  describe: (step) => ({ text: `Delete ${step.params.expected} idle entries now`, description: step.key }),

  async preflight(step, ctx) {
    if (!ctx.live.hasConntrack) return verdict('conntrack-tools is not installed on the gateway (entries are deleted over netlink with conntrack -D): install it');
    if (!(await ctx.rootHere())) return verdict(`deleting entries needs root (CAP_NET_ADMIN) in the gateway's network namespace; ${where(step, 'run conntrack -D as root')}`);
    const used = step.params.timeoutUsed;
    const newTimeout = step.params.idleAtLeastSeconds;
    const liveEst = ctx.live.sysctl[ESTABLISHED];
    const problems =
      liveEst !== undefined && liveEst !== used && liveEst !== newTimeout ? [`${ESTABLISHED} is ${liveEst} now; idle times were computed with ${used}: run a new check.`] : [];
    const lowers = stepsOfKind(ctx.selected, 'sysctl').some((s) => s.key === ESTABLISHED && s.params.value <= newTimeout);
    const refusal =
      !lowers && (liveEst ?? Infinity) > newTimeout
        ? `deleting entries idle > ${newTimeout} s only makes sense with the ESTABLISHED timeout lowered to ${newTimeout} s, and that step is not part of this apply`
        : null;
    return verdict(refusal, problems);
  },

  // The timeout before the apply: entries refreshed under it are the ones on an older timer.
  async snapshot(_step, { live, parts }) {
    const v = live.sysctl[ESTABLISHED];
    if (v !== undefined) parts.sysctl[ESTABLISHED] = v;
  },

  async apply(step, { session, snapshot, useSudo, maxSlowDeletes }) {
    const newTimeout = step.params.idleAtLeastSeconds;
    const oldTimeout = snapshot.sysctl[ESTABLISHED];
    if (oldTimeout === undefined) throw new Error('delete step without a snapshot of the ESTABLISHED timeout');
    const liveTimeout = await readSysctl(session, ESTABLISHED);
    if (liveTimeout > newTimeout) throw new Error(`the ESTABLISHED timeout is ${liveTimeout}, not lowered to ${newTimeout}: refusing to delete`);
    if (oldTimeout <= newTimeout) {
      return { changed: false, before: 'no entry on an older timer', after: 'unchanged', detail: `the ESTABLISHED timeout was already ${oldTimeout} s before this apply: nothing is on a longer timer` };
    }
    const state = await readState(session);
    const report = await deleteIdleEntries(session, {
      oldTimeout,
      newTimeout,
      method: !useSudo && state.hasPython3 ? 'netlink' : 'conntrack-R',
      maxSlowDeletes,
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
  },

  // What was deleted is in the verify report's deletes (see the engine's verify).
  verify: async () => [],

  async restore(_step, ctx) {
    if (ctx.state.status === 'applied') {
      ctx.notes.push('Deleted conntrack entries cannot be restored: a connection that was still alive re-creates its entry with its next packet.');
    }
  },

  verifyRestore: async () => [],

  changedSinceApply: async () => null,
};
