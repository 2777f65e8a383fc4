import { describe, expect, it } from 'vitest';
import { chartSeries, chartWindow, counterDelta } from '../../src/incident/chart-data.js';
import { placeLabels, textWidth, LABEL_FONT_SIZE } from '../../src/incident/chart-layout.js';
import { samplesFrom } from './chart-scenarios.js';

describe('chartSeries', () => {
  it('a counter that goes down was reset: it counts from zero, never negative', () => {
    expect(counterDelta(100, 130)).toBe(30);
    expect(counterDelta(100, 7)).toBe(7);
  });

  it('splits drops into table full (drop beyond insert_failed, plus early_drop) and insert_failed, per interval', () => {
    const samples = samplesFrom('2026-12-04T13:00:00Z', 30_000, [
      { percent: 99 },
      { percent: 99.5, drop: 100, earlyDrop: 10, insertFailed: 30 },
      { percent: 99.9, drop: 5, insertFailed: 8 }, // insert_failed beyond drop: no negative table-full
      { percent: 90, drop: 4, reset: true },
    ]);
    const s = chartSeries(samples);
    expect(s.bars.map((b) => [b.tableFull, b.insertFailed])).toEqual([[80, 30], [0, 8], [4, 0]]);
    expect(s.totals).toEqual({ tableFull: 84, insertFailed: 38 });
    expect(s.barMs).toBe(30_000);
    expect(s.peak.percent).toBeCloseTo(99.9, 1);
  });

  it('downsamples thousands of samples to a few hundred points, keeping the peak and the drop total', () => {
    const steps = Array.from({ length: 20_160 }, (_, i) => ({ percent: i === 12_345 ? 99 : 50, drop: i % 100 === 0 ? 3 : 0 }));
    const s = chartSeries(samplesFrom('2026-11-27T00:00:00Z', 30_000, steps));
    expect(s.util.length).toBeLessThanOrEqual(480);
    expect(s.bucketSize).toBe(42);
    expect(Math.max(...s.util.map((p) => p.percent))).toBeCloseTo(99, 1);
    expect(s.bars.reduce((n, b) => n + b.tableFull, 0)).toBe(s.totals.tableFull);
    expect(s.totals.tableFull).toBe(201 * 3);
    expect(s.barMs).toBe(42 * 30_000);
  });
});

describe('placeLabels', () => {
  it('never lets two labels, or a label and another mark’s rule, overlap; uses at most 4 lanes', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 50; round++) {
      const labels = Array.from({ length: 1 + Math.floor(rand() * 8) }, (_, i) => ({ x: rand() * 844, text: `plan applied (U0BOB${i}) 14:${i}5`, rule: rand() > 0.3 }));
      const { placed, unplaced } = placeLabels(labels, 844);
      expect(placed.length + unplaced.length).toBe(labels.length);
      const spans = placed.map((p) => {
        const w = textWidth(p.text, LABEL_FONT_SIZE);
        return { ...p, left: p.align === 'left' ? p.textX : p.textX - w, right: p.align === 'left' ? p.textX + w : p.textX };
      });
      for (const a of spans) {
        expect(a.lane).toBeLessThan(4);
        for (const b of spans) {
          if (a === b) continue;
          if (a.lane === b.lane) expect(a.right <= b.left || b.right <= a.left).toBe(true);
          if (a.rule && a.lane < b.lane) expect(a.x < b.left || a.x > b.right).toBe(true);
        }
      }
    }
  });
});

describe('chart window', () => {
  const t0 = Date.parse('2026-12-04T19:52:00Z');
  const samples = Array.from({ length: 30 }, (_, i) => ({ at: new Date(t0 + i * 1000).toISOString(), count: 1000, max: 262_144, drop: 0, earlyDrop: 0, insertFailed: 0 }));

  it('an 18 s episode in 30 s of samples fills the chart (a margin of a quarter, at least 15 s), not a 10-minute window', () => {
    const w = chartWindow(chartSeries(samples), { openedAt: new Date(t0 + 9000).toISOString(), resolvedAt: new Date(t0 + 27000).toISOString(), peakPercent: 100 });
    expect(w.to - w.from).toBeLessThanOrEqual(60_000);
    expect(w.from).toBeLessThanOrEqual(t0);
    expect(w.to).toBeGreaterThanOrEqual(t0 + 29_000);
  });

  it('a single sample still gets a readable window (±5 min)', () => {
    const w = chartWindow(chartSeries(samples.slice(0, 1)), { openedAt: samples[0]!.at, resolvedAt: null, peakPercent: 0 });
    expect(w.to - w.from).toBe(10 * 60_000);
  });
});
