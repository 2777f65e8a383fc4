/**
 * Streaming aggregation of a conntrack table dump into a TableSummary.
 *
 * Memory stays flat whatever the table size: the dump is read chunk by chunk and split
 * into lines here (never buffered whole), each line is parsed and counted, and the
 * top-k lists use bounded Space-Saving counters (exact while the distinct keys fit in
 * `capacity`, `approximate: true` beyond). Only counters are kept, never entries.
 */
import { StringDecoder } from 'node:string_decoder';
import { tableSummarySchema, type ConntrackEntry, type TableSummary } from '../core/model.js';
import { ESTABLISHED_TIMEOUT_HEADER, SHORT_TIMER_HEADER } from '../diagnostics/facts-script.js';
import { parseConntrackLine, scratchEntry } from '../diagnostics/parsers/conntrack-line.js';

// ---------------------------------------------------------------- Space-Saving

export interface HeavyHitter<K = string> {
  key: K;
  count: number;
  /** Upper bound of the over-estimate (0 while exact). */
  error: number;
}

/**
 * A flat, private copy of a string. Keys are slices of large decoded chunks; V8 keeps
 * a slice (13+ chars) or a concatenation of slices pointing at its parent, so storing
 * one would keep a whole 64 KB chunk alive per key. Called only when a key is stored.
 * (A Buffer round trip yields one sequential string, the most compact form.)
 */
