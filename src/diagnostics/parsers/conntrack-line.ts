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
import type { ConntrackEntry, Tuple } from '../../core/model.js';
import { ADDRESS_HASH_SEED, AddressCache, addressFamily, addressHashStep, sameText } from './address-cache.js';

export { compressIpv6, isIpv4Address } from './address-cache.js';

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
    if (w.length === n && sameText(line, start, w)) return w;
  }
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

/**
 * An address as conntrack prints it: IPv4, or IPv6 (compressed or full form). Anything
 * else (a word, markup, a host name) makes the line unparsed: addresses are shown in
 * chat and used in delete tuples, so only addresses get through.
 */
export function isConntrackAddress(addr: string): boolean {
  return addressFamily(addr) !== 0;
}

/** Addresses seen by this parser, validated once per distinct text (see address-cache.ts). */
const addresses = new AddressCache();
/** The slot of the last reply destination: most lines repeat it. */
let lastReplyDstSlot = -1;

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
  return parseConntrackLineAt(line, 0, line.length, into);
}

/**
 * `parseConntrackLine(text.slice(lineStart, lineEnd), into)` without the slice: the line is
 * read in place in a decoded chunk (a flat string: reading a slice of it costs an
 * indirection per character). Nothing at or after `lineEnd` is read as part of the line.
 */
