/**
 * Kernel log lines about conntrack, from `dmesg --time-format iso` (or journalctl -k
 * -o short-iso-precise, or plain `dmesg`):
 *
 *   2026-11-24T13:55:55,589626+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet
 *   2026-11-24T13:55:55,589626+00:00 nf_conntrack: table full, dropping packet        (kernels before the netns hint)
 *   2026-11-24T13:55:55,589626+00:00 net_ratelimit: 312 callbacks suppressed
 *   [ 1234.567890] nf_conntrack: table full, dropping packet                          (plain dmesg, busybox dmesg)
 *
 * and the wall-clock formats of other tools (read as UTC, since they carry no zone; the
 * facts script could later print the gateway's zone):
 *
 *   [Tue Nov 20 22:30:22 2018] nf_conntrack: table full, dropping packet                              (dmesg -T)
 *   Sat Sep  9 16:28:18 2017 kern.warn kernel: [12345.678] nf_conntrack: table full, dropping packet (OpenWrt logread)
 *   Nov 20 22:30:22 host kernel: [12345.678] nf_conntrack: table full, dropping packet              (syslog, journalctl -o short[-precise])
 *
 * Plain `dmesg` and busybox `dmesg` print seconds since boot: dated from `bootTime` (the
 * gateway's clock minus its uptime, read with the log) when given, else they get no time.
 * Like `dmesg -T`, this assumes the gateway never slept (the kernel's stamps stop while
 * suspended). Kernel 6.1 (Debian 12) writes "nf_conntrack: nf_conntrack: table full, dropping
 * packet" (no namespace) and "net_ratelimit: N callbacks suppressed" before the next burst.
 *
 * Syslog lines carry no year: it is taken from `referenceTime` (the time the log was read),
 * one year back when that would put the line in the future; without it they get no time.
 * "nf_conntrack: expectation table full" (nf_conntrack_expect_max) is its own kind.
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
  /** When the log was read (ISO): gives the year of syslog lines, which print none. */
  referenceTime?: string;
  /** When the gateway booted (ISO, its clock minus its uptime): dates `[ seconds]` lines. */
  bootTime?: string;
}

const ISO_PREFIX = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+(.*)$/;
const MONO_PREFIX = /^\[\s*(\d+\.\d+)\]\s*(.*)$/;
/** journalctl's "host kernel: " between the time and the message. */
const JOURNAL_PREFIX = /^\S+\s+kernel:\s+(.*)$/;
/** dmesg -T: "[Tue Nov 20 22:30:22 2018] message". */
const DMESG_T_PREFIX = /^\[(?:[A-Z][a-z]{2} )?([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d+)?) (\d{4})\]\s*(.*)$/;
/** OpenWrt logread: "Sat Sep  9 16:28:18 2017 kern.warn kernel: message". */
const LOGREAD_PREFIX = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d) (\d{4}) \S+\.\S+ kernel:\s*(.*)$/;
/** syslog / journalctl short(-precise): "Nov 20 22:30:22[.123456] [host] kernel: message" (no year). */
const SYSLOG_PREFIX = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d+)?) (?:\S+ )?kernel:\s*(.*)$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const EXPECT_FULL = /expectation table full/;
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

/** Month name, day, time and year of a zoneless stamp -> ISO, read as UTC; null when invalid. */
function utcTime(month: string, day: string, time: string, year: number): string | null {
  const m = MONTHS.indexOf(month);
  if (m < 0) return null;
  const iso = `${String(year).padStart(4, '0')}-${String(m + 1).padStart(2, '0')}-${day.padStart(2, '0')}T${time}Z`;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/** A syslog stamp (no year) -> ISO in the reference time's year, or the year before when that is later than it. */
function syslogTime(month: string, day: string, time: string, referenceMs: number | null): string | null {
  if (referenceMs === null) return null;
  const year = new Date(referenceMs).getUTCFullYear();
  const sameYear = utcTime(month, day, time, year);
  if (sameYear === null || Date.parse(sameYear) <= referenceMs) return sameYear;
  return utcTime(month, day, time, year - 1);
}

/** The time and the message of one line, whatever tool printed it. */
function splitStamp(line: string, referenceMs: number | null, bootMs: number | null): { at: string | null; message: string } {
  const iso = ISO_PREFIX.exec(line);
  if (iso) {
    const rest = iso[2] as string;
    return { at: normalizeLogTime(iso[1] as string), message: withoutMonotonic(JOURNAL_PREFIX.exec(rest)?.[1] ?? rest) };
  }
  const dmesgT = DMESG_T_PREFIX.exec(line);
  if (dmesgT) {
    const [, month, day, time, year, message] = dmesgT as unknown as [string, string, string, string, string, string];
    return { at: utcTime(month, day, time, Number(year)), message };
  }
  const logread = LOGREAD_PREFIX.exec(line);
  if (logread) {
    const [, month, day, time, year, message] = logread as unknown as [string, string, string, string, string, string];
    return { at: utcTime(month, day, time, Number(year)), message: withoutMonotonic(message) };
  }
  const syslog = SYSLOG_PREFIX.exec(line);
  if (syslog) {
    const [, month, day, time, message] = syslog as unknown as [string, string, string, string, string];
    return { at: syslogTime(month, day, time, referenceMs), message: withoutMonotonic(message) };
  }
  const mono = MONO_PREFIX.exec(line);
  if (mono) {
    const at = bootMs === null ? null : new Date(bootMs + Math.round(Number(mono[1]) * 1000)).toISOString();
    return { at, message: mono[2] as string };
  }
  return { at: null, message: line };
}

/** "[12345.678] message" -> "message" (the seconds since boot that syslog copies from dmesg). */
function withoutMonotonic(message: string): string {
  return MONO_PREFIX.exec(message)?.[2] ?? message;
}

interface RawEvent extends KernelLogEvent {
  ms: number | null;
}

function classify(line: string, referenceMs: number | null, bootMs: number | null): RawEvent | null {
  const trimmed = line.trim();
  if (trimmed.length === 0) return null;
  const { at, message } = splitStamp(trimmed, referenceMs, bootMs);
  const ms = at === null ? null : Date.parse(at);

  const suppressed = SUPPRESSED.exec(message);
  if (suppressed) {
    return { at, kind: 'suppressed', netns: null, suppressed: Number(suppressed[1]), line: trimmed, ms };
  }
  if (!/conntrack/i.test(message)) return null;
  if (EXPECT_FULL.test(message)) {
    return { at, kind: 'expect-full', netns: null, suppressed: null, line: trimmed, ms };
  }
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
  const reference = opts.referenceTime === undefined ? Number.NaN : Date.parse(opts.referenceTime);
  const referenceMs = Number.isNaN(reference) ? null : reference;
  const boot = opts.bootTime === undefined ? Number.NaN : Date.parse(opts.bootTime);
  const bootMs = Number.isNaN(boot) ? null : boot;
  for (const line of text.split('\n')) {
    const event = classify(line, referenceMs, bootMs);
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
