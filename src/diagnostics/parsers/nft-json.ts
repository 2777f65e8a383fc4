/**
 * `nft -j list ruleset` (libnftables JSON, schema version 1): NAT statements (masquerade,
 * snat, dnat) and our tagged notrack rules, read from objects instead of text.
 *
 *   {"nftables": [{"metainfo": {...}}, {"table": {"family": "ip", "name": "nat"}},
 *     {"rule": {"family": "inet", "table": "fw4", "chain": "srcnat", "expr": [
 *       {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "wan"}}, {"masquerade": null}]}}]}
 *
 * Unambiguous where the text is not: an iptables-nft rule carries `{"xt": ...}` statements
 * (the text prints some of them translated, e.g. `masquerade`, and its "managed by
 * iptables-nft" warning goes to stderr), so a table holding one is iptables' and is skipped
 * here. The same heuristic as the text parser covers iptables-nft tables without any xt
 * statement (iptables-style names while iptables-save printed rules).
 */
import { z } from 'zod';
import { natRuleSchema, type NatRule } from '../../core/model.js';
import { OUR_RULE_TAG, type NftRules } from './nat-rules.js';

const objectSchema = z.record(z.string(), z.unknown());
const rulesetSchema = z.object({ nftables: z.array(objectSchema) });
const tableSchema = z.object({ family: z.string(), name: z.string() });
const chainSchema = z.object({ family: z.string(), table: z.string(), name: z.string() });
const ruleSchema = z.object({
  family: z.string(),
  table: z.string(),
  chain: z.string(),
  expr: z.array(objectSchema).default([]),
  comment: z.string().optional(),
});
type NftJsonRule = z.infer<typeof ruleSchema>;
const natStatementSchema = z
  .object({ family: z.string().optional(), addr: z.unknown().optional(), port: z.unknown().optional() })
  .nullable();
const matchSchema = z.object({ op: z.string().default('=='), left: z.unknown(), right: z.unknown() });

const IPTABLES_TABLE_NAMES = new Set(['nat', 'raw', 'mangle', 'filter', 'security']);

export class NftJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NftJsonError';
  }
}

/**
 * Parse `nft -j list ruleset`. `iptablesHasRules`: iptables-save printed rules, so an
 * iptables-style table (ip/ip6, iptables table name, upper-case chains) without xt
 * statements is still taken for iptables-nft's. Throws NftJsonError on text that is not
 * the ruleset JSON (the caller falls back to the text listing).
 */
export function parseNftJson(text: string, iptablesHasRules = false): NftRules {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new NftJsonError(`not JSON: ${(err as Error).message}`);
  }
  const parsed = rulesetSchema.safeParse(raw);
  if (!parsed.success) throw new NftJsonError(`not an nft ruleset: ${parsed.error.issues[0]?.message ?? ''}`);

  const tables: string[] = [];
  const upperChains = new Map<string, boolean>();
  const rulesByTable = new Map<string, NftJsonRule[]>();
  const withXt = new Set<string>();
  for (const item of parsed.data.nftables) {
    if ('table' in item) {
      const t = tableSchema.safeParse(item['table']);
      if (t.success) tables.push(`${t.data.family} ${t.data.name}`);
    } else if ('chain' in item) {
      const c = chainSchema.safeParse(item['chain']);
      if (c.success) {
        const key = `${c.data.family} ${c.data.table}`;
        upperChains.set(key, (upperChains.get(key) ?? true) && c.data.name === c.data.name.toUpperCase());
      }
    } else if ('rule' in item) {
      const r = ruleSchema.safeParse(item['rule']);
      if (!r.success) continue;
      const key = `${r.data.family} ${r.data.table}`;
      if (r.data.expr.some((e) => 'xt' in e)) withXt.add(key);
      const list = rulesByTable.get(key) ?? [];
      list.push(r.data);
      rulesByTable.set(key, list);
    }
  }

  const natRules: NatRule[] = [];
  const managedNotrack: string[] = [];
  const nativeTables: string[] = [];
  const compatTables: string[] = [];
  for (const table of tables) {
    const [family = '', name = ''] = table.split(' ');
    const looksCompat = iptablesHasRules && (family === 'ip' || family === 'ip6') && IPTABLES_TABLE_NAMES.has(name) && upperChains.get(table) !== false;
    if (withXt.has(table) || looksCompat) {
      compatTables.push(table);
      continue;
    }
    nativeTables.push(table);
    for (const rule of rulesByTable.get(table) ?? []) {
      const text = renderRule(rule);
      const nat = natRule(rule, text);
      if (nat) natRules.push(nat);
      if (rule.expr.some((e) => 'notrack' in e) && (rule.comment ?? '').includes(OUR_RULE_TAG)) managedNotrack.push(text);
    }
  }
  return { natRules, managedNotrack, nativeTables, compatTables };
}

