/**
 * The episode chart as a Vega spec: utilisation % over time with the warn / crit rules and the
 * episode shaded, drops per interval below it (table full and insert_failed stacked, in two
 * colours), and the marks (plan applied, rolled back) as vertical rules labelled on lanes above.
 * Everything is placed in pixels by chart-layout.ts, so the picture has one fixed size.
 */
import type { Spec } from 'vega';
import type { ChartInput, ChartSeries } from './chart-data.js';
import { chartLayout, FONT_FAMILY, LABEL_FONT_SIZE, placeLabels, textWidth, type LaneLabel } from './chart-layout.js';
import { chartTitle, countText, percentText, spanText, utcTime } from './chart-text.js';

export const CHART_COLORS = {
  util: '#1f5fa8',
  warn: '#e08a00',
  crit: '#c62828',
  tableFull: '#b0413e',
  insertFailed: '#6a3d9a',
  mark: '#37474f',
  episodeWarning: '#fdebc8',
  episodeCritical: '#f8d4d0',
  text: '#212121',
  muted: '#616161',
} as const;

type Window = { from: number; to: number };

function text(enter: Record<string, unknown>): NonNullable<Spec['marks']>[number] {
  return { type: 'text', encode: { enter: { font: { value: FONT_FAMILY }, ...enter } } };
}

/** Text drawn over a white outline of itself, so a line or rule running behind it does not cut it. */
function haloText(enter: Record<string, unknown>): NonNullable<Spec['marks']>[number][] {
  return [text({ ...enter, stroke: { value: 'white' }, strokeWidth: { value: 4 }, strokeJoin: { value: 'round' } }), text(enter)];
}

function subtitle(input: ChartInput, series: ChartSeries): string {
  const drops = series.totals.tableFull + series.totals.insertFailed;
  const opened = Date.parse(input.episode.openedAt);
  const episode =
    input.episode.resolvedAt === null
      ? `episode open for ${spanText(series.lastT - opened)}`
      : `episode lasted ${spanText(Date.parse(input.episode.resolvedAt) - opened)}`;
  return [
    `peak ${percentText(series.peak.percent)} at ${utcTime(series.peak.t, series.firstT)}`,
    drops === 0 ? 'no drops' : `${countText(drops)} drops`,
    episode,
  ].join('  ·  ');
}

/** The warn and crit labels beside the plot, pushed apart when the two levels are close. */
function thresholdLabels(input: ChartInput, height: number): { text: string; y: number; color: string }[] {
  const y = (p: number): number => height * (1 - p / 100);
  const warn = { text: `warn ${percentText(input.warnPercent)}`, y: y(input.warnPercent), color: CHART_COLORS.warn };
  const crit = { text: `crit ${percentText(input.critPercent)}`, y: y(input.critPercent), color: CHART_COLORS.crit };
  const minGap = LABEL_FONT_SIZE + 2;
  if (Math.abs(warn.y - crit.y) < minGap) {
    const mid = (warn.y + crit.y) / 2;
    const [upper, lower] = input.critPercent >= input.warnPercent ? [crit, warn] : [warn, crit];
    upper.y = mid - minGap / 2;
    lower.y = mid + minGap / 2;
  }
  return [warn, crit];
}

function episodeSpan(input: ChartInput, series: ChartSeries, win: Window): { t0: number; t1: number } {
  const opened = Date.parse(input.episode.openedAt);
  const resolved = input.episode.resolvedAt === null ? series.lastT : Date.parse(input.episode.resolvedAt);
  return { t0: Math.max(win.from, opened), t1: Math.min(win.to, resolved) };
}

/**
 * A baseline for an 11 px label near `baseline` whose text does not sit on a horizontal rule:
 * moved up above any rule it would cross (kept where it was if that leaves the panel).
 */
function clearOfRules(baseline: number, ruleRows: number[]): number {
  let y = baseline;
  for (const r of [...ruleRows].sort((a, b) => b - a)) {
    if (y - LABEL_FONT_SIZE - 1 <= r + 1 && y + 2 >= r - 1) y = r - 4;
  }
  return y - LABEL_FONT_SIZE >= 0 ? y : baseline;
}

type Mark = NonNullable<Spec['marks']>[number];

