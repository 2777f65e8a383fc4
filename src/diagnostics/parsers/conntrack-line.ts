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
 * Hand-rolled scanner: tokens found with the native indexOf(" "), keys matched on a few
 * char codes, integers parsed in place, substrings
 * only for addresses; protocol and state words are shared constants. Measured against
 * a split-based and a regex-per-token parser and a key search with String#indexOf(" src=")
 * (slower: multi-char patterns), see bench/tools/parse-throughput.ts.
 */
import { isIPv6 } from 'node:net';
import type { ConntrackEntry, Tuple } from '../../core/model.js';

const SPACE = 32;
const TAB = 9;
const EQ = 61;
const LBRACKET = 91;
const DIGIT0 = 48;
const COLON = 58;

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

function word(line: string, start: number, end: number, known: readonly string[]): string {
  const n = end - start;
  for (let k = 0; k < known.length; k++) {
    const w = known[k] as string;
    if (w.length === n && line.startsWith(w, start)) return w;
  }
  return line.slice(start, end);
}

/** The last reply-destination (NAT address) seen: most lines repeat it. */
let lastReplyDst = '';

/** line[start, end) as a string, reusing `same` when the text is identical. */
function sliceOr(line: string, start: number, end: number, same: string | undefined): string {
  if (same !== undefined && same.length === end - start && line.startsWith(same, start)) return same;
  return line.slice(start, end);
}

/** Parse a base-10 non-negative integer in line[start, end); -1 when not all digits. */
function parseUint(line: string, start: number, end: number): number {
  if (start >= end || end - start > 15) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = line.charCodeAt(i) - DIGIT0;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Parse a number that may be hex (0x...) or decimal (mark= is decimal, but be lenient). */
function parseMarkValue(line: string, start: number, end: number): number {
  if (end - start > 2 && line.charCodeAt(start) === DIGIT0 && (line.charCodeAt(start + 1) | 32) === 120) {
    const n = Number.parseInt(line.slice(start + 2, end), 16);
    return Number.isFinite(n) ? n : -1;
  }
  return parseUint(line, start, end);
}

/** A dotted-quad IPv4 address (four decimal octets 0-255, no sign, at most three digits each), scanned in place. */
export function isIpv4Address(addr: string): boolean {
  const n = addr.length;
  if (n < 7 || n > 15) return false;
  let parts = 0;
  let digits = 0;
  let octet = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? addr.charCodeAt(i) : 46;
    if (c === 46 /* . */) {
      if (digits === 0 || octet > 255) return false;
      parts++;
      digits = 0;
      octet = 0;
      continue;
    }
    const d = c - DIGIT0;
    if (d < 0 || d > 9 || ++digits > 3) return false;
    octet = octet * 10 + d;
  }
  return parts === 4;
}

/**
 * An address as conntrack prints it: IPv4, or IPv6 (compressed or full form). Anything
 * else (a word, markup, a host name) makes the line unparsed: addresses are shown in
 * chat and used in delete tuples, so only addresses get through.
 */
export function isConntrackAddress(addr: string): boolean {
  return addressFamily(addr) !== 0;
}

/** 4 for an IPv4 address, 6 for an IPv6 one, 0 for anything else. */
function addressFamily(addr: string): 0 | 4 | 6 {
  if (addr.indexOf(':') < 0) return isIpv4Address(addr) ? 4 : 0;
  return isFullIpv6(addr) || (addr.length <= 45 && isIPv6(addr)) ? 6 : 0;
}

/** The last reply destination that passed addressFamily (most lines repeat it: one compare instead of a scan). */
let lastCheckedReplyDst = '';
let lastCheckedReplyDstFamily: 0 | 4 | 6 = 0;