export function detachString(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

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

/**
 * Count-min sketch with conservative update (2 rows, width ~2 x capacity, 32-bit
 * counters): an upper bound of each key's count, in fixed memory.
 */
class CountSketch {
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

/**
 * Bounded heavy-hitter counting: Space-Saving (Metwally et al.) with its stream-summary
 * structure (O(1) per observation) and a count-min doorkeeper.
 *
 * Exact while at most `capacity` distinct keys were seen. Beyond that (`approximate`),
 * a key outside the summary is counted in a fixed-size count-min sketch and takes
 * over the smallest counter only once its estimate exceeds twice that counter (the
 * evicted key's count goes back into the sketch, and the newcomer starts from its
 * estimate). Counts never under-estimate, and a key whose true count exceeds twice
 * the final smallest counter is kept. The doorkeeper keeps the long tail of rare keys
 * from churning the summary. Counters live in typed arrays indexed by slot (buckets
 * of equal counts are doubly linked lists of slots), so memory is fixed by capacity.
 */
export class HeavyHitters<K> {
  readonly capacity: number;
  private total = 0;
  private used = 0;
  private readonly count: Float64Array;
  private readonly error: Float64Array;
  // stream-summary (approximate phase): slot -> bucket and siblings; buckets in a pool
  private bucketOf: Int32Array | null = null;
  private prev: Int32Array | null = null;
  private next: Int32Array | null = null;
  private bCount: Float64Array | null = null;
  private bHead: Int32Array | null = null;
  private bPrev: Int32Array | null = null;
  private bNext: Int32Array | null = null;
  private freeBucket = -1;
  /** Bucket with the smallest count; -1 while exact. */
  private min = -1;
  private sketch: CountSketch | null = null;
  private readonly h: HashPair = { h1: 0, h2: 0 };
  private admissions = 0;

  constructor(
    capacity: number,
    protected readonly index: KeyIndex<K>,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.count = new Float64Array(capacity);
    this.error = new Float64Array(capacity);
  }

  /** True once more distinct keys than `capacity` were seen (counts may be over-estimates). */
  get approximate(): boolean {
    return this.min >= 0;
  }

  /** Number of observations. */
  get observations(): number {
    return this.total;
  }

  /** Distinct keys currently tracked (at most capacity). */
  get size(): number {
    return this.used;
  }

  /** Keys admitted into the full summary (each one evicted another), for tests and benchmarks. */
  get churn(): number {
    return this.admissions;
  }

  /** Count `by` (a positive integer) observations of `key`; returns the key's (estimated) count afterwards. */
  add(key: K, by = 1): number {
    this.total += by;
    const slot = this.index.find(key);
    if (slot >= 0) {
      if (this.min < 0) return (this.count[slot] = (this.count[slot] as number) + by);
      this.increment(slot, by);
      return this.count[slot] as number;
    }
    if (this.min < 0) {
      if (this.used < this.capacity) {
        const s = this.used++;
        this.index.bind(key, s);
        this.count[s] = by;
        return by;
      }
      this.buildSummary();
    }
    // Doorkeeper: a key outside the summary is counted in the sketch and takes over the
    // smallest counter only once clearly above it; rare keys cost no allocation.
    const sketch = this.sketch as CountSketch;
    const bCount = this.bCount as Float64Array;
    const minCount = bCount[this.min] as number;
    this.index.hash(key, this.h);
    const estimate = sketch.add(this.h, by);
    if (estimate <= 2 * minCount) return estimate;
    const victim = (this.bHead as Int32Array)[this.min] as number;
    // keep the evicted key's count, so its estimate stays an upper bound if it returns
    this.index.hashSlot(victim, this.h);
    sketch.raise(this.h, this.count[victim] as number);
    this.index.unbind(victim);
    this.index.bind(key, victim);
    this.error[victim] = estimate - by;
    this.increment(victim, estimate - (this.count[victim] as number));
    this.admissions++;
    return estimate;
  }

  /** Current estimate for a tracked key (0 when not tracked). */
  estimate(key: K): number {
    const slot = this.index.find(key);
    return slot >= 0 ? (this.count[slot] as number) : 0;
  }

  /** The k largest counters, count descending then key ascending. */
  topCounters(k: number): HeavyHitter<K>[] {
    const slots = Array.from({ length: this.used }, (_, i) => i);
    slots.sort((a, b) => (this.count[b] as number) - (this.count[a] as number) || this.index.compare(a, b));
    return slots.slice(0, Math.max(0, k)).map((s) => ({ key: this.index.read(s), count: this.count[s] as number, error: this.error[s] as number }));
  }

  private buildSummary(): void {
    const n = this.capacity;
    this.sketch = new CountSketch(n);
    this.bucketOf = new Int32Array(n);
    this.prev = new Int32Array(n);
    this.next = new Int32Array(n);
    this.bCount = new Float64Array(n);
    this.bHead = new Int32Array(n).fill(-1);
    this.bPrev = new Int32Array(n);
    this.bNext = new Int32Array(n);
    // all buckets start free, chained through bNext
    for (let b = 0; b < n; b++) this.bNext[b] = b + 1 < n ? b + 1 : -1;
    this.freeBucket = 0;
    const slots = Array.from({ length: this.used }, (_, i) => i).sort((a, b) => (this.count[a] as number) - (this.count[b] as number));
    let last = -1;
    for (const s of slots) {
      const c = this.count[s] as number;
      if (last < 0 || this.bCount[last] !== c) {
        const b = this.newBucket(c, last, -1);
        if (last < 0) this.min = b;
        else this.bNext[last] = b;
        last = b;
      }
      this.attach(s, last);
    }
  }

  private newBucket(count: number, prev: number, next: number): number {
    const b = this.freeBucket;
    const bNext = this.bNext as Int32Array;
    this.freeBucket = bNext[b] as number;
    (this.bCount as Float64Array)[b] = count;
    (this.bHead as Int32Array)[b] = -1;
    (this.bPrev as Int32Array)[b] = prev;
    bNext[b] = next;
    return b;
  }

  private attach(s: number, b: number): void {
    const bHead = this.bHead as Int32Array;
    const head = bHead[b] as number;
    (this.bucketOf as Int32Array)[s] = b;
    (this.prev as Int32Array)[s] = -1;
    (this.next as Int32Array)[s] = head;
    if (head >= 0) (this.prev as Int32Array)[head] = s;
    bHead[b] = s;
  }

  /** Move slot `s` from its bucket to the bucket of count + by (created when missing). */
  private increment(s: number, by: number): void {
    const bucketOf = this.bucketOf as Int32Array;
    const prev = this.prev as Int32Array;
    const next = this.next as Int32Array;
    const bCount = this.bCount as Float64Array;
    const bHead = this.bHead as Int32Array;
    const bPrev = this.bPrev as Int32Array;
    const bNext = this.bNext as Int32Array;
    const from = bucketOf[s] as number;
    const target = (this.count[s] as number) + by;
    this.count[s] = target;
    // unlink from `from`
    const p = prev[s] as number;
    const n = next[s] as number;
    if (p >= 0) next[p] = n;
    else bHead[from] = n;
    if (n >= 0) prev[n] = p;
    // the bucket at or after `from` for the new count
    let at = from;
    while ((bNext[at] as number) >= 0 && (bCount[bNext[at] as number] as number) <= target) at = bNext[at] as number;
    let dest = at;
    if (bCount[at] !== target) {
      const after = bNext[at] as number;
      dest = this.newBucket(target, at, after);
      if (after >= 0) bPrev[after] = dest;
      bNext[at] = dest;
    }
    this.attach(s, dest);
    if ((bHead[from] as number) < 0) {
      // drop the empty bucket, back to the pool
      const fp = bPrev[from] as number;
      const fn = bNext[from] as number;
      if (fp >= 0) bNext[fp] = fn;
      else this.min = fn;
      if (fn >= 0) bPrev[fn] = fp;
      bNext[from] = this.freeBucket;
      this.freeBucket = from;
    }
  }
}

/** Heavy hitters over string keys (addresses). */
export class SpaceSaving extends HeavyHitters<string> {
  constructor(capacity: number) {
    super(capacity, new StringIndex());
  }

  top(k: number): HeavyHitter[] {
    return this.topCounters(k);
  }
}

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

// ---------------------------------------------------------------- per-source profiles

type SourceProfile = NonNullable<TableSummary['sourceProfiles']>[number];

interface ProfileNode {
  source: string;
  /** The source's count in the sources tracker (orders the profiles). */
  rank: number;
  pos: number;
  states: Map<string, Map<string, { n: number }>>;
  profiled: number;
  natted: number;
  destinations: SpaceSaving;
}

const PROFILE_DESTINATIONS = 64;
const PROFILE_TOP_DESTINATIONS = 5;

/**
 * Detail (states, destinations, NAT share) for the `capacity` sources with the highest
 * counts so far. A source is admitted when its count passes the smallest profiled one,
 * so the heavy hitters are profiled from early on; a profile covers the entries seen
 * since admission (`count` in the output), exact for gateways with fewer sources than
 * capacity. Cost for a source that is not profiled: one Map lookup.
 */
class ProfileTracker {
  private readonly map = new Map<string, ProfileNode>();
  private readonly heap: ProfileNode[] = [];
  private evictions = 0;
  constructor(private readonly capacity: number) {}

  get partial(): boolean {
    return this.evictions > 0;
  }

  add(entry: ConntrackEntry, sourceCount: number): void {
    const src = entry.orig.src;
    let node = this.map.get(src);
    if (node !== undefined) {
      node.rank = sourceCount;
      this.siftDown(node.pos);
    } else {
      const heap = this.heap;
      if (heap.length >= this.capacity) {
        const root = heap[0] as ProfileNode;
        if (sourceCount <= root.rank) return;
        this.map.delete(root.source);
        this.evictions++;
        node = this.newNode(src, sourceCount);
        heap[0] = node;
        node.pos = 0;
        this.siftDown(0);
      } else {
        node = this.newNode(src, sourceCount);
        node.pos = heap.length;
        heap.push(node);
        this.siftUp(node.pos);
      }
      this.map.set(node.source, node);
    }
    node.profiled++;
    countState(node.states, entry.proto, entry.state ?? '');
    if (entry.reply.dst !== src || entry.reply.src !== entry.orig.dst) node.natted++;
    node.destinations.add(entry.orig.dst);
  }

  profile(source: string): SourceProfile | undefined {
    const p = this.map.get(source);
    if (p === undefined) return undefined;
    return {
      source,
      count: p.profiled,
      states: flattenStates(p.states),
      topDestinations: p.destinations.top(PROFILE_TOP_DESTINATIONS).map(({ key, count }) => ({ key, count })),
      natted: p.natted,
    };
  }

  private newNode(src: string, rank: number): ProfileNode {
    return {
      source: detachString(src),
      rank,
      pos: -1,
      states: new Map(),
      profiled: 0,
      natted: 0,
      destinations: new SpaceSaving(PROFILE_DESTINATIONS),
    };
  }

  private siftUp(start: number): void {
    const heap = this.heap;
    let i = start;
    const node = heap[i] as ProfileNode;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p] as ProfileNode;
      if (parent.rank <= node.rank) break;
      heap[i] = parent;
      parent.pos = i;
      i = p;
    }
    heap[i] = node;
    node.pos = i;
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    const n = heap.length;
    let i = start;
    const node = heap[i] as ProfileNode;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let m = l;
      let child = heap[l] as ProfileNode;
      if (r < n && (heap[r] as ProfileNode).rank < child.rank) {
        m = r;
        child = heap[r] as ProfileNode;
      }
      if (child.rank >= node.rank) break;
      heap[i] = child;
      child.pos = i;
      i = m;
    }
    heap[i] = node;
    node.pos = i;
  }
}

