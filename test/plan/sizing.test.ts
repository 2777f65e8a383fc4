import { describe, expect, it } from 'vitest';
import { bucketsFor, maxAllowedByMemory, memoryModel, roundDownSize, roundUpSize } from '../../src/plan/compute-sizing.js';
import { GIB_KB, makeFacts, makeTable, saturatedFacts } from '../support/facts-fixtures.js';
import { planFor, step } from './plan-helpers.js';

describe('rounding and buckets', () => {
  it('rounds to powers of two up to 65,536 and multiples of 65,536 above', () => {
    expect(roundUpSize(16_000)).toBe(16_384);
    expect(roundUpSize(65_536)).toBe(65_536);
    expect(roundUpSize(442_000)).toBe(458_752);
    expect(roundDownSize(250_019)).toBe(196_608);
    expect(roundDownSize(40_000)).toBe(32_768);
  });

  it('buckets: at least max/4, never fewer than today', () => {
    expect(bucketsFor(524_288, 262_144)).toBe(262_144);
    expect(bucketsFor(524_288, 16_384)).toBe(131_072);
    expect(bucketsFor(1_000_000, 16_384)).toBe(250_368); // whole pages of 512 bucket heads
  });

  it('memory model falls back to a stated 320 B per entry without slabinfo', () => {
    const m = memoryModel(makeFacts({ entrySlabBytes: null, memTotalKb: 1.5 * GIB_KB }));
    expect(m).toEqual({ entryBytes: 320, entryBytesSource: 'assumed', bucketBytes: 8, memTotalBytes: 1_610_612_736, budgetBytes: 80_530_636 });
    expect(maxAllowedByMemory(65_536, m)).toBe(196_608);
  });
});

describe('plan: tiny-memory gateway (the memory cap wins)', () => {
  it('caps the raise at what 5% of 1.5 GiB holds', () => {
    const facts = saturatedFacts({
      memTotalKb: 1.5 * GIB_KB,
      entrySlabBytes: null,
      count: 131_072,
      max: 131_072,
      buckets: 65_536,
      hashsize: 65_536,
      kernelLog: [],
      persistence: { sysctlFiles: [{ path: '/etc/sysctl.d/80-ct.conf', keys: { 'net.netfilter.nf_conntrack_max': '131072' } }] },
    });
    const plan = planFor(facts, makeTable({ entries: 131_072 }));
    const s = step(plan, 'conntrack-max');
    expect(s).toMatchObject({ current: '131072', proposed: '196608', params: { target: 262_144, memoryCap: 196_608, entryBytes: 320 } });
    expect(s.why).toContain('2x headroom would be 262,144, capped by memory to 196,608');
    expect(s.why).toContain('cap 76.8 MiB');
    expect(plan.notes[0]).toContain('320 B (an assumption (/proc/slabinfo not readable))');
    expect(plan.steps.some((x) => x.kind === 'hashsize')).toBe(false);
  });

  it('proposes no raise when max is already at the cap, and says why', () => {
    const facts = saturatedFacts({
      memTotalKb: GIB_KB / 2,
      count: 65_536,
      max: 65_536,
      buckets: 16_384,
      hashsize: 16_384,
      kernelLog: [],
      persistence: {
        sysctlFiles: [{ path: '/etc/sysctl.d/80-ct.conf', keys: { 'net.netfilter.nf_conntrack_max': '65536' } }],
        modprobeFiles: [{ path: '/etc/modprobe.d/nf.conf', hashsize: 16_384 }],
      },
    });
    const plan = planFor(facts, makeTable({ entries: 65_536 }));
    expect(plan.steps.some((x) => x.id === 'conntrack-max')).toBe(false);
    expect(plan.notes).toContain(
      'nf_conntrack_max not raised: memory allows at most 65,536 entries (25.6 MiB at 320 B each) and max is already 65,536: free entries instead (timeouts, the heavy hitter) or add memory.',
    );
  });
});

describe('plan: drops that are NAT clashes, not a full table', () => {
  it('sizes max from the entries seen when every drop is an insert failure (port exhaustion), not from "demand reached max"', () => {
    // 85 % full (pressure), 4,096 drops that all are NAT clashes: the table never was full.
    const clashes = makeFacts({ count: 222_822, max: 262_144, stats: { drop: 4096, insert_failed: 4096 }, kernelLog: [] });
    const s = step(planFor(clashes, makeTable({ entries: 222_822 })), 'conntrack-max');
    expect(s.why).not.toContain('the table has been full');
    expect(s.why).toContain('222,822 entries now');
    // The same counters with table-full drops on top: demand did reach max.
    const full = makeFacts({ count: 222_822, max: 262_144, stats: { drop: 5000, insert_failed: 4096 }, kernelLog: [] });
    expect(step(planFor(full, makeTable({ entries: 222_822 })), 'conntrack-max').why).toContain('the table has been full');
  });
});
