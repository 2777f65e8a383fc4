/**
 * The snapshot: everything the selected steps may change, as it is right before the
 * first change (each step's module records its part), plus the counters and kernel log
 * lines the verify compares against. Stored in Redis before anything changes.
 */
import type { PlanStep } from '../core/model.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { readStats, readTableFullLines, type LiveState } from './gateway-io.js';
import type { Snapshot } from './model.js';
import { stepModule } from './steps/registry.js';
import type { SnapshotParts } from './steps/types.js';

export async function takeSnapshot(session: GatewaySession, steps: readonly PlanStep[], live: LiveState, count: number): Promise<Snapshot> {
  const parts: SnapshotParts = { sysctl: {}, files: { sysctl: null, modprobe: null }, rules: [], nftTableExisted: null };
  for (const step of steps) await stepModule(step).snapshot(step, { session, live, parts });
  return {
    takenAt: new Date().toISOString(),
    ...parts,
    hashsize: live.hashsize,
    count,
    max: live.sysctl['nf_conntrack_max'] ?? 0,
    stats: await readStats(session, live.hasConntrack),
    tableFullLines: await readTableFullLines(session),
  };
}
