/**
 * Kernel log lines about conntrack, from `dmesg --time-format iso` (or journalctl -k
 * -o short-iso-precise, or plain `dmesg`):
 *
 *   2026-11-24T13:55:55,589626+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet
 *   2026-11-24T13:55:55,589626+00:00 nf_conntrack: table full, dropping packet        (kernels before the netns hint)
 *   2026-11-24T13:55:55,589626+00:00 net_ratelimit: 312 callbacks suppressed
 *   [ 1234.567890] nf_conntrack: table full, dropping packet                          (no wall clock: at = null)
 *
 * The log is shared by every network namespace of the host, so lines that name
 * another namespace are dropped when the gateway's own inode is known.
 */
import { kernelLogEventSchema, type KernelLogEvent } from '../../core/model.js';

export interface KernelLogOptions {
  /** The gateway shell's network namespace inode (`readlink /proc/self/ns/net`), if known. */
  netnsInode: number | null;
  /** Keep lines that name another namespace (default false). */
  keepOtherNetns?: boolean;
}

const ISO_PREFIX = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+(.*)$/;
const MONO_PREFIX = /^\[\s*\d+\.\d+\]\s*(.*)$/;
/** journalctl's "host kernel: " between the time and the message. */
const JOURNAL_PREFIX = /^\S+\s+kernel:\s+(.*)$/;
const TABLE_FULL = /table full(?: in netns (\d+))?/;
const SUPPRESSED = /net_ratelimit:\s+(\d+) callbacks suppressed/;
const NETNS = /\bnetns (\d+)/;

/** ISO time with a comma or long fraction -> `Date#toISOString()`; null when unparseable. */
export function normalizeLogTime(stamp: string): string | null {
  let s = stamp.replace(',', '.');
  // "+0000" -> "+00:00" (journalctl short-iso)
  s = s.replace(/([+-]\d\d)(\d\d)$/, '$1:$2');
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

interface RawEvent extends KernelLogEvent {
  ms: number | null;
}

function classify(line: string): RawEvent | null {
  const trimmed = line.trim();
  if (trimmed.length === 0) return null;
  let at: string | null = null;
  let message = trimmed;
  const iso = ISO_PREFIX.exec(trimmed);
  if (iso) {
    at = normalizeLogTime(iso[1] as string);
    message = iso[2] as string;
    const journal = JOURNAL_PREFIX.exec(message);
    if (journal) message = journal[1] as string;
  } else {
    const mono = MONO_PREFIX.exec(trimmed);
    if (mono) message = mono[1] as string;
  }
  const ms = at === null ? null : Date.parse(at);

  const suppressed = SUPPRESSED.exec(message);
  if (suppressed) {
    return { at, kind: 'suppressed', netns: null, suppressed: Number(suppressed[1]), line: trimmed, ms };
  }
  if (!/conntrack/i.test(message)) return null;
  const full = TABLE_FULL.exec(message);
  if (full) {
    return { at, kind: 'table-full', netns: full[1] !== undefined ? Number(full[1]) : null, suppressed: null, line: trimmed, ms };
  }
  const netns = NETNS.exec(message);
  return { at, kind: 'other', netns: netns ? Number(netns[1]) : null, suppressed: null, line: trimmed, ms };
}

/**
 * Parse and filter. "N callbacks suppressed" is printed by the next rate-limited
 * message after a burst, for every caller of net_ratelimit() in every namespace, so
 * one is kept only when the line after it is a kept "table full" line within a second
 * (the message that printed it). A suppressed line with nothing after it is dropped.
 */
export function parseKernelLog(text: string, opts: KernelLogOptions): KernelLogEvent[] {
  const raw: RawEvent[] = [];
  for (const line of text.split('\n')) {
    const event = classify(line);
    if (event) raw.push(event);
  }
  const ours = (e: RawEvent): boolean =>
    opts.keepOtherNetns === true || e.netns === null || opts.netnsInode === null || e.netns === opts.netnsInode;

  const out: KernelLogEvent[] = [];
  raw.forEach((event, i) => {
    if (event.kind === 'suppressed') {
      const next = raw[i + 1];
      if (next === undefined || next.kind !== 'table-full' || !ours(next)) return;
      if (event.ms !== null && next.ms !== null && Math.abs(next.ms - event.ms) > 1000) return;
    } else if (!ours(event)) {
      return;
    }
    const { ms: _ms, ...rest } = event;
    out.push(kernelLogEventSchema.parse(rest));
  });
  return out;
}
