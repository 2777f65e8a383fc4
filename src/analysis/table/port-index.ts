import { detachString } from './detach-string.js';
import { hashString, resetHash, type HashPair } from './hashing.js';
import type { KeyIndex } from './key-index.js';

/** One NAT port space: (NAT source address, destination, destination port, protocol). */
export interface PortKey {
  nat: string;
  dst: string;
  dport: number;
  proto: string;
  protoNum: number;
}

/**
 * Port-space keys without composite strings: NAT address -> Map(destination -> first
 * slot), further ports to the same destination chained through the slots. A lookup
 * reuses the address strings of the line (hashed once) and allocates nothing.
 */
export class PortIndex implements KeyIndex<PortKey> {
  private readonly root = new Map<string, Map<string, number>>();
  private readonly nat: string[] = [];
  private readonly dst: string[] = [];
  private readonly proto: string[] = [];
  private readonly portProto: Float64Array;
  /** Next slot with the same (nat, dst), or -1. */
  private readonly chain: Int32Array;

  constructor(capacity: number) {
    this.portProto = new Float64Array(capacity);
    this.chain = new Int32Array(capacity).fill(-1);
  }

  find(key: PortKey): number {
    const byDst = this.root.get(key.nat);
    if (byDst === undefined) return -1;
    let s = byDst.get(key.dst) ?? -1;
    const pp = key.dport * 256 + key.protoNum;
    while (s >= 0 && this.portProto[s] !== pp) s = this.chain[s] as number;
    return s;
  }

  bind(key: PortKey, slot: number): void {
    let byDst = this.root.get(key.nat);
    let nat = key.nat;
    if (byDst === undefined) {
      nat = detachString(key.nat);
      byDst = new Map();
      this.root.set(nat, byDst);
    } else {
      // reuse the stored copy of the NAT address (few distinct values)
      const any = byDst.values().next();
      if (!any.done) nat = this.nat[any.value] as string;
    }
    const head = byDst.get(key.dst);
    const dst = head === undefined ? detachString(key.dst) : (this.dst[head] as string);
    this.nat[slot] = nat;
    this.dst[slot] = dst;
    this.proto[slot] = key.proto;
    this.portProto[slot] = key.dport * 256 + key.protoNum;
    this.chain[slot] = head ?? -1;
    byDst.set(dst, slot);
  }

  unbind(slot: number): void {
    const byDst = this.root.get(this.nat[slot] as string);
    if (byDst === undefined) return;
    const dst = this.dst[slot] as string;
    const head = byDst.get(dst);
    if (head === undefined) return;
    const rest = this.chain[slot] as number;
    if (head === slot) {
      if (rest >= 0) byDst.set(dst, rest);
      else byDst.delete(dst);
    } else {
      let s = head;
      while (s >= 0 && this.chain[s] !== slot) s = this.chain[s] as number;
      if (s >= 0) this.chain[s] = rest;
    }
    this.chain[slot] = -1;
    if (byDst.size === 0) this.root.delete(this.nat[slot] as string);
  }

  read(slot: number): PortKey {
    const pp = this.portProto[slot] as number;
    return { nat: this.nat[slot] as string, dst: this.dst[slot] as string, dport: Math.floor(pp / 256), proto: this.proto[slot] as string, protoNum: pp % 256 };
  }

  hash(key: PortKey, h: HashPair): void {
    resetHash(h);
    hashString(key.nat, h);
    hashString(key.dst, h);
    const pp = key.dport * 256 + key.protoNum;
    h.h1 = Math.imul(h.h1 ^ pp, 0x01000193);
    h.h2 = Math.imul(h.h2 ^ pp, 0x5bd1e995);
  }

  hashSlot(slot: number, h: HashPair): void {
    this.hash(this.read(slot), h);
  }

  compare(a: number, b: number): number {
    const na = this.nat[a] as string;
    const nb = this.nat[b] as string;
    const da = this.dst[a] as string;
    const db = this.dst[b] as string;
    return (na < nb ? -1 : na > nb ? 1 : 0) || (da < db ? -1 : da > db ? 1 : 0) || (this.portProto[a] as number) - (this.portProto[b] as number);
  }
}