function natRule(rule: NftJsonRule, text: string): NatRule | null {
  const stmt = rule.expr.find((e) => 'masquerade' in e || 'snat' in e || 'dnat' in e);
  if (stmt === undefined) return null;
  const kind = 'masquerade' in stmt ? 'masquerade' : 'snat' in stmt ? 'snat' : 'dnat';
  const body = natStatementSchema.safeParse(stmt[kind]);
  const toAddresses = kind === 'masquerade' || !body.success || body.data === null ? [] : addressesOf(body.data.addr);
  const family = ruleFamily(rule, body.success ? body.data?.family : undefined);
  return natRuleSchema.parse({
    backend: 'nft',
    ...(family ? { family } : {}),
    kind,
    outInterface: outInterfaceOf(rule),
    toAddresses,
    rule: text,
  });
}

/** The NAT target addresses: a string, a prefix, a range, or the values of a map (`snat ip to ip daddr map { a : b }`). */
function addressesOf(addr: unknown): string[] {
  if (typeof addr === 'string') return addr.startsWith('@') || addr.startsWith('$') ? [] : [addr];
  const o = objectSchema.safeParse(addr);
  if (!o.success) return [];
  const prefix = z.object({ addr: z.string(), len: z.number() }).safeParse(o.data['prefix']);
  if (prefix.success) return [`${prefix.data.addr}/${prefix.data.len}`];
  const range = z.tuple([z.string(), z.string()]).safeParse(o.data['range']);
  if (range.success) return [`${range.data[0]}-${range.data[1]}`];
  const map = z.object({ data: z.unknown() }).safeParse(o.data['map']);
  if (map.success) {
    const set = z.object({ set: z.array(z.unknown()) }).safeParse(map.data.data);
    if (!set.success) return [];
    const values = set.data.set.flatMap((pair) => {
      const kv = z.tuple([z.unknown(), z.unknown()]).safeParse(pair);
      if (!kv.success) return [];
      const v = kv.data[1];
      if (typeof v === 'string') return addressesOf(v);
      const concat = z.object({ concat: z.array(z.unknown()) }).safeParse(v);
      return concat.success ? addressesOf(concat.data.concat[0]) : [];
    });
    return [...new Set(values)];
  }
  return [];
}

function outInterfaceOf(rule: NftJsonRule): string | null {
  for (const e of rule.expr) {
    const m = matchSchema.safeParse(e['match']);
    if (!m.success) continue;
    const key = z.object({ meta: z.object({ key: z.string() }) }).safeParse(m.data.left);
    if (!key.success || (key.data.meta.key !== 'oifname' && key.data.meta.key !== 'oif')) continue;
    const right = m.data.right;
    const value =
      typeof right === 'string'
        ? right
        : (z.object({ set: z.array(z.string()) }).safeParse(right).data?.set.join(',') ?? renderValue(right));
    return m.data.op === '!=' ? `!${value}` : value;
  }
  return null;
}

