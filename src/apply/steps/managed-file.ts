/** Restore and check a managed file from the snapshot (shared by the persist steps). */
import type { ManagedFile } from '../../core/managed.js';
import { readManaged, removeManaged, writeManaged } from '../gateway-io.js';
import type { VerifyCheck } from '../model.js';
import type { RestoreContext, RollbackContext } from './types.js';

/** The file as the snapshot has it: absent again, or its previous content back. */
export async function restoreManagedFile(ctx: RestoreContext, which: ManagedFile): Promise<void> {
  const snap = ctx.snapshot.files[which];
  if (!snap) return;
  await ctx.attempt(snap.path, async () => {
    const now = await readManaged(ctx.session, which);
    if (!snap.exists) {
      if (now.exists) await removeManaged(ctx.session, which);
      return;
    }
    if (now.content !== snap.content) await writeManaged(ctx.session, which, snap.content ?? '');
  });
}

export async function managedFileRestoredCheck({ session, snapshot }: RollbackContext, which: ManagedFile): Promise<VerifyCheck[]> {
  const snap = snapshot.files[which];
  if (!snap) return [];
  const now = await readManaged(session, which);
  const ok = now.exists === snap.exists && (!snap.exists || now.content === snap.content);
  return [{ name: snap.path, ok, detail: snap.exists ? (ok ? 'previous content back' : 'content differs from the snapshot') : ok ? 'absent again' : 'still present' }];
}
