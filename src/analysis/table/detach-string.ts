/**
 * A flat, private copy of a string. Keys are slices of large decoded chunks; V8 keeps
 * a slice (13+ chars) or a concatenation of slices pointing at its parent, so storing
 * one would keep a whole 64 KB chunk alive per key. Called only when a key is stored.
 * (A Buffer round trip yields one sequential string, the most compact form.)
 */
export function detachString(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}