/** The episode's window shaded over a panel of `height`. */
function shadeRect(ep: { t0: number; t1: number }, height: number, color: string, opacity: number): Mark {
  return {
    type: 'rect',
    encode: {
      enter: {
        x: { scale: 'x', value: ep.t0 },
        x2: { scale: 'x', value: ep.t1 },
        y: { value: 0 },
        y2: { value: height },
        fill: { value: color },
        fillOpacity: { value: opacity },
      },
    },
  };
}

/** One layer of the stacked drop bars, from `y2` up to `y`. */
function barRect(y: Record<string, string>, y2: Record<string, string | number>, color: string): Mark {
  return {
    type: 'rect',
    from: { data: 'bars' },
    encode: { enter: { x: { scale: 'x', field: 't0' }, x2: { scale: 'x', field: 't1' }, y, y2, fill: { value: color } } },
  };
}

const CLUSTER_PX = 6;

/** Marks closer than a few pixels share one rule: "3 marks 14:10–14:12" instead of a thicket. */
function markClusters(marks: ChartInput['marks'], px: (t: number) => number): { x: number; text: (ref: number) => string }[] {
  const sorted = [...marks].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const groups: ChartInput['marks'][] = [];
  for (const m of sorted) {
    const group = groups[groups.length - 1];
    const last = group?.[group.length - 1];
    if (group && last && px(Date.parse(m.at)) - px(Date.parse(last.at)) < CLUSTER_PX) group.push(m);
    else groups.push([m]);
  }
  return groups.flatMap((g) => {
    const first = g[0];
    const last = g[g.length - 1];
    if (!first || !last) return [];
    const t0 = Date.parse(first.at);
    const t1 = Date.parse(last.at);
    return [
      {
        x: px(t0),
        text: (ref: number) =>
          g.length === 1 ? `${first.label} ${utcTime(t0, ref)}` : `${g.length} marks ${utcTime(t0, ref)}–${utcTime(t1, t0)}`,
      },
    ];
  });
}