export function parseConntrackLineAt(line: string, lineStart: number, lineEnd: number, into?: ConntrackEntry): ConntrackEntry | null {
  let len = lineEnd;
  // ignore trailing whitespace (\r from CRLF, tabs, spaces)
  while (len > lineStart && line.charCodeAt(len - 1) <= SPACE) len--;
  let i = lineStart;
  // ---- token 1: "ipv4"/"ipv6" (proc format) or the protocol name
  while (i < len && (line.charCodeAt(i) === SPACE || line.charCodeAt(i) === TAB)) i++;
  let start = i;
  while (i < len && line.charCodeAt(i) > SPACE) i++;
  if (i === start) return null;
  let family: 'ipv4' | 'ipv6' | undefined;
  let proto: string;
  // the /proc/net/nf_conntrack format (its addresses are IPv6's full form)
  const l3 = line.charCodeAt(start + 3);
  const fromProc = i - start === 4 && (l3 === 52 /* 4 */ || l3 === 54) /* 6 */ && sameText(line, start, 'ipv');
  if (fromProc) {
    family = l3 === 52 ? 'ipv4' : 'ipv6';
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
    if (lineEnd - start < 4 || !line.startsWith('src=', start)) return null;
    i = start; // the original tuple starts here; the line must say [OFFLOAD] or [HW_OFFLOAD]
  }

  let state: string | undefined;
  // The four addresses as [start, end) in the line: looked up once the line is complete.
  let oSrcAt = -1;
  let oSrcEnd = -1;
  let oDstAt = -1;
  let oDstEnd = -1;
  let rSrcAt = -1;
  let rSrcEnd = -1;
  let rDstAt = -1;
  let rDstEnd = -1;
  let oSrcHash = 0;
  let oDstHash = 0;
  let rSrcHash = 0;
  let rDstHash = 0;
  let oSport: number | undefined;
  let oDport: number | undefined;
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

  // ---- key=value tokens, flags, and the state word. Keys are matched on a few chars; the
  // values of src=, dst=, sport= and dport= are scanned to their end (an address is hashed
  // for the address cache on the way), other tokens are found with the native indexOf.
  while (i < len) {
    while (i < len && line.charCodeAt(i) === SPACE) i++;
    if (i >= len) break;
    start = i;
    const c0 = line.charCodeAt(start);
    if (dir === 2) afterReply++;

    if (
      start + 3 < lineEnd &&
      line.charCodeAt(start + 3) === EQ &&
      ((c0 === 115 /* s */ && line.charCodeAt(start + 1) === 114 && line.charCodeAt(start + 2) === 99) ||
        (c0 === 100 /* d */ && line.charCodeAt(start + 1) === 115 && line.charCodeAt(start + 2) === 116))
    ) {
      // src= or dst=: the address runs to the next space (or the line's end)
      let h = ADDRESS_HASH_SEED;
      let j = start + 4;
      for (; j < len; j++) {
        const c = line.charCodeAt(j);
        if (c === SPACE) break;
        h = addressHashStep(h, c);
      }
      i = j;
      if (j === start + 4) return null;
      if (c0 === 115) {
        if (dir === 0) {
          dir = 1;
          oSrcAt = start + 4;
          oSrcEnd = j;
          oSrcHash = h;
        } else if (dir === 1) {
          dir = 2;
          rSrcAt = start + 4;
          rSrcEnd = j;
          rSrcHash = h;
          afterReply = 0;
        }
      } else if (dir === 1) {
        oDstAt = start + 4;
        oDstEnd = j;
        oDstHash = h;
      } else if (dir === 2) {
        rDstAt = start + 4;
        rDstEnd = j;
        rDstHash = h;
        afterReply = 0;
      }
      continue;
    }
    if (
      (c0 === 115 || c0 === 100) &&
      start + 5 < lineEnd &&
      line.charCodeAt(start + 5) === EQ &&
      line.charCodeAt(start + 1) === 112 &&
      line.charCodeAt(start + 4) === 116
    ) {
      // sport= or dport=: 1-15 decimal digits up to the next space, at most 65535; anything else is no entry
      if (start + 6 >= len || line.charCodeAt(start + 2) === SPACE || line.charCodeAt(start + 3) === SPACE) return null;
      let n = 0;
      let j = start + 6;
      for (; j < len; j++) {
        const c = line.charCodeAt(j);
        if (c === SPACE) break;
        const d = c - DIGIT0;
        if (d < 0 || d > 9) return null;
        n = n * 10 + d;
        if (n > 65535) return null;
      }
      i = j;
      if (j === start + 6 || j - start - 6 > 15) return null;
      if (c0 === 115) {
        if (dir === 1) oSport = n;
        else if (dir === 2) {
          rSport = n;
          afterReply = 0;
        }
      } else if (dir === 1) oDport = n;
      else if (dir === 2) {
        rDport = n;
        afterReply = 0;
      }
      continue;
    }

    let end = line.indexOf(' ', start);
    if (end < 0 || end > len) end = len;
    i = end;
    if (c0 === LBRACKET) {
      // [UNREPLIED] [ASSURED] [OFFLOAD] [HW_OFFLOAD] ...
      const c1 = line.charCodeAt(start + 1);
      if (c1 === 85 /* U */ && end - start === 11) unreplied = true;
      else if (c1 === 65 /* A */ && end - start === 9) assured = true;
      else if (c1 === 79 /* O */ && end - start === 9 && line.startsWith('[OFFLOAD]', start)) offload = 'software';
      else if (c1 === 72 /* H */ && end - start === 12 && line.startsWith('[HW_OFFLOAD]', start)) offload = 'hardware';
      continue;
    } else if (c0 === 109 /* m */) {
      if (start + 4 < lineEnd && line.charCodeAt(start + 4) === EQ && line.charCodeAt(start + 1) === 97 && line.charCodeAt(start + 3) === 107) {
        // mark=
        const n = parseMarkValue(line, start + 5, end);
        if (n >= 0) mark = n;
        continue;
      }
    } else if (c0 === 122 /* z */) {
      if (start + 4 < lineEnd && line.charCodeAt(start + 4) === EQ && line.charCodeAt(start + 1) === 111 && line.charCodeAt(start + 3) === 101) {
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

  if (oSrcAt < 0 || oDstAt < 0 || rSrcAt < 0 || rDstAt < 0) return null;
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
  const oSrcSlot = addresses.slotOf(line, oSrcAt, oSrcEnd, oSrcHash);
  if (oSrcSlot < 0) return null;
  const fam = addresses.familyOf(oSrcSlot);
  const oDstSlot = addresses.slotOf(line, oDstAt, oDstEnd, oDstHash);
  if (oDstSlot < 0 || addresses.familyOf(oDstSlot) !== fam) return null;
  // the reply's source is usually the original destination (no DNAT)
  const rSrcSlot = addresses.slotOf(line, rSrcAt, rSrcEnd, rSrcHash, oDstSlot);
  if (rSrcSlot < 0 || addresses.familyOf(rSrcSlot) !== fam) return null;
  // the reply's destination is usually the previous line's (the NAT address)
  const rDstSlot = addresses.slotOf(line, rDstAt, rDstEnd, rDstHash, lastReplyDstSlot);
  if (rDstSlot < 0 || addresses.familyOf(rDstSlot) !== fam) return null;
  lastReplyDstSlot = rDstSlot;

  let oSrc: string;
  let oDst: string;
  let rSrc: string;
  let rDst: string;
  if (family === undefined) {
    family = fam === 6 ? 'ipv6' : 'ipv4';
  } else if ((family === 'ipv6') !== (fam === 6)) {
    return null;
  }
  if (family === 'ipv6' && fromProc) {
    // /proc/net/nf_conntrack prints the full form: the same keys as conntrack -L's compressed one
    oSrc = addresses.compressedOf(oSrcSlot);
    oDst = addresses.compressedOf(oDstSlot);
    rSrc = addresses.compressedOf(rSrcSlot);
    rDst = addresses.compressedOf(rDstSlot);
  } else {
    oSrc = addresses.textOf(oSrcSlot);
    oDst = addresses.textOf(oDstSlot);
    rSrc = addresses.textOf(rSrcSlot);
    rDst = addresses.textOf(rDstSlot);
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
