import { CountSketch } from './count-sketch.js';
import type { HashPair } from './hashing.js';
import { StringIndex, type KeyIndex } from './key-index.js';

export interface HeavyHitter<K = string> {
  key: K;
  count: number;
  /** Upper bound of the over-estimate (0 while exact). */
  error: number;
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
    // One bucket more than slots: increment() takes the new bucket before it frees the old
    // one, so with every slot alone in its own bucket (all counts distinct, as in a long
    // dump) it needs capacity + 1; with capacity the pool ran dry and the walk never ended.
    const buckets = n + 1;
    this.bCount = new Float64Array(buckets);
    this.bHead = new Int32Array(buckets).fill(-1);
    this.bPrev = new Int32Array(buckets);
    this.bNext = new Int32Array(buckets);
    // all buckets start free, chained through bNext
    for (let b = 0; b < buckets; b++) this.bNext[b] = b + 1 < buckets ? b + 1 : -1;
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
