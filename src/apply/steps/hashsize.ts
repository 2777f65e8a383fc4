/**
 * hashsize: the number of hash buckets, raised through the module parameter (the kernel
 * rehashes online) and read back. Only the initial network namespace may change it.
 */
import { HASHSIZE_PATH } from '../../core/managed.js';
import { readHashsize, setHashsize } from '../gateway-io.js';
import { verdict, where, describeByKey, type StepModule } from './types.js';

export const hashsizeStep: StepModule<'hashsize'> = {
  kind: 'hashsize',
  order: 0,
  reversible: true,
  includedByDefault: false,

  describe: describeByKey,

  async preflight(step, ctx) {
    if (!(await ctx.hashsizeWritable())) {
      return verdict(
        `the hash size can only be changed in the initial network namespace (here nf_conntrack_max is read-only and ${HASHSIZE_PATH} refuses writes); ${where(step, 'change it on the host')}`,
      );
    }
    const liveValue = ctx.live.hashsize ?? ctx.live.sysctl['nf_conntrack_buckets'];
    const drifted = liveValue !== undefined && liveValue !== step.params.current && liveValue !== step.params.value;
    return verdict(null, drifted ? [`The hash size is ${liveValue} now, the plan was computed with ${step.params.current}: someone changed it. Run a new check.`] : []);
  },

  // The engine records the hash size in every snapshot.
  async snapshot() {},

  async apply(step, { session }) {
    const proposed = step.params.value;
    const before = await readHashsize(session);
    if (before === proposed) return { changed: false, before: String(before), after: String(before) };
    const after = await setHashsize(session, proposed);
    return { changed: true, before: String(before), after: String(after) };
  },

  async verify(step, { live, snapshot }) {
    return [{ name: 'hashsize', ok: live.hashsize === step.params.value, detail: `${snapshot.hashsize ?? '?'} -> ${live.hashsize ?? '?'} (wanted ${step.params.value})` }];
  },

  async restore(_step, ctx) {
    const hs = ctx.snapshot.hashsize;
    if (hs === null) return;
    await ctx.attempt('hashsize', async () => {
      const now = await readHashsize(ctx.session);
      if (now !== hs) await setHashsize(ctx.session, hs);
    });
  },

  async verifyRestore(_step, { session, snapshot }) {
    if (snapshot.hashsize === null) return [];
    const now = await readHashsize(session);
    return [{ name: 'hashsize', ok: now === snapshot.hashsize, detail: `now ${now ?? '?'}, snapshot ${snapshot.hashsize}` }];
  },

  changedSinceApply: async () => null,
};
