/** Restore and check netfilter values from the snapshot (shared by the steps that change them). */
import { readSysctl, setSysctl } from '../gateway-io.js';
import type { VerifyCheck } from '../model.js';
import type { RestoreContext, RollbackContext } from './types.js';

/** Put one value back as the snapshot has it (when the snapshot has it). */
export async function restoreSysctlValue(ctx: RestoreContext, key: string): Promise<void> {
  const value = ctx.snapshot.sysctl[key];
  if (value === undefined) return;
  await ctx.attempt(key, async () => {
    const now = await readSysctl(ctx.session, key);
    if (now !== value) await setSysctl(ctx.session, key, value);
  });
}

/** Is the value back at the snapshot's? (No check when the snapshot has no value for it.) */
export async function sysctlRestoredCheck({ session, snapshot }: RollbackContext, key: string): Promise<VerifyCheck[]> {
  const value = snapshot.sysctl[key];
  if (value === undefined) return [];
  const now = await readSysctl(session, key).catch(() => null);
  return [{ name: key, ok: now === value, detail: `now ${now ?? '?'}, snapshot ${value}` }];
}
