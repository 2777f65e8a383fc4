/**
 * The watch's light poll (runbook step 7): ONE exec, no table dump. A fixed read-only POSIX
 * sh script prints the gateway's clock, its network namespace, count and max, the per-CPU
 * statistics (`/proc/net/stat/nf_conntrack`, summed here) and the newest "table full" lines
 * of the kernel log. Lines with a wall clock newer than the previous poll's gateway clock
 * are "new". Plain and busybox `dmesg` print seconds since boot: those lines are dated from the
 * gateway's boot time (its clock minus its uptime), as the check dates them; a line with no
 * time at all is not counted: the drop counters are the measure, the log is proof.
 *
 *   @@poll v2@@
 *   <gateway clock, seconds since the epoch>
 *   <net:[inode]>
 *   <nf_conntrack_count>
 *   <nf_conntrack_max>
 *   <uptime, seconds (/proc/uptime); v1 output has no such line>
 *   @@stat@@
 *   <contents of /proc/net/stat/nf_conntrack>
 *   @@log@@
 *   <up to POLL_LOG_LINES "table full" lines: this namespace's, or without a namespace (older kernels)>
 *   @@end@@
 */
import { z } from 'zod';
import type { GatewaySession } from '../gateway/ssh-session.js';
import { commands } from '../gateway/commands.js';
import { SUDO_HELPER } from '../gateway/sudo-helper/invoke.js';
import { parseProcStatConntrack } from './parsers/conntrack-stats.js';
import { parseKernelLog } from './parsers/kernel-log.js';
import { parseBootTime, parseNetnsInode } from './parsers/system.js';

export const POLL_LOG_LINES = 50;

export const POLL_SCRIPT = `export LC_ALL=C
PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"
P=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && ${SUDO_HELPER} ping >/dev/null 2>&1; then P='${SUDO_HELPER}'; fi
echo '@@poll v2@@'
date -u +%s
n=$(readlink /proc/self/ns/net); echo "$n"; n=\${n#net:[}; n=\${n%]}
cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max
cut -d' ' -f1 /proc/uptime
echo '@@stat@@'
cat /proc/net/stat/nf_conntrack 2>/dev/null
echo '@@log@@'
if [ -n "$P" ]; then $P kernel-log; elif dmesg --time-format iso >/dev/null 2>&1; then dmesg --time-format iso; else dmesg; fi 2>/dev/null | grep -E "table full(, dropping| in netns \$n,)" | tail -n ${POLL_LOG_LINES}
echo '@@end@@'
`;

const intLine = z.string().regex(/^\d+$/, 'not a whole number').transform(Number);

export interface PollReading {
  /** The gateway's clock (ms) when it answered. */
  gatewayAtMs: number;
  netnsInode: number | null;
  count: number;
  max: number;
  /** Cumulative, summed over CPUs; null when /proc/net/stat/nf_conntrack could not be read. */
  stats: { drop: number; earlyDrop: number; insertFailed: number } | null;
  /** "table full" lines of this namespace, with their wall-clock times (ms). */
  tableFullAtMs: number[];
}

export class PollOutputError extends Error {
  override name = 'PollOutputError';
}

export function parsePollOutput(text: string): PollReading {
  const lines = text.split('\n');
  const v2 = lines.indexOf('@@poll v2@@');
  const start = v2 >= 0 ? v2 : lines.indexOf('@@poll v1@@');
  const statAt = lines.indexOf('@@stat@@');
  const logAt = lines.indexOf('@@log@@');
  const endAt = lines.indexOf('@@end@@');
  if (start < 0 || statAt < start || logAt < statAt || endAt < logAt) throw new PollOutputError('poll output is incomplete (missing markers)');
  const head = lines.slice(start + 1, statAt);
  const headLines = v2 >= 0 ? 5 : 4;
  if (head.length !== headLines) throw new PollOutputError(`poll header has ${head.length} lines, expected ${headLines}`);
  const [clock, netns, count, max, uptime] = head as [string, string, string, string, string | undefined];
  const parsed = z.tuple([intLine, intLine, intLine]).safeParse([clock.trim(), count.trim(), max.trim()]);
  if (!parsed.success) throw new PollOutputError(`poll header is not numeric: ${parsed.error.issues[0]?.message ?? ''}`);
  const [clockS, countN, maxN] = parsed.data;
  if (maxN <= 0) throw new PollOutputError('nf_conntrack_max is 0');
  const netnsInode = parseNetnsInode(netns);
  const procStat = parseProcStatConntrack(lines.slice(statAt + 1, logAt).join('\n'));
  const bootTime = uptime === undefined ? null : parseBootTime(`clock ${clockS} uptime ${uptime.trim()}`);
  const events = parseKernelLog(lines.slice(logAt + 1, endAt).join('\n'), {
    netnsInode,
    referenceTime: new Date(clockS * 1000).toISOString(),
    ...(bootTime ? { bootTime } : {}),
  });
  const tableFullAtMs = events.filter((e) => e.kind === 'table-full' && e.at !== null).map((e) => Date.parse(e.at as string));
  return {
    gatewayAtMs: clockS * 1000,
    netnsInode,
    count: countN,
    max: maxN,
    stats: procStat ? { drop: procStat.drop, earlyDrop: procStat.early_drop, insertFailed: procStat.insert_failed } : null,
    tableFullAtMs,
  };
}

/** Runs the poll on a (warm) session. */
export async function readPoll(session: GatewaySession, timeoutMs = 10_000): Promise<PollReading> {
  const result = await session.exec(commands.script('poll', POLL_SCRIPT), { timeoutMs });
  return parsePollOutput(result.stdout);
}

/** "table full" lines newer than the previous poll (gateway clock); none on the first poll. */
export function newTableFullLines(reading: PollReading, previousGatewayAtMs: number | null): number {
  if (previousGatewayAtMs === null) return 0;
  return reading.tableFullAtMs.filter((t) => t > previousGatewayAtMs).length;
}
