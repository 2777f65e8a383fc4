/**
 * The addresses of a table dump, validated once per distinct text.
 *
 * A full table has 262,144 lines but a few thousand distinct addresses. Each address of a
 * line is looked up here by its characters in the line (a hash computed in place, no
 * substring): a hit returns the same string object as before, already validated, with its
 * family and RFC 5952 form, so the parser neither slices, nor scans, nor compresses it
 * again, and the counters' Map lookups reuse the hash V8 cached on that string. A miss
 * slices, validates and stores it (a flat private copy: a slice would keep the whole
 * decoded chunk alive). Fixed size, direct-mapped: a table of all-distinct addresses costs
 * one hash and one compare more per address than no cache, and memory stays flat.
 */
import { isIPv6 } from 'node:net';
import { detachString } from '../../analysis/table/detach-string.js';

const COLON = 58;
const DIGIT0 = 48;

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

/** 4 for an IPv4 address, 6 for an IPv6 one, 0 for anything else. */
export function addressFamily(addr: string): 0 | 4 | 6 {
  if (addr.indexOf(':') < 0) return isIpv4Address(addr) ? 4 : 0;
  return isFullIpv6(addr) || (addr.length <= 45 && isIPv6(addr)) ? 6 : 0;
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

/** FNV-1a over the characters of an address: `h = addressHashStep(h, c)` from ADDRESS_HASH_SEED. */
export const ADDRESS_HASH_SEED = 0x811c9dc5;
export function addressHashStep(h: number, c: number): number {
  return Math.imul(h ^ c, 0x01000193);
}

/** addressHash of line[start, end). */
export function addressHash(line: string, start: number, end: number): number {
  let h = ADDRESS_HASH_SEED;
  for (let i = start; i < end; i++) h = addressHashStep(h, line.charCodeAt(i));
  return h;
}

/** Sets of the cache (a power of two), two slots each: room for the addresses of a large gateway. */
const SETS = 1 << 15;
const SLOTS = SETS * 2;
/** Longer texts are never addresses (an IPv6 address with an embedded IPv4 tail is at most 45). */
const MAX_ADDRESS_CHARS = 45;

/** line[start, start + s.length) === s, compared in place (cheaper than startsWith's call for short texts). */
export function sameText(line: string, start: number, s: string): boolean {
  for (let k = 0; k < s.length; k++) if (line.charCodeAt(start + k) !== s.charCodeAt(k)) return false;
  return true;
}

export class AddressCache {
  /** The address text of each slot ('' when empty): also the string handed out. */
  private readonly text: string[] = new Array<string>(SLOTS).fill('');
  /** Its RFC 5952 form (differs from `text` only for a full-form IPv6 address). */
  private readonly compressed: string[] = new Array<string>(SLOTS).fill('');
  private readonly family = new Uint8Array(SLOTS);
  /** Which slot of each set the next miss replaces (0 or 1). */
  private readonly victim = new Uint8Array(SETS);

  /**
   * The slot of the address line[start, end), validated (filled on a miss), or -1 when that
   * text is not an IPv4 or IPv6 address. `hash`: addressHash of that text (the parser computes
   * it while it scans the address); `hint`: a slot to compare with first. Read it with
   * `textOf`, `compressedOf`, `familyOf`.
   */
  slotOf(line: string, start: number, end: number, hash: number, hint = -1): number {
    const n = end - start;
    if (n <= 0 || n > MAX_ADDRESS_CHARS) return -1;
    // the caller's guess (the same address as another field of the line, or of the last line)
    if (hint >= 0) {
      const guess = this.text[hint] as string;
      if (guess.length === n && sameText(line, start, guess)) return hint;
    }
    const set = (hash ^ (hash >>> 15)) & (SETS - 1);
    const a = set * 2;
    const first = this.text[a] as string;
    if (first.length === n && sameText(line, start, first)) return a;
    const second = this.text[a + 1] as string;
    if (second.length === n && sameText(line, start, second)) return a + 1;
    const addr = line.slice(start, end);
    const fam = addressFamily(addr);
    if (fam === 0) return -1;
    const slot = first.length === 0 ? a : second.length === 0 ? a + 1 : a + (this.victim[set] as number);
    this.victim[set] = slot === a ? 1 : 0;
    const own = detachString(addr);
    this.text[slot] = own;
    this.compressed[slot] = fam === 6 ? compressIpv6(own) : own;
    this.family[slot] = fam;
    return slot;
  }

  textOf(slot: number): string {
    return this.text[slot] as string;
  }

  compressedOf(slot: number): string {
    return this.compressed[slot] as string;
  }

  familyOf(slot: number): number {
    return this.family[slot] as number;
  }
}
