/**
 * The episode chart: a real PNG of the right size, quick enough for 7 days of 30 s polls,
 * the warn / crit rules and the title actually drawn (pixels read back from the PNG), and an
 * alt text that carries the numbers.
 */
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { chartInputSchema, type ChartInput } from '../../src/incident/chart-data.js';
import { chartLayout } from '../../src/incident/chart-layout.js';
import { CHART_COLORS } from '../../src/incident/chart-spec.js';
import { ALT_TEXT_MAX } from '../../src/incident/chart-alt.js';
import { episodeChartSvg, renderEpisodeChart } from '../../src/incident/chart.js';
import { criticalWithPlan, curve, samplesFrom, warningResolved } from './chart-scenarios.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function ihdr(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  expect(String.fromCharCode(...png.slice(12, 16))).toBe('IHDR');
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function rgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** How many pixels of row `y` between x0 and x1 are (nearly) `hex`. */
function pixelsOfColor(image: PNG, y: number, x0: number, x1: number, hex: string): number {
  const [r, g, b] = rgb(hex);
  let n = 0;
  for (let x = x0; x < x1; x++) {
    const i = (y * image.width + x) * 4;
    const d = Math.abs((image.data[i] ?? 0) - r) + Math.abs((image.data[i + 1] ?? 0) - g) + Math.abs((image.data[i + 2] ?? 0) - b);
    if (d <= 24) n++;
  }
  return n;
}

function darkPixels(image: PNG, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * image.width + x) * 4;
      if ((image.data[i] ?? 255) < 100 && (image.data[i + 1] ?? 255) < 100 && (image.data[i + 2] ?? 255) < 100) n++;
    }
  }
  return n;
}

function sevenDays(): ChartInput {
  const n = 20_160;
  const pcts = curve(n, [[0, 40], [9_000, 70], [12_000, 93.5], [12_001, 60], [n - 1, 55]]);
  pcts[15_000] = 98.6; // a single-poll spike that downsampling must keep
  return {
    gateway: 'gw-7',
    samples: samplesFrom('2026-11-27T00:00:00Z', 30_000, pcts.map((percent, i) => ({ percent, drop: i % 500 === 0 ? 50 : 0 }))),
    warnPercent: 80,
    critPercent: 90,
    marks: [{ at: '2026-12-01T04:30:00Z', label: 'plan applied (U0BOB)' }],
    episode: { openedAt: '2026-12-01T04:00:00Z', resolvedAt: '2026-12-01T06:00:00Z', peakPercent: 98.6 },
  };
}

