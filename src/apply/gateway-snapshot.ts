/**
 * The snapshot's copy on the gateway (issue 15, defect 13): Redis is not the only place the
 * state before an apply is kept. Before the first change the snapshot is written to
 * /var/lib/conntrack-ops/snapshots/<planId>.json on the gateway (root only: dir 0700, file
 * 0600; through the sudo helper for a non-root user, directly as root), and read back.
 * A roll back uses Redis's copy and, when Redis lost it, the gateway's (validated with the
 * same zod schema, and its plan id must match). The copy is removed once there is nothing
 * left to roll back: after a successful roll back, or an apply that failed and whose restore
 * succeeded; copies older than the plan's retention (14 days) are pruned on each write.
 */
import { z } from 'zod';
import { planStepKindSchema, type PlanStep } from '../core/model.js';
import { commands } from '../gateway/commands.js';
import { CommandFailedError } from '../gateway/errors.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { MAX_SNAPSHOT_BYTES, planIdSchema } from '../gateway/sudo-helper/policy.js';
import { snapshotSchema, type ApplyStepState, type Snapshot } from './model.js';

export const gatewaySnapshotCopySchema = z.object({
  version: z.literal(1),
  planId: planIdSchema,
  gateway: z.string().max(200),
  savedAt: z.string(),
  /** The steps the snapshot covers (a roll back restores these when Redis lost the step record too). */
  steps: z.array(z.object({ stepId: z.string().max(200), kind: planStepKindSchema, key: z.string().max(200), expected: z.string().nullable() })).max(100),
  snapshot: snapshotSchema,
});
export type GatewaySnapshotCopy = z.infer<typeof gatewaySnapshotCopySchema>;

export class GatewaySnapshotError extends Error {
  override name = 'GatewaySnapshotError';
}

/** One line of printable ASCII JSON (non-ASCII as \u escapes), as the helper accepts it. */
export function encodeCopy(copy: GatewaySnapshotCopy): string {
  const json = JSON.stringify(gatewaySnapshotCopySchema.parse(copy)).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (json.length > MAX_SNAPSHOT_BYTES) throw new GatewaySnapshotError(`the snapshot is ${json.length} bytes, more than the gateway copy's ${MAX_SNAPSHOT_BYTES}`);
  return json;
}

export function decodeCopy(text: string, planId: string): GatewaySnapshotCopy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new GatewaySnapshotError(`the gateway's snapshot copy of plan ${planId} is not JSON`);
  }
  const parsed = gatewaySnapshotCopySchema.safeParse(raw);
  if (!parsed.success) throw new GatewaySnapshotError(`the gateway's snapshot copy of plan ${planId} is not valid: ${parsed.error.issues[0]?.message ?? ''}`);
  if (parsed.data.planId !== planId) throw new GatewaySnapshotError(`the gateway's snapshot copy names plan ${parsed.data.planId}, not ${planId}`);
  return parsed.data;
}

/** Writes the copy and reads it back (never trust an exit code alone). */
export async function writeGatewaySnapshot(session: GatewaySession, copy: GatewaySnapshotCopy): Promise<void> {
  const text = encodeCopy(copy);
  const w = await session.exec(commands.writeGatewaySnapshot(copy.planId), { stdin: `${text}\n`, allowFailure: true, timeoutMs: 15_000 });
  if (w.code !== 0) throw new GatewaySnapshotError(`could not keep the snapshot on the gateway (exit ${w.code}${w.stderr.trim() ? `: ${w.stderr.trim().slice(0, 200)}` : ''})`);
  const back = await readGatewaySnapshot(session, copy.planId);
  if (back === null || encodeCopy(back) !== text) throw new GatewaySnapshotError('the snapshot copy read back from the gateway differs from what was written');
}

/** The copy, or null when the gateway has none. */
export async function readGatewaySnapshot(session: GatewaySession, planId: string): Promise<GatewaySnapshotCopy | null> {
  const cmd = commands.readGatewaySnapshot(planId);
  const r = await session.exec(cmd, { allowFailure: true, timeoutMs: 15_000 });
  if (r.code === 3) return null;
  if (r.code !== 0) throw new CommandFailedError(cmd.label, r.code, r.stderr);
  return decodeCopy(r.stdout.trim(), planId);
}

export async function removeGatewaySnapshot(session: GatewaySession, planId: string): Promise<void> {
  await session.exec(commands.removeGatewaySnapshot(planId), { timeoutMs: 15_000 });
}

/** Before the first change: the copy of this apply's snapshot on its gateway. Throws when it cannot be kept. */
export async function keepGatewaySnapshot(session: GatewaySession, planId: string, gateway: string, steps: readonly PlanStep[], snapshot: Snapshot): Promise<void> {
  await writeGatewaySnapshot(session, {
    version: 1,
    planId,
    gateway,
    savedAt: new Date().toISOString(),
    steps: steps.map((s) => ({ stepId: s.id, kind: s.kind, key: s.key, expected: s.proposed })),
    snapshot,
  });
}

/** Nothing left to roll back: remove the copy (best effort; a leftover is pruned after the retention). Returns the note to add, if any. */
export async function dropGatewaySnapshot(session: GatewaySession, planId: string): Promise<string[]> {
  try {
    await removeGatewaySnapshot(session, planId);
    return [];
  } catch (err) {
    return [`the gateway's snapshot copy could not be removed (${err instanceof Error ? err.message : String(err)}); it is pruned after 14 days`];
  }
}

export interface RollbackSnapshot {
  snapshot: Snapshot;
  /** Where it came from: Redis, or the gateway's copy because Redis had none. */
  source: 'redis' | 'gateway';
  /** From the gateway copy when Redis lost the step record too: each covered step, state unknown (the restore reads back). */
  steps: ApplyStepState[] | null;
}

/**
 * The snapshot a roll back restores: Redis's, else the gateway's copy (read over a session
 * of its own). `snapshot: null` with the reason when neither can be had.
 */
export async function snapshotForRollback(
  fromRedis: () => Promise<Snapshot | null>,
  openSession: () => Promise<{ session: GatewaySession; release(): void }>,
  planId: string,
): Promise<RollbackSnapshot | { snapshot: null; why: string }> {
  const stored = await fromRedis().catch(() => null);
  if (stored) return { snapshot: stored, source: 'redis', steps: null };
  let copy: GatewaySnapshotCopy | null;
  try {
    const lease = await openSession();
    try {
      copy = await readGatewaySnapshot(lease.session, planId);
    } finally {
      lease.release();
    }
  } catch (err) {
    return { snapshot: null, why: `Plan ${planId} has no snapshot in Redis, and the gateway's copy could not be read (${err instanceof Error ? err.message : String(err)}): nothing was done; try again when the gateway answers.` };
  }
  if (!copy) return { snapshot: null, why: `Plan ${planId} has no snapshot: it never changed the gateway, nothing to roll back.` };
  const steps = copy.steps.map(
    (s): ApplyStepState => ({
      stepId: s.stepId,
      kind: s.kind,
      key: s.key,
      status: 'unknown',
      before: null,
      after: null,
      expected: s.expected,
      detail: "restored from the gateway's snapshot copy (Redis had no record of this step)",
    }),
  );
  return { snapshot: copy.snapshot, source: 'gateway', steps };
}