/** The full form /proc/net/nf_conntrack prints (8 groups of 4 hex digits), scanned in place: the common IPv6 case without a regex. */
function isFullIpv6(addr: string): boolean {
  if (addr.length !== 39) return false;
  for (let i = 0; i < 39; i++) {
    const c = addr.charCodeAt(i);
    if (i % 5 === 4) {
      if (c !== COLON) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false;
  }
  return true;
}

/**
 * Canonical (RFC 5952) text for a full-form IPv6 address as /proc/net/nf_conntrack prints it
 * ("2001:0002:0000:0001:0000:0000:0000:0002" -> "2001:2:0:1::2"), so both formats give the
 * same keys. Anything else is returned unchanged.
 */
export function compressIpv6(addr: string): string {
  if (addr.length !== 39) return addr;
  const groups = addr.split(':');
  if (groups.length !== 8) return addr;
  const parts: string[] = new Array<string>(8);
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    const g = groups[i] as string;
    if (g.length !== 4) return addr;
    const v = Number.parseInt(g, 16);
    if (!Number.isFinite(v)) return addr;
    parts[i] = v.toString(16);
    if (v === 0) {
      if (runStart < 0) runStart = i;
      const len = i - runStart + 1;
      if (len > bestLen) {
        bestLen = len;
        bestStart = runStart;
      }
    } else {
      runStart = -1;
    }
  }
  if (bestLen < 2) return parts.join(':');
  const head = parts.slice(0, bestStart).join(':');
  const tail = parts.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

/**
 * Parse one line of `conntrack -L` or `/proc/net/nf_conntrack`.
 * Returns null for anything that is not a complete entry: blank lines, the
 * "N flow entries have been shown." summary, garbage, and truncated lines (both tuples
 * must be complete and followed by at least one more token: a flag, mark= or use=).
 *
 * With `into`, the result is written into that object (and its orig/reply tuples) and
 * returned, with absent optional fields set to undefined: no allocation but the
 * strings. The caller must copy whatever it keeps, as the next call overwrites it.
 */
export function parseConntrackLine(line: string, into?: ConntrackEntry): ConntrackEntry | null {
  let len = line.length;
  // ignore trailing whitespace (\r from CRLF, tabs, spaces)
  while (len > 0 && line.charCodeAt(len - 1) <= SPACE) len--;
  let i = 0;
  // ---- token 1: "ipv4"/"ipv6" (proc format) or the protocol name
  while (i < len && (line.charCodeAt(i) === SPACE || line.charCodeAt(i) === TAB)) i++;
  let start = i;
  while (i < len && line.charCodeAt(i) > SPACE) i++;
  if (i === start) return null;
  let family: 'ipv4' | 'ipv6' | undefined;
  let proto: string;
  const first = line.slice(start, i);
  if (first === 'ipv4' || first === 'ipv6') {
    family = first;
    // l3 protocol number
    while (i < len && line.charCodeAt(i) <= SPACE) i++;
    start = i;
    while (i < len && line.charCodeAt(i) > SPACE) i++;
    if (parseUint(line, start, i) < 0) return null;
    // protocol name
    while (i < len && line.charCodeAt(i) <= SPACE) i++;
    start = i;
    while (i < len && line.charCodeAt(i) > SPACE) i++;
    if (i === start) return null;
    proto = word(line, start, i, PROTOCOLS);
  } else {
    proto = word(line, start, i, PROTOCOLS);
  }
  // protocol must start with a lowercase letter ("tcp", "udp", "unknown", ...); an unknown one is a plain word
  const p0 = proto.charCodeAt(0);
  if (p0 < 97 || p0 > 122) return null;
  if (PROTOCOLS.indexOf(proto) < 0 && !UNKNOWN_PROTOCOL.test(proto)) return null;

  // ---- protocol number
  while (i < len && line.charCodeAt(i) <= SPACE) i++;
  start = i;
  while (i < len && line.charCodeAt(i) > SPACE) i++;
  const protoNum = parseUint(line, start, i);
  if (protoNum < 0 || protoNum > 255) return null;

  // ---- remaining timeout (absent on entries offloaded to a flowtable: the tuples follow)
  while (i < len && line.charCodeAt(i) <= SPACE) i++;
  start = i;
  while (i < len && line.charCodeAt(i) > SPACE) i++;
  let timeout = parseUint(line, start, i);
  if (timeout < 0) {
    if (!line.startsWith('src=', start)) return null;
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
  let dir = 0; // 0 before any tuple, 1 original, 2 reply
  let unreplied = false;
  let assured = false;
  let offload: ConntrackEntry['offload'];
  let mark: number | undefined;
  let zone: number | undefined;
  /** Tokens seen after the last reply-tuple field (0 means the line may be cut). */
  let afterReply = 0;

  // ---- key=value tokens, flags, and the state word. Tokens are found with the native
  // indexOf (much cheaper than a JS loop per character); keys are matched on a few chars.
  while (i < len) {
    while (i < len && line.charCodeAt(i) === SPACE) i++;
    if (i >= len) break;
    start = i;
    let end = line.indexOf(' ', start);
    if (end < 0 || end > len) end = len;
    i = end;
    const c0 = line.charCodeAt(start);
    if (dir === 2) afterReply++;

    if (c0 === 115 /* s */) {
      if (line.charCodeAt(start + 3) === EQ && line.charCodeAt(start + 1) === 114 && line.charCodeAt(start + 2) === 99) {
        // src=
        if (start + 4 >= end) return null;
        if (dir === 0) {
          dir = 1;
          oSrc = line.slice(start + 4, end);
        } else if (dir === 1) {
          dir = 2;
          // usually the original destination (no DNAT): reuse that string
          rSrc = sliceOr(line, start + 4, end, oDst);
          afterReply = 0;
        }
        continue;
      }
      if (line.charCodeAt(start + 5) === EQ && line.charCodeAt(start + 1) === 112 && line.charCodeAt(start + 4) === 116) {
        // sport=
        const n = parseUint(line, start + 6, end);
        if (n < 0 || n > 65535) return null;
        if (dir === 1) oSport = n;
        else if (dir === 2) {
          rSport = n;
          afterReply = 0;
        }
        continue;
      }
    } else if (c0 === 100 /* d */) {
      if (line.charCodeAt(start + 3) === EQ && line.charCodeAt(start + 1) === 115 && line.charCodeAt(start + 2) === 116) {
        // dst=
        if (start + 4 >= end) return null;
        if (dir === 1) oDst = line.slice(start + 4, end);
        else if (dir === 2) {
          rDst = sliceOr(line, start + 4, end, lastReplyDst);
          lastReplyDst = rDst;
          afterReply = 0;
        }
        continue;
      }
      if (line.charCodeAt(start + 5) === EQ && line.charCodeAt(start + 1) === 112 && line.charCodeAt(start + 4) === 116) {
        // dport=
        const n = parseUint(line, start + 6, end);
        if (n < 0 || n > 65535) return null;
        if (dir === 1) oDport = n;
        else if (dir === 2) {
          rDport = n;
          afterReply = 0;
        }
        continue;
      }
    } else if (c0 === LBRACKET) {
      // [UNREPLIED] [ASSURED] [OFFLOAD] [HW_OFFLOAD] ...
      const c1 = line.charCodeAt(start + 1);
      if (c1 === 85 /* U */ && end - start === 11) unreplied = true;
      else if (c1 === 65 /* A */ && end - start === 9) assured = true;
      else if (c1 === 79 /* O */ && end - start === 9 && line.startsWith('[OFFLOAD]', start)) offload = 'software';
      else if (c1 === 72 /* H */ && end - start === 12 && line.startsWith('[HW_OFFLOAD]', start)) offload = 'hardware';
      continue;
    } else if (c0 === 109 /* m */) {
      if (line.charCodeAt(start + 4) === EQ && line.charCodeAt(start + 1) === 97 && line.charCodeAt(start + 3) === 107) {
        // mark=
        const n = parseMarkValue(line, start + 5, end);
        if (n >= 0) mark = n;
        continue;
      }
    } else if (c0 === 122 /* z */) {
      if (line.charCodeAt(start + 4) === EQ && line.charCodeAt(start + 1) === 111 && line.charCodeAt(start + 3) === 101) {
        // zone=
        const n = parseUint(line, start + 5, end);
        if (n >= 0) zone = n;
        continue;
      }
    }
    // A bare word (no '=') before the tuples is the protocol state (TCP/SCTP/DCCP).
    if (dir === 0 && state === undefined) {
      const eq = line.indexOf('=', start);
      if (eq < 0 || eq >= end) state = word(line, start, end, STATES);
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
  // Only addresses, all four of one family (also the line's family, checked below).
  const fam = addressFamily(oSrc);
  if (fam === 0 || addressFamily(oDst) !== fam || (rSrc !== oDst && addressFamily(rSrc) !== fam)) return null;
  if (rDst !== oSrc) {
    if (rDst !== lastCheckedReplyDst) {
      lastCheckedReplyDstFamily = addressFamily(rDst);
      lastCheckedReplyDst = rDst;
    }
    if (lastCheckedReplyDstFamily !== fam) return null;
  }

  if (family === undefined) {
    family = fam === 6 ? 'ipv6' : 'ipv4';
  } else if ((family === 'ipv6') !== (fam === 6)) {
    return null;
  } else if (family === 'ipv6') {
    oSrc = compressIpv6(oSrc);
    oDst = compressIpv6(oDst);
    rSrc = compressIpv6(rSrc);
    rDst = compressIpv6(rDst);
  }
  if (family === 'ipv4' && oSrc.charCodeAt(0) === COLON) return null;

  if (into !== undefined) {
    // Reuse the caller's objects (the streaming aggregator parses millions of lines).
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
  const orig: Tuple = ported ? { src: oSrc, dst: oDst, sport: oSport, dport: oDport } : { src: oSrc, dst: oDst };
  const reply: Tuple = ported ? { src: rSrc, dst: rDst, sport: rSport, dport: rDport } : { src: rSrc, dst: rDst };
  const entry: ConntrackEntry = { family, proto, protoNum, timeout, orig, reply, unreplied, assured };
  if (state !== undefined) entry.state = state;
  if (mark !== undefined) entry.mark = mark;
  if (zone !== undefined) entry.zone = zone;
  if (offload !== undefined) entry.offload = offload;
  return entry;
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
