/**
 * persist-sysctl: the managed sysctl.d file with the approved values (rebuilt from the
 * step's typed values and marked with the plan), loaded with `sysctl -p` of that file only
 * and read back key by key. Every key in the file must be writable here, or loading fails.
 */
import type { PlanStepOf } from '../../core/model.js';
import { commands } from '../../gateway/commands.js';
import type { GatewaySession } from '../../gateway/ssh-session.js';
import { readManaged, readSysctl, writeManaged } from '../gateway-io.js';
import { parseSysctlText, sysctlFileFor } from '../persist.js';
import { managedFileRestoredCheck, restoreManagedFile } from './managed-file.js';
import { verdict, where, describeByKey, type StepModule } from './types.js';
import { restoreSysctlValue, sysctlRestoredCheck } from './values.js';

function valuesOf(step: PlanStepOf<'persist-sysctl'>): Map<string, number> {
  return new Map(Object.entries(step.params.values));
}

function parsedOrNull(text: string): Map<string, number> | null {
  try {
    return parseSysctlText(text);
  } catch {
    return null;
  }
}

function sameMap(a: ReadonlyMap<string, number> | null, b: ReadonlyMap<string, number>): boolean {
  return a !== null && a.size === b.size && [...b].every(([k, v]) => a.get(k) === v);
}

function describeValues(values: ReadonlyMap<string, number> | null): string {
  if (!values) return 'present (not parseable)';
  return [...values].map(([k, v]) => `${k}=${v}`).join(', ') || 'empty';
}

async function allLive(s: GatewaySession, values: ReadonlyMap<string, number>): Promise<boolean> {
  for (const [k, v] of values) if ((await readSysctl(s, k)) !== v) return false;
  return true;
}

export const persistSysctlStep: StepModule<'persist-sysctl'> = {
  kind: 'persist-sysctl',
  order: 2,
  reversible: true,
  includedByDefault: false,

  describe: describeByKey,

  async preflight(step, ctx) {
    const readOnly: string[] = [];
    for (const k of valuesOf(step).keys()) if (!(await ctx.writable(k))) readOnly.push(k);
    // Whether /etc/sysctl.d is the right place (host vs namespace) is the plan's call (its
    // writable flag); here: every key in the file must be writable, or `sysctl -p` fails.
    if (readOnly.length === 0) return verdict(null);
    return verdict(
      `the file sets ${readOnly.join(', ')}, read-only here (a network namespace: they belong to the host); ` +
        where(step, 'set these values where the namespace is created, and the host values on the host'),
    );
  },

  async snapshot(step, { session, live, parts }) {
    for (const key of valuesOf(step).keys()) {
      const v = live.sysctl[key];
      if (v !== undefined) parts.sysctl[key] = v;
    }
    parts.files.sysctl = await readManaged(session, 'sysctl');
  },

  async apply(step, { session, planId }) {
    const values = valuesOf(step);
    const current = await readManaged(session, 'sysctl');
    const currentValues = current.content ? parsedOrNull(current.content) : null;
    const same = sameMap(currentValues, values);
    const liveSame = await allLive(session, values);
    const before = current.exists ? describeValues(currentValues) : 'absent';
    if (same && liveSame) return { changed: false, before, after: before, detail: `${current.path} already has these values` };
    if (!same) await writeManaged(session, 'sysctl', sysctlFileFor(planId, values));
    // Load only our file, never `sysctl --system`; its exit status is not trusted: read back.
    await session.exec(commands.loadSysctlFile(), { allowFailure: true, timeoutMs: 15_000 });
    const mismatches: string[] = [];
    for (const [k, v] of values) {
      const back = await readSysctl(session, k);
      if (back !== v) mismatches.push(`${k}: file ${v}, kernel ${back}`);
    }
    if (mismatches.length) throw new Error(`sysctl -p ${current.path} did not take: ${mismatches.join('; ')}`);
    return { changed: !same, before, after: describeValues(values), detail: `written and loaded with sysctl -p ${current.path}` };
  },

  async verify(step, { session }) {
    const file = await readManaged(session, 'sysctl');
    const ok = file.content !== null && sameMap(parsedOrNull(file.content), valuesOf(step));
    return [{ name: file.path, ok, detail: ok ? 'present with the approved values' : 'missing or different' }];
  },

  // `sysctl -p` set every value in the file: the file and those values go back.
  async restore(step, ctx) {
    await restoreManagedFile(ctx, 'sysctl');
    for (const key of valuesOf(step).keys()) await restoreSysctlValue(ctx, key);
  },

  async verifyRestore(step, ctx) {
    const checks = await managedFileRestoredCheck(ctx, 'sysctl');
    for (const key of valuesOf(step).keys()) checks.push(...(await sysctlRestoredCheck(ctx, key)));
    return checks;
  },

  changedSinceApply: async () => null,
};
