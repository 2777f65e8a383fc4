import type { HashPair } from './hashing.js';

/**
 * Count-min sketch with conservative update (2 rows, width ~2 x capacity, 32-bit
 * counters): an upper bound of each key's count, in fixed memory.
 */
export class CountSketch {
  private readonly r0: Uint32Array;
  private readonly r1: Uint32Array;
  private readonly mask: number;

  constructor(capacity: number) {
    let width = 256;
    while (width < capacity * 2) width *= 2;
    this.mask = width - 1;
    this.r0 = new Uint32Array(width);
    this.r1 = new Uint32Array(width);
  }

  /** Count `by` more of the key hashed to `h`; returns its new estimate (never below the true count). */
  add(h: HashPair, by: number): number {
    const a = (h.h1 >>> 0) & this.mask;
    const b = ((h.h2 ^ (h.h1 >>> 16)) >>> 0) & this.mask;
    const x = this.r0[a] as number;
    const y = this.r1[b] as number;
    const est = (x < y ? x : y) + by;
    // conservative update: raise only the cells below the new estimate
    if (x < est) this.r0[a] = est;
    if (y < est) this.r1[b] = est;
    return est;
  }

  /** Make the estimate of the key hashed to `h` at least `count`. */
  raise(h: HashPair, count: number): void {
    const a = (h.h1 >>> 0) & this.mask;
    const b = ((h.h2 ^ (h.h1 >>> 16)) >>> 0) & this.mask;
    if ((this.r0[a] as number) < count) this.r0[a] = count;
    if ((this.r1[b] as number) < count) this.r1[b] = count;
  }
}
