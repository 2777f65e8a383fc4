/**
 * sysctl: one netfilter value (nf_conntrack_max, a timeout) written through /proc/sys
 * and read back. Pre-flight refuses a key that is read-only here (in a network namespace
 * max, buckets and expect_max belong to the host) and a max the gateway's memory cannot hold.
 */
import { BUCKET_BYTES } from '../../analysis/kernel-defaults.js';
import type { PlanStepOf } from '../../core/model.js';
import { ASSUMED_ENTRY_BYTES, MEMORY_BUDGET_FRACTION } from '../../plan/compute-constants.js';
import { readSysctl, setSysctl } from '../gateway-io.js';
import { restoreSysctlValue, sysctlRestoredCheck } from './values.js';
import { stepsOfKind, verdict, where, type PreflightContext, describeByKey, type StepModule } from './types.js';

type SysctlStep = PlanStepOf<'sysctl'>;

/** Raising max: the full table must fit the memory budget, and filling it half the memory available now. */
function memoryRefusal(step: SysctlStep, ctx: PreflightContext, liveValue: number): string | null {
  const proposed = step.params.value;
  if (step.key !== 'nf_conntrack_max' || proposed <= liveValue) return null;
  const { live } = ctx;
  const entryBytes = live.slabBytes ?? ASSUMED_ENTRY_BYTES;
  const hashStep = stepsOfKind(ctx.selected, 'hashsize')[0];
  const buckets = Math.max(live.hashsize ?? 0, hashStep?.params.value ?? 0, live.sysctl['nf_conntrack_buckets'] ?? 0);
  const bytes = proposed * entryBytes + buckets * BUCKET_BYTES;
  const budget = Math.floor(live.memTotalKb * 1024 * MEMORY_BUDGET_FRACTION);
  const growth = (proposed - ctx.count) * entryBytes;
  if (bytes > budget) {
    return (
      `nf_conntrack_max ${proposed} needs ${Math.round(bytes / 2 ** 20)} MiB when full (${entryBytes} B/entry + ${buckets} buckets x ${BUCKET_BYTES} B), ` +
      `more than ${MEMORY_BUDGET_FRACTION * 100}% of this gateway's ${Math.round(live.memTotalKb / 1024)} MiB: refused. Add memory or free entries (timeouts) instead.`
    );
  }
  if (growth > (live.memAvailableKb * 1024) / 2) {
    return `nf_conntrack_max ${proposed}: filling it would take ${Math.round(growth / 2 ** 20)} MiB, more than half of the ${Math.round(live.memAvailableKb / 1024)} MiB available now: refused.`;
  }
  return null;
}

export const sysctlStep: StepModule<'sysctl'> = {
  kind: 'sysctl',
  order: 0,
  reversible: true,
  includedByDefault: false,

  describe: describeByKey,

  async preflight(step, ctx) {
    const liveValue = ctx.live.sysctl[step.key];
    if (liveValue === undefined) return verdict(`net.netfilter.${step.key} does not exist on this gateway (is nf_conntrack loaded?)`);
    if (!(await ctx.writable(step.key))) {
      return verdict(
        `net.netfilter.${step.key} is read-only here (in a network namespace nf_conntrack_max, nf_conntrack_buckets and nf_conntrack_expect_max belong to the host); ${where(step, 'change it on the host (initial network namespace)')}`,
      );
    }
    const problems =
      liveValue !== step.params.current && liveValue !== step.params.value
        ? [`${step.key} is ${liveValue} now, the plan was computed with ${step.params.current}: someone changed it. Run a new check.`]
        : [];
    return verdict(memoryRefusal(step, ctx, liveValue), problems);
  },

  async snapshot(step, { live, parts }) {
    const v = live.sysctl[step.key];
    if (v !== undefined) parts.sysctl[step.key] = v;
  },

  async apply(step, { session }) {
    const proposed = step.params.value;
    const before = await readSysctl(session, step.key);
    if (before === proposed) return { changed: false, before: String(before), after: String(before) };
    const after = await setSysctl(session, step.key, proposed);
    return { changed: true, before: String(before), after: String(after) };
  },

  async verify(step, { live, snapshot }) {
    const v = live.sysctl[step.key];
    return [{ name: step.key, ok: v === step.params.value, detail: `${snapshot.sysctl[step.key] ?? '?'} -> ${v ?? '?'} (wanted ${step.params.value})` }];
  },

  restore: (step, ctx) => restoreSysctlValue(ctx, step.key),

  verifyRestore: async (step, ctx) => sysctlRestoredCheck(ctx, step.key),

  async changedSinceApply(step, { session, snapshot }) {
    const now = await readSysctl(session, step.key).catch(() => null);
    const was = snapshot.sysctl[step.key];
    if (now === null || now === step.params.value || now === was) return null;
    return `${step.key} was ${now} (changed after this apply, which set ${step.params.value}); restored to ${was}`;
  },
};
