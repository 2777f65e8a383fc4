/**
 * The episode chart for the incident channel: the watch samples in, a PNG and its alt text out.
 * Vega lays the chart out as SVG (no browser, no canvas); resvg draws the SVG to PNG with the
 * DejaVu Sans files shipped by the `dejavu-fonts-ttf` package, never the machine's fonts, so
 * the picture is the same on every machine. Pure: no Redis, no Slack.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { parse, View } from 'vega';
import { chartAltText } from './chart-alt.js';
import { chartInputSchema, chartSeries, chartWindow, type ChartInput } from './chart-data.js';
import { CHART_HEIGHT, CHART_WIDTH, FONT_FAMILY } from './chart-layout.js';
import { episodeChartSpec } from './chart-spec.js';

export type { ChartInput } from './chart-data.js';

export interface EpisodeChart {
  png: Uint8Array;
  altText: string;
  width: number;
  height: number;
}

const fontDir = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
export const CHART_FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf'].map((f) => join(fontDir, f));

/** The chart's SVG (Vega escapes the text it writes). */
export async function episodeChartSvg(input: ChartInput): Promise<{ svg: string; altText: string }> {
  const valid = chartInputSchema.parse(input);
  const series = chartSeries(valid.samples);
  const win = chartWindow(series, valid.episode);
  const view = new View(parse(episodeChartSpec(valid, series, win)), { renderer: 'none' });
  try {
    return { svg: await view.toSVG(), altText: chartAltText(valid, series, win) };
  } finally {
    view.finalize();
  }
}

export async function renderEpisodeChart(input: ChartInput): Promise<EpisodeChart> {
  const { svg, altText } = await episodeChartSvg(input);
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'width', value: CHART_WIDTH },
    font: { fontFiles: CHART_FONT_FILES, loadSystemFonts: false, defaultFontFamily: FONT_FAMILY },
    background: 'white',
  });
  const image = resvg.render();
  const png = new Uint8Array(image.asPng());
  return { png, altText, width: image.width, height: image.height };
}

export { CHART_HEIGHT, CHART_WIDTH };
