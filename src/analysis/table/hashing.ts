/** Hashing of counter keys, for the count-min sketch of the heavy-hitter counters. */

/** Two 32-bit hashes of a key, for the count-min sketch. */
export interface HashPair {
  h1: number;
  h2: number;
}

export function resetHash(h: HashPair): void {
  h.h1 = 0x811c9dc5;
  h.h2 = 0x9747b28c;
}

/** Fold a string into a hash pair (FNV-1a and a murmur-style mix). */
export function hashString(s: string, h: HashPair): void {
  let h1 = h.h1;
  let h2 = h.h2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  h.h1 = h1;
  h.h2 = h2;
}
