/**
 * Source-NAT rules and our own NOTRACK rules from `iptables-save` / `ip6tables-save`
 * and `nft list ruleset`.
 *
 *   iptables-save -t nat:   -A POSTROUTING -s 198.18.1.0/24 -o wan0 -j SNAT --to-source 198.19.0.10-198.19.0.20
 *   nft list ruleset:       ip saddr 198.18.6.0/24 oifname "wan0" snat ip to 198.19.0.40/31
 *
 * iptables-nft rules show up in both outputs; nft tables marked "# Warning: table ip
 * nat is managed by iptables-nft" (in the listing, or on nft's stderr since nftables 1.0.6,
 * passed as `stderr`), or without the marker iptables-style tables with upper-case chains
 * while iptables-save printed rules, are skipped in the nft output. `nft -j` output is read
 * by nft-json.ts.
 */
import { natRuleSchema, type NatRule } from '../../core/model.js';
import { RULE_TAG } from '../../core/managed.js';

/** Comment tag carried by every firewall rule conntrack-ops adds (core/managed.ts). */
export const OUR_RULE_TAG = RULE_TAG;

/** Split an iptables-save rule line into arguments, honouring double quotes. */
export function splitIptablesArgs(line: string): string[] {
  const args: string[] = [];
  let cur = '';
  let inQuote = false;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (inQuote) {
      if (c === '\\' && i + 1 < line.length) {
        cur += line[++i];
      } else if (c === '"') {
        inQuote = false;
      } else {
        cur += c;
      }
    } else if (c === '"') {
      inQuote = true;
      has = true;
    } else if (c === ' ' || c === '\t') {
      if (has) args.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) args.push(cur);
  return args;
}

/** "198.19.0.10-198.19.0.20:1024-2048" -> "198.19.0.10-198.19.0.20"; "[2001:db8::1]:80" -> "2001:db8::1". */
export function stripPorts(to: string): string {
  if (to.startsWith('[')) {
    const close = to.indexOf(']');
    if (close > 0) {
      const rest = to.slice(close + 1);
      const dash = rest.startsWith('-[') ? rest.slice(1) : '';
      const second = dash.startsWith('[') ? dash.slice(1, dash.indexOf(']')) : '';
      return second ? `${to.slice(1, close)}-${second}` : to.slice(1, close);
    }
  }
  // IPv4 (or a range): one colon at most, before the ports
  const colons = to.split(':').length - 1;
  if (colons === 1) return to.slice(0, to.indexOf(':'));
  return to;
}

export interface IptablesRules {
  natRules: NatRule[];
  /** Our tagged NOTRACK rules (raw table), as printed by iptables-save. */
  managedNotrack: string[];
  /** True when the output held at least one table header (the command worked). */
  seenTables: boolean;
  /** Number of -A rule lines in any table. */
  ruleCount: number;
}

/**
 * Parse `iptables-save` / `ip6tables-save` output (any tables; NAT rules come from *nat).
 * `headerlessTable`: the table of `iptables -t <table> -S` output, which prints no
 * `*table` header (`-P POSTROUTING ACCEPT`, `-A POSTROUTING -o eth0 -j MASQUERADE`).
 */
export function parseIptablesSave(text: string, family: 'ipv4' | 'ipv6' = 'ipv4', headerlessTable?: string): IptablesRules {
  const natRules: NatRule[] = [];
  const managedNotrack: string[] = [];
  let table = headerlessTable ?? '';
  let seenTables = false;
  let ruleCount = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      table = line.slice(1);
      seenTables = true;
      continue;
    }
    // `iptables -S` prints each built-in chain's policy first: the command worked
    if (headerlessTable !== undefined && line.startsWith('-P ')) seenTables = true;
    if (!line.startsWith('-A ')) continue;
    ruleCount++;
    const args = splitIptablesArgs(line);
    const target = valueOf(args, '-j') ?? valueOf(args, '--jump');
    if (table === 'nat' && (target === 'MASQUERADE' || target === 'SNAT')) {
      const out = interfaceArg(args, '-o', '--out-interface');
      const toAddresses: string[] = [];
      if (target === 'SNAT') {
        args.forEach((a, i) => {
          if (a === '--to-source' || a === '--to') {
            const v = args[i + 1];
            // "--to-source :53" changes the port only: no address
            const address = v === undefined ? '' : stripPorts(v);
            if (address !== '') toAddresses.push(address);
          }
        });
      }
      natRules.push(
        natRuleSchema.parse({
          backend: 'iptables',
          family,
          kind: target === 'MASQUERADE' ? 'masquerade' : 'snat',
          outInterface: out,
          toAddresses,
          rule: line,
        }),
      );
    }
    if (table === 'raw') {
      const notrack = target === 'NOTRACK' || (target === 'CT' && args.includes('--notrack'));
      if (notrack && commentOf(args)?.includes(OUR_RULE_TAG)) managedNotrack.push(line);
    }
  }
  return { natRules, managedNotrack, seenTables, ruleCount };
}

function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

function interfaceArg(args: string[], short: string, long: string): string | null {
  const i = args.findIndex((a) => a === short || a === long);
  if (i < 0) return null;
  const name = args[i + 1];
  if (name === undefined) return null;
  return args[i - 1] === '!' ? `!${name}` : name;
}

function commentOf(args: string[]): string | undefined {
  return valueOf(args, '--comment');
}

export interface NftRules {
  natRules: NatRule[];
  /** Our tagged notrack rules in native nft tables. */
  managedNotrack: string[];
  /** Native (not iptables-nft) tables, "family name". */
  nativeTables: string[];
  /** Tables skipped because iptables-nft manages them. */
  compatTables: string[];
}

const IPTABLES_TABLE_NAMES = new Set(['nat', 'raw', 'mangle', 'filter', 'security']);

