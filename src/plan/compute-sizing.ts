/**
 * Table size: a new nf_conntrack_max from the observed need, bounded by the
 * gateway's memory, and hash buckets that never shrink.
 */
import type { GatewayFacts, TableSummary } from '../core/model.js';
import { BUCKET_BYTES, BUCKETS_PER_PAGE } from '../analysis/kernel-defaults.js';
import { summarizeTableFull } from '../analysis/kernel-log.js';
import { MIN_BUCKET_RATIO } from '../analysis/findings/hashsize.js';
import { fmtBytes, fmtInt, fmtPct } from '../analysis/format.js';
import { ASSUMED_ENTRY_BYTES, HEADROOM_FACTOR, MEMORY_BUDGET_FRACTION, SIZE_GRANULARITY } from './compute-constants.js';

export interface MemoryModel {
  entryBytes: number;
  entryBytesSource: 'slabinfo' | 'assumed';
  bucketBytes: number;
  memTotalBytes: number;
  budgetBytes: number;
}

export function memoryModel(facts: GatewayFacts): MemoryModel {
  const fromSlab = facts.entrySlabBytes !== null && facts.entrySlabBytes > 0;
  const memTotalBytes = facts.memTotalKb * 1024;
  return {
    entryBytes: fromSlab && facts.entrySlabBytes !== null ? facts.entrySlabBytes : ASSUMED_ENTRY_BYTES,
    entryBytesSource: fromSlab ? 'slabinfo' : 'assumed',
    bucketBytes: BUCKET_BYTES,
    memTotalBytes,
    budgetBytes: Math.floor(memTotalBytes * MEMORY_BUDGET_FRACTION),
  };
}

export function describeMemoryModel(m: MemoryModel): string {
  const source = m.entryBytesSource === 'slabinfo' ? 'the nf_conntrack object size in /proc/slabinfo' : 'an assumption (/proc/slabinfo not readable)';
  return (
    `Memory per entry: ${m.entryBytes} B (${source}) plus ${m.bucketBytes} B per hash bucket; ` +
    `the whole table is capped at ${fmtPct(MEMORY_BUDGET_FRACTION)} of MemTotal ${fmtBytes(m.memTotalBytes)} = ${fmtBytes(m.budgetBytes)}. ` +
    'Conntrack extensions (NAT, accounting, timestamps) are allocated separately and add more per entry, which the cap leaves room for.'
  );
}

function roundUpTo(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/** Round a table size up: a power of two up to 65,536, a multiple of 65,536 above. */
export function roundUpSize(n: number): number {
  if (n <= SIZE_GRANULARITY) {
    let p = 1024;
    while (p < n) p *= 2;
    return p;
  }
  return roundUpTo(n, SIZE_GRANULARITY);
}

/** Round a table size down: a multiple of 65,536, or a power of two below it. */
export function roundDownSize(n: number): number {
  if (n >= SIZE_GRANULARITY) return Math.floor(n / SIZE_GRANULARITY) * SIZE_GRANULARITY;
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return n >= 1 ? p : 0;
}

/** Buckets for a max: at least max/4 (whole pages of bucket heads), never fewer than today. */
export function bucketsFor(max: number, currentBuckets: number): number {
  return Math.max(currentBuckets, roundUpTo(Math.ceil(max / MIN_BUCKET_RATIO), BUCKETS_PER_PAGE));
}

export function tableBytes(max: number, buckets: number, m: MemoryModel): number {
  return max * m.entryBytes + buckets * m.bucketBytes;
}

/** The largest round max whose table (entries + buckets) fits the memory budget. */
export function maxAllowedByMemory(currentBuckets: number, m: MemoryModel): number {
  let raw = Math.floor((m.budgetBytes - currentBuckets * m.bucketBytes) / m.entryBytes);
  if (Math.ceil(raw / MIN_BUCKET_RATIO) > currentBuckets) {
    raw = Math.floor(m.budgetBytes / (m.entryBytes + m.bucketBytes / MIN_BUCKET_RATIO));
  }
  let size = roundDownSize(Math.max(0, raw));
  while (size > 0 && tableBytes(size, bucketsFor(size, currentBuckets), m) > m.budgetBytes) size = roundDownSize(size - 1);
  return size;
}

export interface MaxSizing {
  /** Entries the gateway needed: the peak count, or max itself when the table was full. */
  observedNeed: number;
  needBasis: string;
  /** HEADROOM_FACTOR x need, rounded up. */
  target: number;
  /** The largest max the memory budget allows. */
  memoryCap: number;
  /** The proposed max, or null when no raise is needed or possible. */
  proposed: number | null;
  capped: boolean;
  /** Buckets for the proposed (or current) max. */
  buckets: number;
  /** Why no raise, when proposed is null. */
  reason?: string;
}

/** "the table has been full (drop 48,213, 3 "table full" lines)". */
function fullEvidence(facts: GatewayFacts): string {
  const lines = summarizeTableFull(facts).total;
  const parts = [
    facts.stats.drop > 0 ? `drop ${fmtInt(facts.stats.drop)}` : '',
    facts.stats.early_drop > 0 ? `early_drop ${fmtInt(facts.stats.early_drop)}` : '',
    lines > 0 ? `${lines} "table full" line${lines === 1 ? '' : 's'}` : '',
  ].filter(Boolean);
  return `the table has been full (${parts.join(', ')})`;
}

export function sizeMax(facts: GatewayFacts, table: TableSummary, wasFull: boolean, m: MemoryModel): MaxSizing {
  const peak = Math.max(facts.count, table.entries);
  const observedNeed = wasFull ? Math.max(peak, facts.max) : peak;
  const needBasis = wasFull ? `${fullEvidence(facts)}: demand reached at least max ${fmtInt(facts.max)}` : `${fmtInt(peak)} entries now`;
  const target = roundUpSize(HEADROOM_FACTOR * observedNeed);
  const memoryCap = maxAllowedByMemory(facts.buckets, m);
  const base = { observedNeed, needBasis, target, memoryCap };

  if (target <= facts.max) {
    return {
      ...base,
      proposed: null,
      capped: false,
      buckets: bucketsFor(facts.max, facts.buckets),
      reason: `max ${fmtInt(facts.max)} already gives ${HEADROOM_FACTOR}x headroom over the observed need of ${fmtInt(observedNeed)} entries`,
    };
  }
  const proposed = Math.min(target, memoryCap);
  if (proposed <= facts.max) {
    return {
      ...base,
      proposed: null,
      capped: true,
      buckets: bucketsFor(facts.max, facts.buckets),
      reason:
        `memory allows at most ${fmtInt(memoryCap)} entries (${fmtBytes(m.budgetBytes)} at ${m.entryBytes} B each) and max is already ${fmtInt(facts.max)}: ` +
        'free entries instead (timeouts, the heavy hitter) or add memory',
    };
  }
  return { ...base, proposed, capped: proposed < target, buckets: bucketsFor(proposed, facts.buckets) };
}