function countState(states: Map<string, Map<string, { n: number }>>, proto: string, state: string): void {
  let byState = states.get(proto);
  if (byState === undefined) {
    byState = new Map();
    states.set(detachString(proto), byState);
  }
  const c = byState.get(state);
  if (c === undefined) byState.set(detachString(state), { n: 1 });
  else c.n++;
}

function flattenStates(states: Map<string, Map<string, { n: number }>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [proto, byState] of states) {
    for (const [state, c] of byState) out[state === '' ? proto : `${proto} ${state}`] = c.n;
  }
  return out;
}

// ---------------------------------------------------------------- the aggregator

export interface AggregatorContext {
  /**
   * nf_conntrack_tcp_timeout_established in effect when the table was dumped (seconds).
   * A dump that starts with an `@@established-timeout N` header line (TABLE_DUMP_COMMAND)
   * overrides it: the value read at the moment of the dump.
   */
  establishedTimeout: number;
  /**
   * The kernel's short TCP timer (max of nf_conntrack_tcp_timeout_unacknowledged and
   * _max_retrans, 300 s by default; a dump's `@@short-timer` header overrides it). An
   * ESTABLISHED entry with no more than this left may be active with data in flight: it
   * is counted in `establishedIdle.shortTimer`, never as idle.
   */
  shortTimerSeconds?: number;
  /** Idle thresholds in seconds; each gets `establishedIdle.idleAtLeast[String(t)]`. */
  idleThresholds: number[];
  /** Length of each top list (default 10). */
  topK?: number;
  /** Counters per top list (default 20,000): exact while distinct keys stay within it. */
  capacity?: number;
  /** Sources profiled in detail for `sourceProfiles` (default 64; at least topK). */
  profileCapacity?: number;
}

