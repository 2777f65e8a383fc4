/**
 * One conntrack table line -> ConntrackEntry, for both formats:
 *
 *   conntrack -L:
 *     tcp      6 431997 ESTABLISHED src=A dst=B sport=1 dport=2 src=B dst=C sport=2 dport=1 [ASSURED] mark=0 use=1
 *     udp      17 27 src=A dst=B sport=1 dport=2 [UNREPLIED] src=B dst=C sport=2 dport=1 mark=0 zone=7 use=1
 *   /proc/net/nf_conntrack (same, after "<l3name> <l3num>", always with zone=, full-form IPv6):
 *     ipv4     2 gre      47 27 timeout=30, stream_timeout=180 src=A dst=B srckey=0x0 dstkey=0x0 [UNREPLIED] src=...
 *   offloaded to a flowtable (kernel 4.16+): no timeout and no state, flagged [OFFLOAD] or [HW_OFFLOAD]:
 *     tcp      6 src=A dst=B sport=1 dport=2 src=B dst=C sport=2 dport=1 [OFFLOAD] mark=0 use=2
 *
 * Parsed by key=value tokens, never by field position (the state word exists only for
 * some protocols and flags sit between or after the tuples). The first src= opens the
 * original tuple, the second src= the reply tuple. Unknown keys (type/code/id, srckey,
 * secctx, labels, helper, timeout=..., zone-orig...) are skipped.
 *
 * Hand-rolled scanner over the bytes as they arrive (no text decoding, no line strings):
 * keys matched on a few bytes, integers parsed in place, protocol and state words are
 * shared constants, and addresses come from an AddressCache (a table repeats a few
 * addresses: a hit allocates nothing). Much of the bot's CPU during a check is this parse
 * (bench: `npm run bench -- --only=sizes`); strings go through the same scanner
 * (`parseConntrackLine`), so both paths give the same entries.
 */
import type { ConntrackEntry, Tuple } from '../../core/model.js';
import { AddressCache } from './address-cache.js';

export { compressIpv6, isConntrackAddress, isIpv4Address } from './addresses.js';

const SPACE = 32;
const TAB = 9;
const EQ = 61;
const LBRACKET = 91;
const DIGIT0 = 48;

/**
 * Known protocol and state words. Returning these constants instead of fresh slices
 * saves an allocation per line and makes Map lookups on them cheap (their hash is
 * computed once).
 */
const PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'dccp', 'gre', 'udplite', 'unknown'];
const STATES = [
  'ESTABLISHED',
  'TIME_WAIT',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'CLOSE',
  'NONE',
  'SYN_SENT2',
  'CLOSED',
  'COOKIE_WAIT',
  'COOKIE_ECHOED',
  'SHUTDOWN_SENT',
  'SHUTDOWN_RECD',
  'SHUTDOWN_ACK_SENT',
  'HEARTBEAT_SENT',
  'HEARTBEAT_ACKED',
  'REQUEST',
  'RESPOND',
  'PARTOPEN',
  'OPEN',
  'CLOSEREQ',
  'CLOSING',
  'TIMEWAIT',
  'IGNORE',
  'INVALID',
];

/** What a protocol or state word this parser does not know may look like. */
const UNKNOWN_PROTOCOL = /^[a-z][a-z0-9_-]{0,15}$/;
const UNKNOWN_STATE = /^[A-Z][A-Z0-9_]{0,31}$/;

/** buf[start, end) as one of `known` (the same string object), or a fresh string. */
function word(buf: Buffer, start: number, end: number, known: readonly string[]): string {
  const n = end - start;
  const c0 = buf[start];
  for (let k = 0; k < known.length; k++) {
    const w = known[k] as string;
    if (w.length !== n || w.charCodeAt(0) !== c0) continue;
    let i = 1;
    while (i < n && w.charCodeAt(i) === buf[start + i]) i++;
    if (i === n) return w;
  }
  return latin1(buf, start, end);
}

function latin1(buf: Buffer, start: number, end: number): string {
  return buf.toString('latin1', start, end);
}

