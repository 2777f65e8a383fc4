/**
 * Drop counters, summed over CPUs, from either source:
 *
 *   conntrack -S:
 *     cpu=0   	found=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0
 *   conntrack -S of older conntrack-tools (1.4.4 on kernels without ctnetlink per-CPU stats):
 *   one total, a name and a decimal value per line
 *     insert_failed		12783
 *   /proc/net/stat/nf_conntrack (when the tool is missing; hex, one row per CPU):
 *     entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
 *     00000014  00000000 00000000 ...
 *
 * Counters are cumulative since boot (or since the namespace was created).
 */
import { conntrackStatsSchema, type ConntrackStats } from '../../core/model.js';

export const STATS_KEYS = [
  'found',
  'invalid',
  'insert',
  'insert_failed',
  'drop',
  'early_drop',
  'error',
  'search_restart',
  'clash_resolve',
  'chaintoolong',
] as const satisfies readonly (keyof ConntrackStats)[];

/** Column / key aliases used by /proc and older conntrack-tools. */
const ALIASES: Record<string, keyof ConntrackStats> = {
  icmp_error: 'error',
  clashres: 'clash_resolve',
  chainlength: 'chaintoolong',
};

function canonicalKey(name: string): keyof ConntrackStats | undefined {
  const alias = ALIASES[name];
  if (alias) return alias;
  return (STATS_KEYS as readonly string[]).includes(name) ? (name as keyof ConntrackStats) : undefined;
}

export function zeroStats(): ConntrackStats {
  return {
    found: 0,
    invalid: 0,
    insert: 0,
    insert_failed: 0,
    drop: 0,
    early_drop: 0,
    error: 0,
    search_restart: 0,
    clash_resolve: 0,
    chaintoolong: 0,
  };
}

/**
 * Whether some drops were for lack of room (table full), not NAT clashes: a clash drop counts
 * in `drop` AND `insert_failed` (measured on 6.18: a port-exhaustion fill gave 4,096 / 4,096),
 * a table-full drop in `drop` only.
 */
export function droppedForLackOfRoom(stats: ConntrackStats): boolean {
  return stats.drop > stats.insert_failed;
}

/** `conntrack -S` output (per-CPU lines, or the one-total summary); null when it holds neither. */
export function parseConntrackStatsCli(text: string): ConntrackStats | null {
  return parsePerCpuLines(text) ?? parseSummaryLines(text);
}

function parsePerCpuLines(text: string): ConntrackStats | null {
  const stats = zeroStats();
  let rows = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('cpu=')) continue;
    rows++;
    for (const token of line.split(/\s+/)) {
      const eq = token.indexOf('=');
      if (eq <= 0) continue;
      const key = canonicalKey(token.slice(0, eq));
      if (key === undefined) continue;
      const value = Number(token.slice(eq + 1));
      if (Number.isSafeInteger(value) && value >= 0) stats[key] += value;
    }
  }
  return rows > 0 ? conntrackStatsSchema.parse(stats) : null;
}

/** The summary of older conntrack-tools: "name<TAB><TAB>value" lines, already a total. */
function parseSummaryLines(text: string): ConntrackStats | null {
  const stats = zeroStats();
  let known = 0;
  for (const raw of text.split('\n')) {
    const m = /^(\w+)\s+(\d+)$/.exec(raw.trim());
    if (!m) continue;
    const key = canonicalKey(m[1] as string);
    const value = Number(m[2]);
    if (key === undefined || !Number.isSafeInteger(value)) continue;
    stats[key] = value;
    known++;
  }
  return known > 0 ? conntrackStatsSchema.parse(stats) : null;
}

/** `/proc/net/stat/nf_conntrack`; null when the header or rows are missing. */
export function parseProcStatConntrack(text: string): ConntrackStats | null {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const header = lines[0]?.split(/\s+/);
  if (header === undefined || header[0] !== 'entries') return null;
  const columns = header.map(canonicalKey);
  const stats = zeroStats();
  let rows = 0;
  for (const line of lines.slice(1)) {
    const values = line.split(/\s+/);
    if (values.length !== header.length || !values.every((v) => /^[0-9a-fA-F]+$/.test(v))) continue;
    rows++;
    values.forEach((v, i) => {
      const key = columns[i];
      if (key !== undefined) stats[key] += Number.parseInt(v, 16);
    });
  }
  return rows > 0 ? conntrackStatsSchema.parse(stats) : null;
}