export const DEFAULT_TOP_K = 10;
export const DEFAULT_CAPACITY = 20_000;
export const DEFAULT_PROFILE_CAPACITY = 64;
/** nf_conntrack_tcp_timeout_unacknowledged and _max_retrans default (seconds). */
export const DEFAULT_SHORT_TIMER_SECONDS = 300;
const UNPARSED_SAMPLE_MAX = 5;
const UNPARSED_SAMPLE_CHARS = 300;
/** A "line" longer than this without a newline is garbage: counted once and dropped. */
export const MAX_LINE_CHARS = 64 * 1024;

/** Lines that are not entries and not errors: blanks and conntrack's stderr summary. */
function isIgnorable(line: string): boolean {
  const t = line.trim();
  return t.length === 0 || (t.startsWith('conntrack v') && t.endsWith('flow entries have been shown.'));
}

export class TableAggregator {
  private establishedTimeout: number;
  private shortTimer: number;
  private readonly topK: number;
  private readonly thresholds: number[];
  private readonly idleCounts: number[];
  private readonly deletableCounts: number[];
  private readonly startedAt = performance.now();
  private entries = 0;
  private unparsed = 0;
  private readonly unparsedSample: string[] = [];
  private readonly states = new Map<string, Map<string, { n: number }>>();
  private assured = 0;
  private unreplied = 0;
  private readonly sources: SpaceSaving;
  private readonly destinations: SpaceSaving;
  private readonly portUse: HeavyHitters<PortKey>;
  /** Reused lookup key (the store copies it when a new key is stored). */
  private readonly portKey: PortKey = { nat: '', dst: '', dport: 0, proto: '', protoNum: 0 };
  private readonly profiles: ProfileTracker;
  private establishedTotal = 0;
  private establishedAboveTimeout = 0;
  private establishedShortTimer = 0;
  /** Parsed into by addLine (entries are counted, never kept). */
  private readonly scratch = scratchEntry();

