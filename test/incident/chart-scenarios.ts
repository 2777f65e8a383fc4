/**
 * Episodes to draw: watch samples built the way the poller records them (cumulative counters,
 * one sample per poll), for the chart tests and the sample pictures.
 */
import type { ChartInput } from '../../src/incident/chart.js';

type Sample = ChartInput['samples'][number];

export interface Step {
  percent: number;
  max?: number;
  /** Counter increases since the previous poll. */
  drop?: number;
  earlyDrop?: number;
  insertFailed?: number;
  /** The counters start again from zero at this poll (module reload, reboot). */
  reset?: boolean;
}

/** Samples every `intervalMs` from `start`, one per step, counters accumulated. */
export function samplesFrom(start: string, intervalMs: number, steps: readonly Step[]): Sample[] {
  const t0 = Date.parse(start);
  let drop = 0;
  let earlyDrop = 0;
  let insertFailed = 0;
  return steps.map((s, i) => {
    if (s.reset) [drop, earlyDrop, insertFailed] = [0, 0, 0];
    drop += s.drop ?? 0;
    earlyDrop += s.earlyDrop ?? 0;
    insertFailed += s.insertFailed ?? 0;
    const max = s.max ?? 262_144;
    return {
      at: new Date(t0 + i * intervalMs).toISOString(),
      count: Math.round((s.percent / 100) * max),
      max,
      drop,
      earlyDrop,
      insertFailed,
    };
  });
}

/** A smooth-ish curve through (index, percent) knots, with a little deterministic wobble. */
export function curve(n: number, knots: readonly [number, number][]): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = knots.findIndex(([x]) => x >= i);
    const [x1, y1] = knots[Math.max(0, k)] ?? [n, 0];
    const [x0, y0] = knots[Math.max(0, k - 1)] ?? [0, y1];
    const f = x1 === x0 ? 1 : (i - x0) / (x1 - x0);
    const wobble = Math.sin(i * 0.7) * 0.6 + Math.sin(i * 0.13) * 0.4;
    out.push(Math.min(100, Math.max(0, y0 + (y1 - y0) * f + wobble)));
  }
  return out;
}

const at = (base: string, minutes: number): string => new Date(Date.parse(base) + minutes * 60_000).toISOString();

/** A warning that resolved by itself: up to 84 %, never full, no drops. 2 h of 30 s polls. */
export function warningResolved(): ChartInput {
  const start = '2026-12-04T13:00:00Z';
  const pcts = curve(240, [[0, 58], [60, 72], [100, 84], [130, 81], [150, 74], [239, 62]]);
  return {
    gateway: 'gw-3',
    samples: samplesFrom(start, 30_000, pcts.map((percent) => ({ percent }))),
    warnPercent: 80,
    critPercent: 90,
    marks: [],
    episode: { openedAt: at(start, 40), resolvedAt: at(start, 71), peakPercent: 84.6 },
  };
}

/**
 * A critical episode: the table fills (table-full drops, some insert_failed), a plan is
 * approved and applied (nf_conntrack_max doubled), then rolled back (counters reset by the
 * module reload) and the table climbs again. 3 h of 30 s polls.
 */
export function criticalWithPlan(): ChartInput {
  const start = '2026-12-04T13:00:00Z';
  const n = 360;
  const pcts = curve(n, [[0, 62], [80, 88], [100, 97], [110, 99.7], [150, 99.7], [151, 50], [200, 52], [220, 52], [221, 90], [250, 96], [300, 84], [359, 80]]);
  const steps: Step[] = pcts.map((percent, i) => {
    const full = percent >= 99.4;
    const plan = i > 150 && i <= 220;
    return {
      percent: plan ? percent : percent,
      max: plan ? 524_288 : 262_144,
      drop: full ? 300 + ((i * 37) % 200) + 20 : i >= 230 && i < 250 ? 15 : 0,
      earlyDrop: full ? 40 : 0,
      insertFailed: full ? 20 + ((i * 13) % 30) : i >= 230 && i < 250 ? 12 : 0,
      reset: i === 221,
    };
  });
  return {
    gateway: 'gw-3',
    samples: samplesFrom(start, 30_000, steps),
    warnPercent: 80,
    critPercent: 90,
    marks: [
      { at: at(start, 72), label: 'plan approved (U0ALICE)' },
      { at: at(start, 75), label: 'plan applied (U0BOB)' },
      { at: at(start, 110), label: 'rolled back' },
      { at: '2026-12-04T09:00:00Z', label: 'earlier check (outside)' },
    ],
    episode: { openedAt: at(start, 25), resolvedAt: null, peakPercent: 99.8 },
  };
}
