import { detachString } from './detach-string.js';
import { hashString, resetHash, type HashPair } from './hashing.js';

/**
 * Maps keys to counter slots (0..capacity-1). The tracker keeps counts in typed
 * arrays indexed by slot; the index owns the keys (private copies, see detachString).
 */
export interface KeyIndex<K> {
  /** Slot of `key`, or -1. */
  find(key: K): number;
  /** Bind a private copy of `key` to `slot`. */
  bind(key: K, slot: number): void;
  /** Forget the key bound to `slot`. */
  unbind(slot: number): void;
  /** The key bound to `slot` (for output). */
  read(slot: number): K;
  hash(key: K, h: HashPair): void;
  hashSlot(slot: number, h: HashPair): void;
  /** Order of the keys of two slots (ties in top lists). */
  compare(a: number, b: number): number;
}

/** String keys: a Map to slots and an array of keys. */
export class StringIndex implements KeyIndex<string> {
  private readonly slots = new Map<string, number>();
  private readonly keys: string[] = [];
  find(key: string): number {
    return this.slots.get(key) ?? -1;
  }
  bind(key: string, slot: number): void {
    const k = detachString(key);
    this.keys[slot] = k;
    this.slots.set(k, slot);
  }
  unbind(slot: number): void {
    this.slots.delete(this.keys[slot] as string);
  }
  read(slot: number): string {
    return this.keys[slot] as string;
  }
  hash(key: string, h: HashPair): void {
    resetHash(h);
    hashString(key, h);
  }
  hashSlot(slot: number, h: HashPair): void {
    this.hash(this.keys[slot] as string, h);
  }
  compare(a: number, b: number): number {
    const x = this.keys[a] as string;
    const y = this.keys[b] as string;
    return x < y ? -1 : x > y ? 1 : 0;
  }
}