  constructor(ctx: AggregatorContext) {
    if (!Number.isFinite(ctx.establishedTimeout) || ctx.establishedTimeout < 0) {
      throw new RangeError(`establishedTimeout must be a non-negative number, got ${ctx.establishedTimeout}`);
    }
    this.establishedTimeout = ctx.establishedTimeout;
    this.shortTimer = ctx.shortTimerSeconds ?? DEFAULT_SHORT_TIMER_SECONDS;
    this.topK = ctx.topK ?? DEFAULT_TOP_K;
    this.thresholds = [...new Set(ctx.idleThresholds)].filter((t) => Number.isFinite(t)).sort((a, b) => a - b);
    this.idleCounts = this.thresholds.map(() => 0);
    this.deletableCounts = this.thresholds.map(() => 0);
    const capacity = ctx.capacity ?? DEFAULT_CAPACITY;
    this.sources = new SpaceSaving(capacity);
    this.destinations = new SpaceSaving(capacity);
    this.portUse = new HeavyHitters(capacity, new PortIndex(capacity));
    this.profiles = new ProfileTracker(Math.max(ctx.profileCapacity ?? DEFAULT_PROFILE_CAPACITY, this.topK));
  }

  /** Parse and count one line; blank lines and conntrack's summary line are ignored. */
  addLine(line: string): void {
    const entry = parseConntrackLine(line, this.scratch);
    if (entry !== null) {
      this.addEntry(entry);
      return;
    }
    if (isIgnorable(line)) return;
    if (this.entries === 0 && this.readHeader(line)) return;
    this.addUnparsed(line);
  }

  /**
   * The dump's own timeouts (TABLE_DUMP_COMMAND's header lines), read before any entry.
   * Values the gateway could not read are empty and keep the configured ones; anything
   * else that is not a number is counted as unparsed. False: not a header line.
   */
  private readHeader(line: string): boolean {
    const header = [ESTABLISHED_TIMEOUT_HEADER, SHORT_TIMER_HEADER].find((h) => line.startsWith(`${h} `) || line === h);
    if (header === undefined) return false;
    const values = line.slice(header.length).trim().split(/\s+/).filter((v) => v !== '');
    if (!values.every((v) => /^\d{1,9}$/.test(v))) {
      this.addUnparsed(line);
      return true;
    }
    if (values.length === 0) return true;
    const seconds = values.map(Number);
    if (header === ESTABLISHED_TIMEOUT_HEADER) this.establishedTimeout = seconds[0] as number;
    else this.shortTimer = Math.max(...seconds);
    return true;
  }

  /** Count a line that is not an entry (kept in a small sample). */
  addUnparsed(line: string): void {
    this.unparsed++;
    if (this.unparsedSample.length < UNPARSED_SAMPLE_MAX) {
      this.unparsedSample.push(detachString(line.length > UNPARSED_SAMPLE_CHARS ? line.slice(0, UNPARSED_SAMPLE_CHARS) : line));
    }
  }

  addEntry(entry: ConntrackEntry): void {
    this.entries++;
    const proto = entry.proto;
    countState(this.states, proto, entry.state ?? '');
    if (entry.assured) this.assured++;
    if (entry.unreplied) this.unreplied++;
    const orig = entry.orig;
    const sourceCount = this.sources.add(orig.src);
    this.destinations.add(orig.dst);
    // NAT port use: source-NATed entries (the reply goes to another address than the
    // client) with ports; one port space per (NAT address, dst, dport, proto).
    if (orig.dport !== undefined && entry.reply.dst !== orig.src) {
      const k = this.portKey;
      k.nat = entry.reply.dst;
      k.dst = orig.dst;
      k.dport = orig.dport;
      k.proto = proto;
      k.protoNum = entry.protoNum;
      this.portUse.add(k);
    }
    this.profiles.add(entry, sourceCount);
    if (proto === 'tcp' && entry.state === 'ESTABLISHED') {
      this.establishedTotal++;
      const idle = this.establishedTimeout - entry.timeout;
      if (idle < 0) {
        this.establishedAboveTimeout++;
        return;
      }
      // On the short timer (data in flight, retransmissions, zero window) the remaining time
      // says nothing about idleness: 20 live connections in a lab test showed it under load.
      if (entry.timeout <= this.shortTimer && this.shortTimer < this.establishedTimeout) {
        this.establishedShortTimer++;
        return;
      }
      const t = this.thresholds;
      for (let i = 0; i < t.length; i++) {
        const threshold = t[i] as number;
        if (idle < threshold) break;
        this.idleCounts[i] = (this.idleCounts[i] as number) + 1;
        // What a delete after lowering the timeout to `threshold` removes (idle-delete's
        // selectIdle): entries with no more than that left expire within it anyway, and after
        // the change a packet-refreshed entry also has no more than that left.
        if (entry.timeout > threshold) this.deletableCounts[i] = (this.deletableCounts[i] as number) + 1;
      }
    }
  }

