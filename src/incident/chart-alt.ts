/**
 * The chart's alt text: the numbers a person would read off the picture (peak and when,
 * drops, how long, the marks), in at most 1,000 characters.
 */
import type { ChartInput, ChartSeries } from './chart-data.js';
import { countText, percentText, shortName, spanText, utcRange, utcTime } from './chart-text.js';

export const ALT_TEXT_MAX = 1000;

function dropsSentence(totals: ChartSeries['totals']): string {
  const all = totals.tableFull + totals.insertFailed;
  if (all === 0) return 'No packets dropped.';
  return `Drops: ${countText(all)} in total, ${countText(totals.tableFull)} because the table was full (drop + early_drop), ${countText(totals.insertFailed)} insert_failed (NAT port exhaustion).`;
}

/** A short episode is told to the second ("19:52:09–19:52:27"), not as "19:52–19:52". */
const SECONDS_BELOW_MS = 10 * 60_000;

function episodeSentence(episode: ChartInput['episode'], series: ChartSeries): string {
  const opened = Date.parse(episode.openedAt);
  const ref = series.firstT;
  if (episode.resolvedAt === null) {
    return `Episode opened ${utcTime(opened, ref, series.lastT - opened < SECONDS_BELOW_MS)}, still open after ${spanText(series.lastT - opened)}.`;
  }
  const resolved = Date.parse(episode.resolvedAt);
  const s = resolved - opened < SECONDS_BELOW_MS;
  return `Episode ${utcTime(opened, ref, s)}–${utcTime(resolved, ref, s)}, lasted ${spanText(resolved - opened)}.`;
}

function marksSentence(marks: ChartInput['marks'], ref: number, window: { from: number; to: number }, room: number): string {
  if (marks.length === 0) return '';
  const parts = marks.map((m) => {
    const t = Date.parse(m.at);
    const outside = t < window.from || t > window.to ? ', outside the chart' : '';
    return `${m.label} at ${utcTime(t, ref)}${outside}`;
  });
  let text = `Marks: ${parts.join('; ')}.`;
  for (let shown = parts.length - 1; text.length > room && shown >= 0; shown--) {
    text = `Marks: ${[...parts.slice(0, shown), `${parts.length - shown} more`].join('; ')}.`;
  }
  return text.length > room ? '' : text;
}

export function chartAltText(input: ChartInput, series: ChartSeries, window: { from: number; to: number }): string {
  const ref = series.firstT;
  const { peak } = series;
  const episodePeak =
    Math.abs(input.episode.peakPercent - peak.percent) >= 0.05 ? ` (episode peak ${percentText(input.episode.peakPercent)})` : '';
  const head = [
    `Conntrack utilisation of ${shortName(input.gateway, 80)}, ${utcRange(series.firstT, series.lastT)} UTC, ${countText(series.sampleCount)} ${series.sampleCount === 1 ? 'sample' : 'samples'}.`,
    `Peak ${percentText(peak.percent)} (${countText(peak.count)} of ${countText(peak.max)} entries) at ${utcTime(peak.t, ref)} UTC${episodePeak}; warning at ${percentText(input.warnPercent)}, critical at ${percentText(input.critPercent)}.`,
    episodeSentence(input.episode, series),
    dropsSentence(series.totals),
  ].join(' ');
  const tail = `Last sample ${percentText(series.last.percent)} at ${utcTime(series.last.t, ref)}.`;
  const marks = marksSentence(input.marks, ref, window, ALT_TEXT_MAX - head.length - tail.length - 2);
  const text = [head, marks, tail].filter((s) => s !== '').join(' ');
  return text.length > ALT_TEXT_MAX ? `${text.slice(0, ALT_TEXT_MAX - 1)}…` : text;
}