/** ipv4 / ipv6 from the table family, the NAT statement's family, or what the rule matches on (inet tables). */
function ruleFamily(rule: NftJsonRule, statementFamily: string | undefined): 'ipv4' | 'ipv6' | undefined {
  if (rule.family === 'ip') return 'ipv4';
  if (rule.family === 'ip6') return 'ipv6';
  if (statementFamily === 'ip') return 'ipv4';
  if (statementFamily === 'ip6') return 'ipv6';
  const json = JSON.stringify(rule.expr);
  if (/"protocol":"ip6"|"right":"ipv6"/.test(json)) return 'ipv6';
  if (/"protocol":"ip"|"right":"ipv4"/.test(json)) return 'ipv4';
  return undefined;
}

// ------------------------------------------------------------ rule text, for people

/** A rule in nft's own words, near enough for a person (and for our tag and addresses to be found in it). */
export function renderRule(rule: NftJsonRule): string {
  const parts = rule.expr.map(renderStatement).filter((s) => s !== '');
  if (rule.comment !== undefined) parts.push(`comment "${rule.comment}"`);
  return parts.join(' ');
}

function renderStatement(e: Record<string, unknown>): string {
  const [key, value] = Object.entries(e)[0] ?? ['', null];
  switch (key) {
    case 'match': {
      const m = matchSchema.safeParse(value);
      if (!m.success) return 'match';
      const op = m.data.op === '==' || m.data.op === 'in' ? '' : `${m.data.op} `;
      return `${renderValue(m.data.left)} ${op}${renderValue(m.data.right)}`;
    }
    case 'masquerade':
    case 'snat':
    case 'dnat': {
      const body = natStatementSchema.safeParse(value);
      if (!body.success || body.data === null) return key;
      const family = body.data.family ? ` ${body.data.family}` : '';
      const addr = body.data.addr === undefined ? '' : renderValue(body.data.addr);
      const port = body.data.port === undefined ? '' : `:${renderValue(body.data.port)}`;
      return addr || port ? `${key}${family} to ${addr}${port}` : key;
    }
    case 'xt': {
      const xt = z.object({ type: z.string(), name: z.string() }).safeParse(value);
      return xt.success ? `xt ${xt.data.type} "${xt.data.name}"` : 'xt';
    }
    case 'jump':
    case 'goto': {
      const target = z.object({ target: z.string() }).safeParse(value);
      return target.success ? `${key} ${target.data.target}` : key;
    }
    case 'counter':
      return 'counter';
    default:
      return key;
  }
}

function renderValue(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map(renderValue).join(',');
  const o = objectSchema.safeParse(v);
  if (!o.success) return '';
  const [key, inner] = Object.entries(o.data)[0] ?? ['', null];
  const fields = objectSchema.safeParse(inner);
  const f = fields.success ? fields.data : {};
  switch (key) {
    case 'payload':
      return `${String(f['protocol'] ?? f['base'] ?? '')} ${String(f['field'] ?? '')}`.trim();
    case 'meta':
      return String(f['key'] ?? 'meta');
    case 'ct':
      return `ct ${String(f['key'] ?? '')}`.trim();
    case 'prefix':
      return `${String(f['addr'] ?? '')}/${String(f['len'] ?? '')}`;
    case 'range':
      return Array.isArray(inner) ? inner.map(renderValue).join('-') : 'range';
    case 'set':
      // map elements are [key, value] pairs
      return Array.isArray(inner) ? `{ ${inner.map((e) => (Array.isArray(e) && e.length === 2 ? `${renderValue(e[0])} : ${renderValue(e[1])}` : renderValue(e))).join(', ')} }` : 'set';
    case 'concat':
      return Array.isArray(inner) ? inner.map(renderValue).join(' . ') : 'concat';
    case 'map':
      return `${renderValue(f['key'])} map ${renderValue(f['data'])}`;
    default:
      return key;
  }
}