  finish(): TableSummary {
    const topK = this.topK;
    const counted = (s: SpaceSaving) => s.top(topK).map(({ key, count }) => ({ key, count }));
    const topSources = counted(this.sources);
    const idleAtLeast: Record<string, number> = {};
    const deletable: Record<string, number> = {};
    this.thresholds.forEach((t, i) => {
      idleAtLeast[String(t)] = this.idleCounts[i] as number;
      deletable[String(t)] = this.deletableCounts[i] as number;
    });
    const byProto: Record<string, number> = {};
    for (const [proto, byState] of this.states) {
      let n = 0;
      for (const c of byState.values()) n += c.n;
      byProto[proto] = n;
    }
    const summary: TableSummary = {
      entries: this.entries,
      unparsed: this.unparsed,
      unparsedSample: [...this.unparsedSample],
      byProto,
      states: flattenStates(this.states),
      assured: this.assured,
      unreplied: this.unreplied,
      topSources,
      topDestinations: counted(this.destinations),
      topPortUse: this.portUse
        .topCounters(topK)
        .map(({ key, count }) => ({ natSource: key.nat, dst: key.dst, dport: key.dport, proto: key.proto, count })),
      sourceProfiles: topSources.flatMap(({ key }) => {
        const p = this.profiles.profile(key);
        return p === undefined ? [] : [p];
      }),
      approximate: this.sources.approximate || this.destinations.approximate || this.portUse.approximate,
      establishedIdle: {
        timeoutUsed: this.establishedTimeout,
        total: this.establishedTotal,
        idleAtLeast,
        deletable,
        aboveTimeout: this.establishedAboveTimeout,
        shortTimer: this.establishedShortTimer,
        shortTimerSeconds: this.shortTimer,
      },
      durationMs: Math.round(performance.now() - this.startedAt),
    };
    return tableSummarySchema.parse(summary);
  }
}

/**
 * Aggregate a table dump from a stream (an ssh2 channel, a child's stdout, a file
 * stream, or any async iterable of chunks). Lines are split here with a bounded carry,
 * so memory does not grow with the dump.
 */
export async function aggregateLines(
  readable: NodeJS.ReadableStream | AsyncIterable<string | Buffer>,
  ctx: AggregatorContext,
): Promise<TableSummary> {
  const agg = new TableAggregator(ctx);
  const decoder = new StringDecoder('utf8');
  let carry = '';
  /** Inside a line that already overflowed MAX_LINE_CHARS: skip to its newline. */
  let skipping = false;
  for await (const chunk of readable as AsyncIterable<string | Buffer>) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (text.length === 0) continue;
    let nl = text.indexOf('\n');
    if (nl < 0) {
      // no newline: the whole chunk belongs to the pending line
      if (!skipping) carry += text;
    } else {
      // the pending line ends here (lines are sliced from the chunk, never the chunk copied)
      if (skipping) skipping = false;
      else agg.addLine(carry.length > 0 ? carry + text.slice(0, nl) : text.slice(0, nl));
      carry = '';
      let start = nl + 1;
      while ((nl = text.indexOf('\n', start)) >= 0) {
        agg.addLine(text.slice(start, nl));
        start = nl + 1;
      }
      if (start < text.length) carry = text.slice(start);
    }
    if (carry.length > MAX_LINE_CHARS) {
      if (!skipping) agg.addUnparsed(carry);
      skipping = true;
      carry = '';
    }
  }
  const rest = carry + decoder.end();
  if (rest.length > 0 && !skipping) agg.addLine(rest);
  return agg.finish();
}
