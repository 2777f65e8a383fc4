/** The bench's sets of lab gateways: named <prefix><NN>, brought up 4 at a time, all torn down. */
import { execFileSync } from 'node:child_process';
import { labDown, labDownAll, labUp, type Lab, type LabUpOptions } from '../../lab/index.js';
import { mapLimit } from './map-limit.js';

export function labNames(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`);
}

/** Removes leftovers of a crashed run, then brings every lab up; throws when any failed (tear down with downLabs). */
export async function upLabs(prefix: string, names: string[], options: Omit<LabUpOptions, 'name'>): Promise<{ labs: Lab[]; labUpMs: number }> {
  await labDownAll(prefix).catch(() => undefined);
  const u0 = Date.now();
  // labUp allocates under a machine-wide lock; 4 at a time keeps a 2-core machine responsive.
  const ups = await mapLimit(names, 4, (name) => labUp({ ...options, name }));
  const labs = ups.flatMap((u) => (u.status === 'fulfilled' ? [u.value] : []));
  const failedUps = ups.filter((u) => u.status === 'rejected');
  if (failedUps.length) throw new Error(`${failedUps.length} lab(s) failed to come up: ${String((failedUps[0] as PromiseRejectedResult).reason).slice(0, 300)}`);
  return { labs, labUpMs: Date.now() - u0 };
}

/** Every lab of the set, even those whose labUp failed half-way (labDown is idempotent), then a sweep of the prefix. */
export async function downLabs(prefix: string, names: string[], log: (s: string) => void): Promise<{ labsDown: number; leftoverNetns: string[] }> {
  const downs = await mapLimit(names, 4, (n) => labDown(n));
  await labDownAll(prefix).catch((err: unknown) => log(`  labDownAll ${prefix} failed: ${(err as Error).message}`));
  const leftoverNetns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(prefix));
  if (leftoverNetns.length) log(`  WARNING: namespaces left behind: ${leftoverNetns.join(' ')}`);
  return { labsDown: downs.filter((r) => r.status === 'fulfilled').length, leftoverNetns };
}
