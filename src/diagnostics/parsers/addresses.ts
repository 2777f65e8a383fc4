/**
 * Address checks of the table parser: only addresses get through (they are shown in chat
 * and used in delete tuples), IPv4 or IPv6, and IPv6 in its canonical text whichever
 * format the table was read from.
 */
import { isIPv6 } from 'node:net';

const DIGIT0 = 48;
const COLON = 58;

/** 4 for an IPv4 address, 6 for an IPv6 one, 0 for anything else. */
export type AddressFamily = 0 | 4 | 6;

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
 * else (a word, markup, a host name) is not.
 */
export function isConntrackAddress(addr: string): boolean {
  return addressFamily(addr) !== 0;
}

export function addressFamily(addr: string): AddressFamily {
  if (addr.indexOf(':') < 0) return isIpv4Address(addr) ? 4 : 0;
  return isFullIpv6(addr) || (addr.length <= 45 && isIPv6(addr)) ? 6 : 0;
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
