/**
 * NOTRACK rules on the gateway: read our nft table, check, add (once) and remove one
 * rule, all through the fixed templates. Which rules a step has is its module's call
 * (steps/notrack-*.ts, from the rule model in core/notrack.ts).
 */
import { z } from 'zod';
import { NFT_CHAINS, NFT_TABLE } from '../core/managed.js';
import type { FirewallBackend, NotrackRule } from '../core/notrack.js';
import { commands, nftChainOf, nftRuleBody } from '../gateway/commands.js';
import { CommandFailedError } from '../gateway/errors.js';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { run } from './gateway-io.js';

export function describeRule(backend: FirewallBackend, r: NotrackRule): string {
  if (backend === 'nft') return `nft ${NFT_TABLE} ${nftChainOf(r)}: ${nftRuleBody(r)}`;
  return commands.iptablesNotrack('add', r).shell;
}

/** nft prints host prefixes without /32 and /128. */
function normalizeNft(text: string): string {
  return text
    .replace(/(\d+\.\d+\.\d+\.\d+)\/32\b/g, '$1')
    .replace(/([0-9a-fA-F:]+)\/128\b/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}

export interface NftRuleLine {
  chain: string;
  body: string;
  handle: number;
}

/** Parse `nft -a list table inet conntrack_ops`: rule lines with their chain and handle. */
export function parseNftTable(text: string): NftRuleLine[] {
  const out: NftRuleLine[] = [];
  let chain: string | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const c = /^chain (\S+) \{/.exec(line);
    if (c) {
      chain = c[1]!;
      continue;
    }
    if (line === '}') continue;
    const h = /^(.*\S)\s+# handle (\d+)$/.exec(line);
    if (chain && h && !line.startsWith('type ') && !line.startsWith('table ')) {
      out.push({ chain, body: normalizeNft(h[1]!), handle: Number(h[2]) });
    }
  }
  return out;
}

export interface NftState {
  exists: boolean;
  rules: NftRuleLine[];
}

export async function readNft(session: GatewaySession): Promise<NftState> {
  const r = await run(session, commands.nftListOurs(), { allowFailure: true, timeoutMs: 15_000 });
  if (r.code !== 0) {
    if (/No such file or directory|does not exist/i.test(r.stderr)) return { exists: false, rules: [] };
    throw new CommandFailedError(commands.nftListOurs().label, r.code, r.stderr);
  }
  return { exists: true, rules: parseNftTable(r.stdout) };
}

export function findNftRule(state: NftState, r: NotrackRule): NftRuleLine | undefined {
  const body = normalizeNft(nftRuleBody(r));
  return state.rules.find((l) => l.chain === nftChainOf(r) && l.body === body);
}

/** Whether the rule is in place now. */
export async function ruleExists(session: GatewaySession, backend: FirewallBackend, r: NotrackRule, nft?: NftState): Promise<boolean> {
  if (backend === 'nft') return findNftRule(nft ?? (await readNft(session)), r) !== undefined;
  const cmd = commands.iptablesNotrack('check', r);
  const res = await run(session, cmd, { allowFailure: true, timeoutMs: 15_000 });
  if (res.code === 0) return true;
  if (res.code === 1) return false;
  throw new CommandFailedError(cmd.label, res.code, res.stderr);
}

/** Add the rule unless it is there. Returns true when it was added. */
export async function ensureRule(session: GatewaySession, backend: FirewallBackend, r: NotrackRule): Promise<boolean> {
  if (backend === 'iptables') {
    if (await ruleExists(session, backend, r)) return false;
    await run(session, commands.iptablesNotrack('add', r), { timeoutMs: 15_000 });
    if (!(await ruleExists(session, backend, r))) throw new Error(`${describeRule(backend, r)}: not found after adding it`);
    return true;
  }
  let state = await readNft(session);
  if (findNftRule(state, r)) return false;
  if (!state.exists) await run(session, commands.nftAddTable(), { timeoutMs: 15_000 });
  for (const chain of NFT_CHAINS) {
    // `nft add chain` is idempotent for an identical chain.
    await run(session, commands.nftAddChain(chain), { timeoutMs: 15_000 });
  }
  await run(session, commands.nftAddRule(r), { timeoutMs: 15_000 });
  state = await readNft(session);
  if (!findNftRule(state, r)) throw new Error(`${describeRule(backend, r)}: not found after adding it`);
  return true;
}

/** Remove the rule if present. Returns true when something was removed. */
export async function removeRule(session: GatewaySession, backend: FirewallBackend, r: NotrackRule): Promise<boolean> {
  if (backend === 'iptables') {
    let removed = false;
    // -D removes one copy; a rule added twice by hand is removed until none is left (bounded).
    for (let i = 0; i < 8 && (await ruleExists(session, backend, r)); i += 1) {
      await run(session, commands.iptablesNotrack('delete', r), { timeoutMs: 15_000 });
      removed = true;
    }
    if (await ruleExists(session, backend, r)) throw new Error(`${describeRule(backend, r)}: still present after delete`);
    return removed;
  }
  const state = await readNft(session);
  const line = findNftRule(state, r);
  if (!line) return false;
  const chain = z.enum(NFT_CHAINS).parse(line.chain);
  await run(session, commands.nftDeleteRule(chain, line.handle), { timeoutMs: 15_000 });
  if (findNftRule(await readNft(session), r)) throw new Error(`${describeRule(backend, r)}: still present after delete`);
  return true;
}