/** Parse a base-10 non-negative integer in buf[start, end); -1 when not all digits. */
function parseUint(buf: Buffer, start: number, end: number): number {
  if (start >= end || end - start > 15) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = (buf[i] as number) - DIGIT0;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Parse a number that may be hex (0x...) or decimal (mark= is decimal, but be lenient). */
function parseMarkValue(buf: Buffer, start: number, end: number): number {
  if (end - start > 2 && buf[start] === DIGIT0 && ((buf[start + 1] as number) | 32) === 120) {
    const n = Number.parseInt(latin1(buf, start + 2, end), 16);
    return Number.isFinite(n) ? n : -1;
  }
  return parseUint(buf, start, end);
}

/** True when buf[start, start + text.length) is `text` (ASCII). */
function bytesAre(buf: Buffer, start: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (buf[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Addresses of the lines parsed by parseConntrackLine (the streaming aggregator has its own). */
const sharedAddresses = new AddressCache(10);
const encoder = new TextEncoder();
let lineBytes = Buffer.alloc(1024);
const lineScratch = scratchEntry();

/**
 * Parse one line of `conntrack -L` or `/proc/net/nf_conntrack`.
 * Returns null for anything that is not a complete entry: blank lines, the
 * "N flow entries have been shown." summary, garbage, and truncated lines (both tuples
 * must be complete and followed by at least one more token: a flag, mark= or use=).
 *
 * With `into`, the result is written into that object (and its orig/reply tuples) and
 * returned, with absent optional fields set to undefined. The caller must copy whatever
 * it keeps, as the next call overwrites it.
 */
export function parseConntrackLine(line: string, into?: ConntrackEntry): ConntrackEntry | null {
  if (line.length * 3 > lineBytes.length) lineBytes = Buffer.alloc(Math.max(line.length * 3, lineBytes.length * 2));
  const { written } = encoder.encodeInto(line, lineBytes);
  const entry = parseConntrackBytes(lineBytes, 0, written, into ?? lineScratch, sharedAddresses);
  if (entry === null || into !== undefined) return entry;
  return detachedEntry(entry);
}

/** A fresh entry object with only the fields that are present (what callers of the string API keep). */
function detachedEntry(e: ConntrackEntry): ConntrackEntry {
  const o = e.orig;
  const r = e.reply;
  const ported = o.sport !== undefined;
  const orig: Tuple = ported ? { src: o.src, dst: o.dst, sport: o.sport, dport: o.dport } : { src: o.src, dst: o.dst };
  const reply: Tuple = ported ? { src: r.src, dst: r.dst, sport: r.sport, dport: r.dport } : { src: r.src, dst: r.dst };
  const entry: ConntrackEntry = { family: e.family, proto: e.proto, protoNum: e.protoNum, timeout: e.timeout, orig, reply, unreplied: e.unreplied, assured: e.assured };
  if (e.state !== undefined) entry.state = e.state;
  if (e.mark !== undefined) entry.mark = e.mark;
  if (e.zone !== undefined) entry.zone = e.zone;
  if (e.offload !== undefined) entry.offload = e.offload;
  return entry;
}

/**
 * Parse the line in buf[from, to) (without its newline) into `into`, with the addresses
 * from `addresses`. Returns `into`, or null when the line is not a complete entry (see
 * parseConntrackLine). Nothing is allocated but the strings of addresses the cache misses.
 */
export function parseConntrackBytes(buf: Buffer, from: number, to: number, into: ConntrackEntry, addresses: AddressCache): ConntrackEntry | null {
  let len = to;
  // ignore trailing whitespace (\r from CRLF, tabs, spaces)
  while (len > from && (buf[len - 1] as number) <= SPACE) len--;
  let i = from;
  // ---- token 1: "ipv4"/"ipv6" (proc format) or the protocol name
  while (i < len && (buf[i] === SPACE || buf[i] === TAB)) i++;
  let start = i;
  while (i < len && (buf[i] as number) > SPACE) i++;
  if (i === start) return null;
  let family: 'ipv4' | 'ipv6' | undefined;
  if (i - start === 4 && buf[start] === 105 /* i */ && buf[start + 1] === 112 /* p */ && buf[start + 2] === 118 /* v */ && (buf[start + 3] === 52 || buf[start + 3] === 54)) {
    family = buf[start + 3] === 52 ? 'ipv4' : 'ipv6';
    // l3 protocol number
    while (i < len && (buf[i] as number) <= SPACE) i++;
    start = i;
    while (i < len && (buf[i] as number) > SPACE) i++;
    if (parseUint(buf, start, i) < 0) return null;
    // protocol name
    while (i < len && (buf[i] as number) <= SPACE) i++;
    start = i;
    while (i < len && (buf[i] as number) > SPACE) i++;
    if (i === start) return null;
  }
  // protocol must start with a lowercase letter ("tcp", "udp", "unknown", ...); an unknown one is a plain word
  const p0 = buf[start] as number;
  if (p0 < 97 || p0 > 122) return null;
  const proto = word(buf, start, i, PROTOCOLS);
  if (PROTOCOLS.indexOf(proto) < 0 && !UNKNOWN_PROTOCOL.test(proto)) return null;

  // ---- protocol number
  while (i < len && (buf[i] as number) <= SPACE) i++;
  start = i;
  while (i < len && (buf[i] as number) > SPACE) i++;
  const protoNum = parseUint(buf, start, i);
  if (protoNum < 0 || protoNum > 255) return null;

  // ---- remaining timeout (absent on entries offloaded to a flowtable: the tuples follow)
  while (i < len && (buf[i] as number) <= SPACE) i++;
  start = i;
  while (i < len && (buf[i] as number) > SPACE) i++;
  let timeout = parseUint(buf, start, i);
  if (timeout < 0) {
    if (i - start < 5 || !bytesAre(buf, start, 'src=')) return null;
    i = start; // the original tuple starts here; the line must say [OFFLOAD] or [HW_OFFLOAD]
  }

  let state: string | undefined;
  let oSrc: string | undefined;
  let oDst: string | undefined;
  let oSport: number | undefined;
  let oDport: number | undefined;
  let rSrc: string | undefined;
  let rDst: string | undefined;
  let rSport: number | undefined;
  let rDport: number | undefined;
  let fam = 0; // the family of the original source; every address must have it
  let dir = 0; // 0 before any tuple, 1 original, 2 reply
  let unreplied = false;
  let assured = false;
  let offload: ConntrackEntry['offload'];
  let mark: number | undefined;
  let zone: number | undefined;
  /** Tokens seen after the last reply-tuple field (0 means the line may be cut). */
  let afterReply = 0;

  // ---- key=value tokens (separated by spaces), flags, and the state word; keys are matched on a few bytes.
  // Keys are matched only on bytes inside the token (a buffer holds other lines after this one).
  while (i < len) {
    while (i < len && buf[i] === SPACE) i++;
    if (i >= len) break;
    start = i;
    while (i < len && buf[i] !== SPACE) i++;
    const end = i;
    const n = end - start;
    const c0 = buf[start];
    if (dir === 2) afterReply++;

    if (c0 === 115 /* s */) {
      if (n > 3 && buf[start + 3] === EQ && buf[start + 1] === 114 && buf[start + 2] === 99) {
        // src=
        if (start + 4 >= end) return null;
        if (dir === 0) {
          dir = 1;
          addresses.lookup(buf, start + 4, end);
          oSrc = addresses.lastValue;
          fam = addresses.lastFamily;
          if (fam === 0) return null;
        } else if (dir === 1) {
          dir = 2;
          addresses.lookup(buf, start + 4, end);
          if (addresses.lastFamily !== fam) return null;
          rSrc = addresses.lastValue;
          afterReply = 0;
        }
        continue;
      }
      if (n > 5 && buf[start + 5] === EQ && buf[start + 1] === 112 && buf[start + 4] === 116) {
        // sport=
        const port = parseUint(buf, start + 6, end);
        if (port < 0 || port > 65535) return null;
        if (dir === 1) oSport = port;
        else if (dir === 2) {
          rSport = port;
          afterReply = 0;
        }
        continue;
      }
    } else if (c0 === 100 /* d */) {
      if (n > 3 && buf[start + 3] === EQ && buf[start + 1] === 115 && buf[start + 2] === 116) {
        // dst=
        if (start + 4 >= end) return null;
        if (dir === 1) {
          addresses.lookup(buf, start + 4, end);
          if (addresses.lastFamily !== fam) return null;
          oDst = addresses.lastValue;
        } else if (dir === 2) {
          addresses.lookup(buf, start + 4, end);
          if (addresses.lastFamily !== fam) return null;
          rDst = addresses.lastValue;
          afterReply = 0;
        }
        continue;
      }
      if (n > 5 && buf[start + 5] === EQ && buf[start + 1] === 112 && buf[start + 4] === 116) {
        // dport=
        const port = parseUint(buf, start + 6, end);
        if (port < 0 || port > 65535) return null;
        if (dir === 1) oDport = port;
        else if (dir === 2) {
          rDport = port;
          afterReply = 0;
        }
        continue;
      }
    } else if (c0 === LBRACKET) {
      // [UNREPLIED] [ASSURED] [OFFLOAD] [HW_OFFLOAD] ...
      const c1 = buf[start + 1];
      if (c1 === 85 /* U */ && n === 11) unreplied = true;
      else if (c1 === 65 /* A */ && n === 9) assured = true;
      else if (c1 === 79 /* O */ && n === 9 && bytesAre(buf, start, '[OFFLOAD]')) offload = 'software';
      else if (c1 === 72 /* H */ && n === 12 && bytesAre(buf, start, '[HW_OFFLOAD]')) offload = 'hardware';
      continue;
    } else if (c0 === 109 /* m */) {
      if (n > 4 && buf[start + 4] === EQ && buf[start + 1] === 97 && buf[start + 3] === 107) {
        // mark=
        const value = parseMarkValue(buf, start + 5, end);
        if (value >= 0) mark = value;
        continue;
      }
    } else if (c0 === 122 /* z */) {
      if (n > 4 && buf[start + 4] === EQ && buf[start + 1] === 111 && buf[start + 3] === 101) {
        // zone=
        const value = parseUint(buf, start + 5, end);
        if (value >= 0) zone = value;
        continue;
      }
    }
    // A bare word (no '=') before the tuples is the protocol state (TCP/SCTP/DCCP).
    if (dir === 0 && state === undefined) {
      let eq = start;
      while (eq < end && buf[eq] !== EQ) eq++;
      if (eq === end) state = word(buf, start, end, STATES);
    }
  }

  if (oSrc === undefined || oDst === undefined || rSrc === undefined || rDst === undefined) return null;
  // No timeout is printed only for flowtable entries: the kernel keeps them alive itself.
  if (timeout < 0) {
    if (offload === undefined) return null;
    timeout = 0;
  }
  // A state word the list does not know must still look like one (it is shown in chat).
  if (state !== undefined && STATES.indexOf(state) < 0 && !UNKNOWN_STATE.test(state)) return null;
  // A ported protocol must have both ports in both directions.
  const ported = oSport !== undefined || oDport !== undefined || rSport !== undefined || rDport !== undefined;
  if (ported && (oSport === undefined || oDport === undefined || rSport === undefined || rDport === undefined)) return null;
  // Nothing after the reply tuple: the line was cut (possibly inside an address).
  if (afterReply === 0) return null;
  // The line's own family (the /proc format says it) must be its addresses'.
  if (family === undefined) family = fam === 6 ? 'ipv6' : 'ipv4';
  else if ((family === 'ipv6') !== (fam === 6)) return null;

  into.family = family;
  into.proto = proto;
  into.protoNum = protoNum;
  into.timeout = timeout;
  into.state = state;
  into.unreplied = unreplied;
  into.assured = assured;
  into.offload = offload;
  into.mark = mark;
  into.zone = zone;
  const o = into.orig;
  o.src = oSrc;
  o.dst = oDst;
  o.sport = oSport;
  o.dport = oDport;
  const r = into.reply;
  r.src = rSrc;
  r.dst = rDst;
  r.sport = rSport;
  r.dport = rDport;
  return into;
}

/** A scratch entry for `parseConntrackLine(line, into)`. */
export function scratchEntry(): ConntrackEntry {
  return {
    family: 'ipv4',
    proto: '',
    protoNum: 0,
    timeout: 0,
    state: undefined,
    orig: { src: '', dst: '', sport: undefined, dport: undefined },
    reply: { src: '', dst: '', sport: undefined, dport: undefined },
    unreplied: false,
    assured: false,
    offload: undefined,
    mark: undefined,
    zone: undefined,
  };
}
