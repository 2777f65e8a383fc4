/**
 * The episode chart's numbers: the watch samples (cumulative counters as polled) turned into
 * a utilisation series and drops per interval, downsampled for drawing without losing the peak.
 * Pure: no drawing here, the spec (chart-spec.ts) and the alt text (chart-alt.ts) read this.
 */
import { z } from 'zod';

const isoTime = z.string().refine((s) => Number.isFinite(Date.parse(s)), { message: 'not a date-time' });
const counter = z.number().finite().nonnegative();

export const chartInputSchema = z.object({
  gateway: z.string().min(1),
  samples: z
    .array(
      z.object({
        at: isoTime,
        count: counter,
        max: counter,
        drop: counter,
        earlyDrop: counter,
        insertFailed: counter,
      }),
    )
    .min(1),
  warnPercent: z.number().finite().min(0).max(100),
  critPercent: z.number().finite().min(0).max(100),
  marks: z.array(z.object({ at: isoTime, label: z.string().min(1) })),
  episode: z.object({ openedAt: isoTime, resolvedAt: isoTime.nullable(), peakPercent: z.number().finite() }),
});

export type ChartInput = z.infer<typeof chartInputSchema>;
type Sample = ChartInput['samples'][number];

/** One drawn point of the utilisation line (ms since the epoch). */
export interface UtilPoint {
  t: number;
  percent: number;
}

/** Drops in one interval [t0, t1): table full (drop beyond insert_failed, plus early_drop) and insert_failed. */
export interface DropBar {
  t0: number;
  t1: number;
  tableFull: number;
  insertFailed: number;
}

export interface ChartSeries {
  /** What is drawn: at most about `maxPoints` points; every bucket keeps its highest sample. */
  util: UtilPoint[];
  bars: DropBar[];
  /** Length of one drawn bar (ms): the poll interval, or the bucket when downsampled. */
  barMs: number;
  peak: { t: number; percent: number; count: number; max: number };
  last: { t: number; percent: number };
  firstT: number;
  lastT: number;
  sampleCount: number;
  totals: { tableFull: number; insertFailed: number };
  /** Samples per drawn point (1 when nothing was merged). */
  bucketSize: number;
}

export function percentOf(count: number, max: number): number {
  return max > 0 ? Math.min(100, (count / max) * 100) : 0;
}

/** Increase of a cumulative counter; a counter that went down was reset, so it counts from zero. */
export function counterDelta(prev: number, cur: number): number {
  return cur >= prev ? cur - prev : cur;
}

function intervalDrops(prev: Sample, cur: Sample): { tableFull: number; insertFailed: number } {
  const drop = counterDelta(prev.drop, cur.drop);
  const insertFailed = counterDelta(prev.insertFailed, cur.insertFailed);
  const earlyDrop = counterDelta(prev.earlyDrop, cur.earlyDrop);
  return { tableFull: Math.max(0, drop - insertFailed) + earlyDrop, insertFailed };
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * The series to draw. Samples are sorted by time; past `maxPoints` they are merged in equal
 * buckets: a bucket's utilisation point is its highest sample (so the peak is always drawn)
 * and its bar is the sum of its intervals' drops.
 */
export function chartSeries(samples: readonly Sample[], maxPoints = 480): ChartSeries {
  const sorted = [...samples].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const times = sorted.map((s) => Date.parse(s.at));
  const percents = sorted.map((s) => percentOf(s.count, s.max));

  const intervals: DropBar[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (!prev || !cur) continue;
    intervals.push({ t0: times[i - 1] ?? 0, t1: times[i] ?? 0, ...intervalDrops(prev, cur) });
  }

  let peakIndex = 0;
  percents.forEach((p, i) => {
    if (p > (percents[peakIndex] ?? -1)) peakIndex = i;
  });
  const peakSample = sorted[peakIndex] ?? sorted[0];
  const firstT = times[0] ?? 0;
  const lastT = times[times.length - 1] ?? firstT;

  const bucketSize = Math.max(1, Math.ceil(sorted.length / maxPoints));
  const util: UtilPoint[] = [];
  for (let start = 0; start < sorted.length; start += bucketSize) {
    let best = start;
    for (let i = start; i < Math.min(sorted.length, start + bucketSize); i++) {
      if ((percents[i] ?? 0) > (percents[best] ?? 0)) best = i;
    }
    util.push({ t: times[best] ?? 0, percent: percents[best] ?? 0 });
  }
  const bars: DropBar[] = [];
  for (let start = 0; start < intervals.length; start += bucketSize) {
    const group = intervals.slice(start, start + bucketSize);
    const head = group[0];
    const tail = group[group.length - 1];
    if (!head || !tail) continue;
    bars.push({
      t0: head.t0,
      t1: tail.t1,
      tableFull: group.reduce((n, b) => n + b.tableFull, 0),
      insertFailed: group.reduce((n, b) => n + b.insertFailed, 0),
    });
  }

  return {
    util,
    bars,
    barMs: median(bars.map((b) => b.t1 - b.t0)),
    peak: {
      t: times[peakIndex] ?? firstT,
      percent: percents[peakIndex] ?? 0,
      count: peakSample?.count ?? 0,
      max: peakSample?.max ?? 0,
    },
    last: { t: lastT, percent: percents[percents.length - 1] ?? 0 },
    firstT,
    lastT,
    sampleCount: sorted.length,
    totals: {
      tableFull: intervals.reduce((n, b) => n + b.tableFull, 0),
      insertFailed: intervals.reduce((n, b) => n + b.insertFailed, 0),
    },
    bucketSize,
  };
}

/**
 * The time window drawn: the samples and the episode, padded a little (a single sample gets
 * ±5 min; a short episode a quarter of its span, at least 15 s, so it fills the chart instead
 * of a sliver in a 10-minute window).
 */
export function chartWindow(series: ChartSeries, episode: ChartInput['episode']): { from: number; to: number } {
  const opened = Date.parse(episode.openedAt);
  const resolved = episode.resolvedAt === null ? series.lastT : Date.parse(episode.resolvedAt);
  const from = Math.min(series.firstT, opened);
  const to = Math.max(series.lastT, resolved);
  const span = to - from;
  const pad = span === 0 ? 5 * 60_000 : span < 60_000 ? Math.max(span * 0.25, 15_000) : span * 0.02;
  return { from: from - pad, to: to + pad };
}