/**
 * Tables nft says iptables-nft manages: "# Warning: table ip nat is managed by iptables-nft,
 * do not touch!". nftables 1.0.6 and later print it to stderr (the facts script keeps that
 * stderr in its nft-warnings section), older ones in the listing itself.
 */
export function iptablesNftTables(text: string): Set<string> {
  const tables = new Set<string>();
  for (const m of text.matchAll(/^(?:# )?Warning: table (\S+ \S+) is managed by iptables-nft/gm)) tables.add(m[1] as string);
  return tables;
}

/** Drop counters so a rule reads the same from one run to the next. */
function withoutCounters(rule: string): string {
  return rule.replace(/\bcounter packets \d+ bytes \d+/g, 'counter').replace(/\s+/g, ' ').trim();
}

/**
 * Parse `nft list ruleset`. `iptablesHasRules`: iptables-save printed rules, so an
 * unmarked iptables-style table (ip/ip6 family, iptables table name, upper-case
 * chain names) is the same rules seen through nft and is skipped.
 */
export function parseNftRuleset(text: string, iptablesHasRules = false, stderr = ''): NftRules {
  const natRules: NatRule[] = [];
  const managedNotrack: string[] = [];
  const nativeTables: string[] = [];
  const compatTables: string[] = [];
  const managedByIptables = iptablesNftTables(`${text}\n${stderr}`);

  let table: string | null = null;
  let skip = false;
  let depth = 0;
  let chainNamesUpper = true;
  let pending: { rule: string; nat: NatRule | null; notrack: boolean }[] = [];

  const closeTable = (): void => {
    if (table === null) return;
    const [family = '', name = ''] = table.split(' ');
    const looksCompat =
      iptablesHasRules && (family === 'ip' || family === 'ip6') && IPTABLES_TABLE_NAMES.has(name) && chainNamesUpper;
    if (skip || looksCompat) {
      compatTables.push(table);
    } else {
      nativeTables.push(table);
      for (const p of pending) {
        if (p.nat) natRules.push(p.nat);
        if (p.notrack) managedNotrack.push(p.rule);
      }
    }
    table = null;
    pending = [];
  };

  for (const raw of text.split('\n')) {
    // `nft -a` appends "# handle N" to tables, chains and rules
    const line = raw.trim().replace(/\s*# handle \d+$/, '');
    if (line.length === 0 || line.startsWith('#')) continue;
    const header = /^table (\S+) (\S+) \{$/.exec(line);
    if (header && depth === 0) {
      table = `${header[1]} ${header[2]}`;
      skip = managedByIptables.has(table);
      chainNamesUpper = true;
      depth = 1;
      continue;
    }
    if (table === null) continue;
    if (line.endsWith('{')) {
      depth++;
      const chain = /^chain (\S+) \{$/.exec(line);
      if (chain && depth === 2 && (chain[1] as string) !== (chain[1] as string).toUpperCase()) chainNamesUpper = false;
      continue;
    }
    if (line === '}') {
      depth--;
      if (depth === 0) closeTable();
      continue;
    }
    if (depth !== 2) continue; // sets, maps, flowtables: not rules
    if (/^(type|policy|hook|priority|devices|comment) /.test(line)) continue;
    const rule = withoutCounters(line);
    pending.push({
      rule,
      nat: nftNatRule(rule, (table.split(' ')[0] ?? '') as string),
      notrack: /\bnotrack\b/.test(rule) && rule.includes(OUR_RULE_TAG),
    });
  }
  closeTable();
  return { natRules, managedNotrack, nativeTables, compatTables };
}

/** ipv4 / ipv6 from the table family, or from the rule itself in an inet table. */
function nftFamily(tableFamily: string, rule: string): 'ipv4' | 'ipv6' | undefined {
  if (tableFamily === 'ip') return 'ipv4';
  if (tableFamily === 'ip6') return 'ipv6';
  if (/\b(?:snat|dnat) ip6\b|\bip6 (?:saddr|daddr)\b|\bmeta nfproto ipv6\b/.test(rule)) return 'ipv6';
  if (/\b(?:snat|dnat) ip\b|\bip (?:saddr|daddr)\b|\bmeta nfproto ipv4\b/.test(rule)) return 'ipv4';
  return undefined;
}

function nftNatRule(rule: string, tableFamily: string): NatRule | null {
  const masq = /(?:^|\s)masquerade(?:\s|$)/.test(rule);
  const snat = /(?:^|\s)snat(?:\s|$)/.test(rule);
  const dnat = !masq && !snat && /(?:^|\s)dnat(?:\s|$)/.test(rule);
  if (!masq && !snat && !dnat) return null;
  let outInterface: string | null = null;
  const oif = /\boif(?:name)?\s+(!=\s+)?("([^"]*)"|\{[^}]*\}|\S+)/.exec(rule);
  if (oif) {
    const value = oif[3] ?? (oif[2] as string).replace(/[{}"\s]/g, '');
    outInterface = oif[1] ? `!${value}` : value;
  }
  const toAddresses: string[] = [];
  if (snat || dnat) {
    const to = /\b[sd]nat(?:\s+(?:ip|ip6))?\s+to\s+(\S+)/.exec(rule);
    const address = to && !(to[1] as string).startsWith('ip') && !(to[1] as string).startsWith('{') ? stripPorts(to[1] as string) : '';
    if (address !== '') toAddresses.push(address);
  }
  const family = nftFamily(tableFamily, rule);
  return natRuleSchema.parse({
    backend: 'nft',
    ...(family ? { family } : {}),
    kind: snat ? 'snat' : dnat ? 'dnat' : 'masquerade',
    outInterface,
    toAddresses,
    rule,
  });
}
