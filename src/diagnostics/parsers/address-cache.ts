/**
 * Address text -> the address string the parser returns (an IPv6 full form as
 * /proc/net/nf_conntrack prints it made canonical) and its family, for the table parser.
 *
 * A table repeats a few addresses (clients, NAT addresses, busy servers) hundreds of
 * thousands of times: a hit checks the bytes against the cached text and returns the same
 * string object (no allocation; Map lookups on it reuse the hash V8 keeps in the string).
 * Direct-mapped and fixed in size, so memory does not grow with the table; a miss costs
 * what the parser paid for every address before (one string, one validation).
 */
import { addressFamily, compressIpv6, type AddressFamily } from './addresses.js';

/** Longest text worth caching (an IPv6 address with an embedded IPv4 one is 45). */
const MAX_CACHED_BYTES = 45;

export class AddressCache {
  private readonly mask: number;
  private readonly raw: string[];
  private readonly value: string[];
  private readonly family: Uint8Array;
  private readonly hashes: Int32Array;
  /** The string and family of the last lookup (read right after `lookup`). */
  lastValue = '';
  lastFamily: AddressFamily = 0;

  constructor(slotsLog2 = 14) {
    const slots = 1 << slotsLog2;
    this.mask = slots - 1;
    this.raw = new Array<string>(slots).fill('');
    this.value = new Array<string>(slots).fill('');
    this.family = new Uint8Array(slots);
    this.hashes = new Int32Array(slots);
  }

  /** Look up bytes [start, end) of `buf`; sets lastValue and lastFamily (0: not an address). */
  lookup(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n > MAX_CACHED_BYTES) {
      this.resolve(buf.toString('latin1', start, end));
      return;
    }
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ (buf[i] as number), 0x01000193);
    const slot = (h ^ (h >>> 15)) & this.mask;
    const raw = this.raw[slot] as string;
    if (this.hashes[slot] === h && raw.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (raw.charCodeAt(i) !== buf[start + i]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.lastValue = this.value[slot] as string;
        this.lastFamily = this.family[slot] as AddressFamily;
        return;
      }
    }
    const text = buf.toString('latin1', start, end);
    this.resolve(text);
    this.raw[slot] = text;
    this.value[slot] = this.lastValue;
    this.family[slot] = this.lastFamily;
    this.hashes[slot] = h;
  }

  /** Validate `text` into lastFamily and lastValue (IPv6 in its canonical text). */
  private resolve(text: string): void {
    this.lastFamily = addressFamily(text);
    this.lastValue = this.lastFamily === 6 ? compressIpv6(text) : text;
  }
}