export function episodeChartSpec(input: ChartInput, series: ChartSeries, win: Window): Spec {
  const plotWidth = chartLayout(0).util.width;
  const px = (t: number): number => ((t - win.from) / (win.to - win.from)) * plotWidth;
  const inWindow = input.marks.filter((m) => {
    const t = Date.parse(m.at);
    return t >= win.from && t <= win.to;
  });
  const ep = episodeSpan(input, series, win);
  const laneLabels: LaneLabel[] = [
    ...markClusters(inWindow, px).map((c) => ({ x: c.x, text: c.text(series.firstT), rule: true })),
    { x: px(ep.t0), text: 'episode opened', rule: false },
    ...(input.episode.resolvedAt === null ? [] : [{ x: px(ep.t1), text: 'resolved', rule: false }]),
  ];
  const { placed, unplaced } = placeLabels(laneLabels, plotWidth);
  const lanes = placed.reduce((n, p) => Math.max(n, p.lane + 1), 0);
  const layout = chartLayout(lanes);
  const { util, drops } = layout;
  const critical = series.peak.percent >= input.critPercent;
  const shade = critical ? CHART_COLORS.episodeCritical : CHART_COLORS.episodeWarning;
  const maxDrops = series.bars.reduce((n, b) => Math.max(n, b.tableFull + b.insertFailed), 0);
  const peakX = px(series.peak.t);
  const peakY = util.height * (1 - series.peak.percent / 100);
  const peakText = `peak ${percentText(series.peak.percent)}`;
  const peakTextWidth = textWidth(peakText, LABEL_FONT_SIZE);
  // Above the point when there is room (nothing of the line is higher), else below and to the side.
  const peakAbove = peakY >= 22 && peakX - peakTextWidth / 2 >= 0 && peakX + peakTextWidth / 2 <= util.width;
  const peakLeft = peakX + 7 + peakTextWidth > util.width;
  const peakLabelY = peakAbove ? clearOfRules(peakY - 9, [input.warnPercent, input.critPercent].map((p) => Math.round(util.height * (1 - p / 100)))) : peakY + 15;
  const ruleRows = placed.filter((p) => p.rule);
  const unplacedRules = unplaced.filter((p) => p.rule);
  const axisBase = {
    labelFont: FONT_FAMILY,
    titleFont: FONT_FAMILY,
    labelFontSize: LABEL_FONT_SIZE,
    titleFontSize: LABEL_FONT_SIZE,
    labelColor: CHART_COLORS.text,
    titleColor: CHART_COLORS.muted,
    domainColor: '#9e9e9e',
    tickColor: '#9e9e9e',
    gridColor: '#e6e6e6',
  };
  const timeFormat = {
    milliseconds: '%H:%M:%S',
    seconds: '%H:%M:%S',
    minutes: '%H:%M',
    hours: '%H:%M',
    date: '%b %d',
    week: '%b %d',
    month: '%b %d',
    quarter: '%b %d',
    year: '%Y',
  };

  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    width: layout.width,
    height: layout.height,
    padding: 0,
    autosize: 'none',
    background: 'white',
    data: [
      { name: 'util', values: series.util },
      { name: 'bars', values: series.bars },
      {
        name: 'marks',
        // a labelled mark's rule starts at its label; one whose label found no room starts at the plot
        values: [
          ...ruleRows.map((p) => ({ x: p.x, y0: layout.lanesTop + p.lane * layout.laneHeight })),
          ...unplacedRules.map((p) => ({ x: p.x, y0: util.y })),
        ],
      },
      { name: 'labels', values: placed.map((p) => ({ ...p, y: layout.lanesTop + p.lane * layout.laneHeight + LABEL_FONT_SIZE })) },
      { name: 'thresholds', values: thresholdLabels(input, util.height) },
    ],
    scales: [
      { name: 'x', type: 'utc', domain: [win.from, win.to], range: [0, util.width] },
      { name: 'pct', type: 'linear', domain: [0, 100], range: [util.height, 0] },
      { name: 'drops', type: 'linear', domain: [0, Math.max(1, maxDrops)], nice: true, zero: true, range: [drops.height, 0] },
    ],
    marks: [
      text({
        x: { value: util.x },
        y: { value: 24 },
        text: { value: chartTitle(input.gateway, series.firstT, series.lastT) },
        fontSize: { value: 16 },
        fontWeight: { value: 'bold' },
        fill: { value: CHART_COLORS.text },
      }),
      text({
        x: { value: util.x },
        y: { value: 43 },
        text: { value: subtitle(input, series) },
        fontSize: { value: 12 },
        fill: { value: CHART_COLORS.muted },
      }),
      {
        type: 'group',
        encode: { enter: { x: { value: util.x }, y: { value: util.y }, width: { value: util.width }, height: { value: util.height } } },
        axes: [
          { ...axisBase, orient: 'left', scale: 'pct', values: [0, 25, 50, 75, 100], grid: true, gridScale: 'x', title: 'utilisation %', titlePadding: 8 },
          { ...axisBase, orient: 'bottom', scale: 'x', grid: true, gridScale: 'pct', labels: false, tickCount: 8, domain: true },
        ],
        marks: [
          shadeRect(ep, util.height, shade, 0.75),
          ...[
            { p: input.warnPercent, color: CHART_COLORS.warn },
            { p: input.critPercent, color: CHART_COLORS.crit },
          ].map(({ p, color }) => ({
            type: 'rule' as const,
            encode: {
              enter: {
                x: { value: 0 },
                x2: { value: util.width },
                // on a pixel boundary, 2 px wide: two full rows of the colour, not a blur over three
                y: { value: Math.round(util.height * (1 - p / 100)) },
                stroke: { value: color },
                strokeWidth: { value: 2 },
                strokeDash: { value: [7, 4] },
              },
            },
          })),
          {
            type: 'text',
            from: { data: 'thresholds' },
            encode: {
              enter: {
                x: { value: util.width + 6 },
                y: { field: 'y' },
                baseline: { value: 'middle' },
                text: { field: 'text' },
                fill: { field: 'color' },
                font: { value: FONT_FAMILY },
                fontSize: { value: LABEL_FONT_SIZE },
                fontWeight: { value: 'bold' },
              },
            },
          },
          {
            type: 'line',
            from: { data: 'util' },
            encode: {
              enter: {
                x: { scale: 'x', field: 't' },
                y: { scale: 'pct', field: 'percent' },
                stroke: { value: CHART_COLORS.util },
                strokeWidth: { value: 2 },
                strokeJoin: { value: 'round' },
              },
            },
          },
          {
            type: 'symbol',
            encode: {
              enter: {
                x: { value: peakX },
                y: { value: peakY },
                size: { value: 40 },
                fill: { value: CHART_COLORS.util },
                stroke: { value: 'white' },
                strokeWidth: { value: 1 },
              },
            },
          },
          ...haloText({
            x: { value: peakAbove ? peakX : peakLeft ? peakX - 7 : peakX + 7 },
            y: { value: peakLabelY },
            align: { value: peakAbove ? 'center' : peakLeft ? 'right' : 'left' },
            text: { value: peakText },
            fontSize: { value: LABEL_FONT_SIZE },
            fontWeight: { value: 'bold' },
            fill: { value: CHART_COLORS.util },
          }),
        ],
      },
      {
        type: 'group',
        encode: { enter: { x: { value: drops.x }, y: { value: drops.y }, width: { value: drops.width }, height: { value: drops.height } } },
        axes: [
          {
            ...axisBase,
            orient: 'left',
            scale: 'drops',
            ...(maxDrops === 0 ? { values: [0] } : { tickCount: 3, tickMinStep: 1 }),
            grid: true,
            gridScale: 'x',
            format: '~s',
            title: series.bars.length > 0 ? `drops / ${spanText(series.barMs)}` : 'drops',
            titlePadding: 8,
          },
          {
            ...axisBase,
            orient: 'bottom',
            scale: 'x',
            grid: true,
            gridScale: 'drops',
            tickCount: 8,
            formatType: 'utc',
            format: timeFormat,
            labelOverlap: true,
            title: 'time (UTC)',
            titlePadding: 4,
          },
        ],
        marks: [
          shadeRect(ep, drops.height, shade, 0.45),
          barRect({ scale: 'drops', field: 'tableFull' }, { scale: 'drops', value: 0 }, CHART_COLORS.tableFull),
          barRect({ scale: 'drops', signal: 'datum.tableFull + datum.insertFailed' }, { scale: 'drops', field: 'tableFull' }, CHART_COLORS.insertFailed),
        ],
      },
      {
        type: 'rule',
        from: { data: 'marks' },
        encode: {
          enter: {
            x: { signal: `datum.x + ${util.x}` },
            y: { field: 'y0' },
            y2: { value: drops.y + drops.height },
            stroke: { value: CHART_COLORS.mark },
            strokeWidth: { value: 1.25 },
            strokeDash: { value: [3, 3] },
          },
        },
      },
      // Over the rules, so a mark running through the key or a quiet drops panel does not cut the words.
      ...(maxDrops === 0 ? [] : legend(drops.x, drops.y)),
      ...(maxDrops === 0
        ? haloText({
            x: { value: drops.x + drops.width / 2 },
            y: { value: drops.y + drops.height / 2 },
            align: { value: 'center' },
            baseline: { value: 'middle' },
            text: { value: 'no drops' },
            fontSize: { value: 12 },
            fill: { value: CHART_COLORS.muted },
          })
        : []),
      {
        type: 'text',
        from: { data: 'labels' },
        encode: {
          enter: {
            x: { signal: `datum.textX + ${util.x}` },
            y: { field: 'y' },
            align: { field: 'align' },
            text: { field: 'text' },
            font: { value: FONT_FAMILY },
            fontSize: { value: LABEL_FONT_SIZE },
            fill: { signal: `datum.rule ? '${CHART_COLORS.mark}' : '${CHART_COLORS.muted}'` },
            fontStyle: { signal: `datum.rule ? 'normal' : 'italic'` },
            fontWeight: { signal: `datum.rule ? 'bold' : 'normal'` },
          },
        },
      },
    ],
  };
}

/** The drops panel's key, just above it on the left (`x`, `y`: the panel's top-left corner). */
function legend(left: number, top: number): NonNullable<Spec['marks']> {
  const items = [
    { text: 'table full (drop + early_drop)', color: CHART_COLORS.tableFull },
    { text: 'insert_failed (NAT ports)', color: CHART_COLORS.insertFailed },
  ];
  let x = left;
  const out: NonNullable<Spec['marks']> = [];
  for (const item of items) {
    out.push({
      type: 'rect',
      encode: { enter: { x: { value: x }, y: { value: top - 15 }, width: { value: 10 }, height: { value: 10 }, fill: { value: item.color } } },
    });
    out.push(
      ...haloText({
        x: { value: x + 14 },
        y: { value: top - 6 },
        text: { value: item.text },
        fontSize: { value: LABEL_FONT_SIZE },
        fill: { value: CHART_COLORS.text },
      }),
    );
    x += 14 + textWidth(item.text, LABEL_FONT_SIZE) + 18;
  }
  return out;
}

