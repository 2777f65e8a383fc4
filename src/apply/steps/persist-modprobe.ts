/**
 * persist-modprobe: the managed modprobe.d file with `options nf_conntrack hashsize=<n>`
 * (takes effect at the next load of the module). The hash size belongs to the host.
 */
import { readManaged, writeManaged } from '../gateway-io.js';
import { modprobeFileFor, parseModprobeHashsize } from '../persist.js';
import { managedFileRestoredCheck, restoreManagedFile } from './managed-file.js';
import { verdict, where, describeByKey, type StepModule } from './types.js';

export const persistModprobeStep: StepModule<'persist-modprobe'> = {
  kind: 'persist-modprobe',
  order: 2,
  reversible: true,
  includedByDefault: false,

  describe: describeByKey,

  async preflight(step, ctx) {
    if (await ctx.hashsizeWritable()) return verdict(null);
    return verdict(`the hash size belongs to the host (initial network namespace); ${where(step, "persist it in the host's /etc/modprobe.d")}`);
  },

  async snapshot(_step, { session, parts }) {
    parts.files.modprobe = await readManaged(session, 'modprobe');
  },

  async apply(step, { session, planId }) {
    const hashsize = step.params.hashsize;
    const current = await readManaged(session, 'modprobe');
    const currentHashsize = parseModprobeHashsize(current.content);
    const before = current.exists ? `hashsize=${currentHashsize ?? '(none)'}` : 'absent';
    if (currentHashsize === hashsize) return { changed: false, before, after: before };
    await writeManaged(session, 'modprobe', modprobeFileFor(planId, hashsize));
    return { changed: true, before, after: `hashsize=${hashsize}`, detail: 'takes effect at the next load of nf_conntrack (boot)' };
  },

  async verify(step, { session }) {
    const file = await readManaged(session, 'modprobe');
    const ok = parseModprobeHashsize(file.content) === step.params.hashsize;
    return [{ name: file.path, ok, detail: ok ? 'present with the approved values' : 'missing or different' }];
  },

  restore: (_step, ctx) => restoreManagedFile(ctx, 'modprobe'),

  verifyRestore: (_step, ctx) => managedFileRestoredCheck(ctx, 'modprobe'),

  changedSinceApply: async () => null,
};
