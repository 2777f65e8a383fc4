/**
 * What both NOTRACK kinds do with their rules (raw table, iptables or our own nft table):
 * each rule is checked before it is added, so it is added once; a restore removes only
 * the rules that were not there before, and drops our nft table when the plan created it
 * and nothing else is left in it.
 */
import type { PlanStep, PlanStepOf } from '../../core/model.js';
import { NFT_TABLE } from '../../core/managed.js';
import type { FirewallBackend, NotrackRule } from '../../core/notrack.js';
import { commands } from '../../gateway/commands.js';
import { describeRule, ensureRule, readNft, removeRule, ruleExists } from '../rules.js';
import { verdict, where, type StepDescription, type StepModule } from './types.js';

type NotrackKind = 'notrack-management' | 'notrack-flow';

export interface StepRules {
  backend: FirewallBackend;
  rules: NotrackRule[];
}

/** The fields every step has (a step of a kind given as a type parameter is still a PlanStep). */
function common(step: PlanStep): PlanStep {
  return step;
}

export interface NotrackKindSpec<K extends NotrackKind> {
  kind: K;
  /** The step's backend and rules, built from its typed params by the rule model (core/notrack.ts). */
  rules(step: PlanStepOf<K>): StepRules;
  describe(step: PlanStepOf<K>): StepDescription;
}

/** The module of a NOTRACK kind: the same life cycle, its own rules. */
export function notrackModule<K extends NotrackKind>(spec: NotrackKindSpec<K>): StepModule<K> {
  return {
    kind: spec.kind,
    order: 3,
    reversible: true,
    includedByDefault: false,
    describe: spec.describe,

    async preflight(step, ctx) {
      if (!(await ctx.rootHere())) return verdict(`raw table rules need root (CAP_NET_ADMIN) in the gateway's network namespace; ${where(step, 'add the rule as root')}`);
      const { backend } = spec.rules(step);
      if (backend === 'nft' && !ctx.live.hasNft) return verdict('the plan uses nft but nft is not installed on the gateway');
      if (backend === 'iptables' && !ctx.live.hasIptables) return verdict('the plan uses iptables but iptables is not installed on the gateway');
      return verdict(null);
    },

    async snapshot(step, { session, parts }) {
      const { backend, rules } = spec.rules(step);
      const stepId = common(step).id;
      const nft = backend === 'nft' ? await readNft(session) : undefined;
      if (nft && parts.nftTableExisted === null) parts.nftTableExisted = nft.exists;
      for (const rule of rules) parts.rules.push({ stepId, backend, rule, existed: await ruleExists(session, backend, rule, nft) });
    },

    async apply(step, { session }) {
      const { backend, rules } = spec.rules(step);
      let added = 0;
      for (const rule of rules) if (await ensureRule(session, backend, rule)) added += 1;
      return {
        changed: added > 0,
        before: `${rules.length - added}/${rules.length} rules present`,
        after: `${rules.length}/${rules.length} rules present`,
        detail: rules.map((r) => describeRule(backend, r)).join('\n'),
      };
    },

    async verify(step, { session }) {
      const { backend, rules } = spec.rules(step);
      const nft = backend === 'nft' ? await readNft(session) : undefined;
      let present = 0;
      for (const r of rules) if (await ruleExists(session, backend, r, nft)) present += 1;
      return [{ name: common(step).id, ok: present === rules.length, detail: `${present}/${rules.length} NOTRACK rules present (${backend})` }];
    },

    async restore(step, ctx) {
      const { session, snapshot } = ctx;
      const stepId = common(step).id;
      for (const r of snapshot.rules) {
        if (r.existed || r.stepId !== stepId) continue;
        await ctx.attempt(describeRule(r.backend, r.rule), async () => {
          await removeRule(session, r.backend, r.rule);
        });
      }
      if (snapshot.nftTableExisted !== false) return;
      ctx.afterAll('nft table', () =>
        ctx.attempt(`nft table ${NFT_TABLE}`, async () => {
          const nft = await readNft(session);
          if (nft.exists && nft.rules.length === 0) await session.exec(commands.nftDeleteTable(), { timeoutMs: 15_000 });
          else if (nft.exists) ctx.notes.push(`nft table ${NFT_TABLE} kept: it holds rules added after this plan`);
        }),
      );
    },

    async verifyRestore(step, { session, snapshot }) {
      const checks = [];
      const stepId = common(step).id;
      for (const r of snapshot.rules) {
        if (r.stepId !== stepId) continue;
        const present = await ruleExists(session, r.backend, r.rule).catch(() => null);
        checks.push({
          name: `rule ${r.stepId} ${r.rule.chain}`,
          ok: present === r.existed,
          detail: `${describeRule(r.backend, r.rule)}: ${present ? 'present' : 'absent'} (snapshot: ${r.existed ? 'present' : 'absent'})`,
        });
      }
      return checks;
    },

    changedSinceApply: async () => null,
  };
}