describe('renderEpisodeChart', () => {
  it('draws a real 1000x500 PNG: signature, IHDR, decodable', async () => {
    const chart = await renderEpisodeChart(warningResolved());
    expect([...chart.png.slice(0, 8)]).toEqual(PNG_SIGNATURE);
    expect(ihdr(chart.png)).toEqual({ width: 1000, height: 500 });
    expect({ width: chart.width, height: chart.height }).toEqual({ width: 1000, height: 500 });
    const image = PNG.sync.read(Buffer.from(chart.png));
    expect(image.width).toBe(1000);
    expect(chart.png.byteLength).toBeLessThan(150_000);
  });

  it('draws the warn and crit rules at their rows, in their colours, and the title in the bundled font', async () => {
    const input = warningResolved(); // "episode opened" and "resolved" share one lane
    const image = PNG.sync.read(Buffer.from((await renderEpisodeChart(input)).png));
    const { util } = chartLayout(1);
    const row = (p: number): number => util.y + Math.round(util.height * (1 - p / 100));
    const across = (y: number, hex: string): number =>
      Math.max(...[y - 1, y, y + 1].map((r) => pixelsOfColor(image, r, util.x, util.x + util.width, hex)));
    // dashed 7 on / 4 off over the plot width: well over a third of the row
    expect(across(row(input.warnPercent), CHART_COLORS.warn)).toBeGreaterThan(util.width / 3);
    expect(across(row(input.critPercent), CHART_COLORS.crit)).toBeGreaterThan(util.width / 3);
    expect(across(row(50), CHART_COLORS.warn)).toBe(0);
    // the utilisation line is drawn in its colour somewhere between 55 % and 85 %
    let lineColor = 0;
    for (let y = row(85); y <= row(55); y++) lineColor += pixelsOfColor(image, y, util.x, util.x + util.width, CHART_COLORS.util);
    expect(lineColor).toBeGreaterThan(200);
    // the title is text in DejaVu Sans Bold (shipped by a package, no system font): dark glyph pixels
    expect(darkPixels(image, util.x, 8, util.x + 500, 30)).toBeGreaterThan(800);
  });

  it('states the numbers in the alt text: peak and when, drops, duration, marks', async () => {
    const { altText } = await renderEpisodeChart(criticalWithPlan());
    expect(altText.length).toBeLessThanOrEqual(ALT_TEXT_MAX);
    expect(altText).toContain('Peak 100.0% (262,144 of 262,144 entries) at 13:54 UTC');
    expect(altText).toContain('Drops: 13,589 in total, 12,338 because the table was full (drop + early_drop), 1,251 insert_failed');
    expect(altText).toContain('Episode opened 13:25, still open after 2 h 35 min.');
    expect(altText).toContain('plan applied (U0BOB) at 14:15');
    expect(altText).toContain('rolled back at 14:50');
    expect(altText).toContain('earlier check (outside) at 09:00, outside the chart');

    const warning = await renderEpisodeChart(warningResolved());
    expect(warning.altText).toContain('Episode 13:40–14:11, lasted 31 min.');
    expect(warning.altText).toContain('No packets dropped.');
  });

  it('draws 7 days of 30 s polls (20,160 samples) within the time budget and keeps the peak', async () => {
    const input = sevenDays();
    const started = performance.now();
    const chart = await renderEpisodeChart(input);
    const ms = performance.now() - started;
    console.log(`20,160 samples: ${ms.toFixed(0)} ms, ${chart.png.byteLength} bytes`);
    expect(ms).toBeLessThan(3_000);
    expect(ihdr(chart.png)).toEqual({ width: 1000, height: 500 });
    expect(chart.altText).toContain('Peak 98.6%');
    expect(chart.altText).toContain('Drops: 2,000 in total');
    const { svg } = await episodeChartSvg(input);
    expect(svg).toContain('peak 98.6%');
    expect(svg.length).toBeLessThan(400_000);
  });

  it('survives the edge cases: one sample, no drops, marks outside the range, many marks at once', async () => {
    const one: ChartInput = {
      gateway: 'gw-1',
      samples: samplesFrom('2026-12-04T10:00:00Z', 30_000, [{ percent: 97 }]),
      warnPercent: 80,
      critPercent: 90,
      marks: [
        { at: '2026-12-04T10:00:00Z', label: 'plan applied (U0BOB)' },
        { at: '2026-12-05T10:00:00Z', label: 'far later' },
      ],
      episode: { openedAt: '2026-12-04T10:00:00Z', resolvedAt: null, peakPercent: 97 },
    };
    const chart = await renderEpisodeChart(one);
    expect(ihdr(chart.png)).toEqual({ width: 1000, height: 500 });
    expect(chart.altText).toContain('1 sample.');
    expect(chart.altText).toContain('No packets dropped.');
    expect(chart.altText).toContain('far later at 2026-12-05 10:00, outside the chart');
    const { svg } = await episodeChartSvg(one);
    expect(svg).not.toContain('far later');
    expect(svg).toContain('no drops');

    const crowded = { ...criticalWithPlan(), marks: Array.from({ length: 40 }, (_, i) => ({ at: `2026-12-04T14:${String(i).padStart(2, '0')}:00Z`, label: `step ${i} of a long runbook` })) };
    const many = await renderEpisodeChart(crowded);
    expect(ihdr(many.png)).toEqual({ width: 1000, height: 500 });
    expect(many.altText.length).toBeLessThanOrEqual(ALT_TEXT_MAX);
    expect(many.altText).toMatch(/\d+ more\./);
  });

  it('escapes a gateway name with odd characters in the SVG and keeps it in the alt text', async () => {
    const input = { ...warningResolved(), gateway: 'gw<3>&"edge" ünïcode' };
    const { svg, altText } = await episodeChartSvg(input);
    expect(svg).toContain('gw&lt;3&gt;&amp;');
    expect(svg).not.toContain('gw<3>');
    expect(altText).toContain('gw<3>&"edge" ünïcode');
    expect(ihdr((await renderEpisodeChart(input)).png)).toEqual({ width: 1000, height: 500 });
  });

  it('refuses input that is not a chart: no samples, a time that is not a time', async () => {
    await expect(renderEpisodeChart({ ...warningResolved(), samples: [] })).rejects.toThrow();
    const bad = warningResolved();
    expect(chartInputSchema.safeParse({ ...bad, marks: [{ at: 'yesterday-ish', label: 'x' }] }).success).toBe(false);
  });
});
