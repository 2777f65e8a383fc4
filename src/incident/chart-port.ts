/**
 * The chart of an episode, behind a port: the renderer (src/incident/chart.ts,
 * renderEpisodeChart, by default) is injected where the Slack publishers are wired, so the
 * summary does not depend on how the PNG is drawn. `chartInputOf` gathers its input from the
 * watch store.
 */
import type { Episode } from '../monitor/episodes.js';
import type { WatchStore } from '../monitor/watch-store.js';
import { renderEpisodeChart } from './chart.js';
import type { IncidentSummary } from './summary.js';

export interface ChartSample {
  at: string;
  count: number;
  max: number;
  /** Cumulative counters, as polled. */
  drop: number;
  earlyDrop: number;
  insertFailed: number;
}

export interface ChartInput {
  gateway: string;
  samples: ChartSample[];
  warnPercent: number;
  critPercent: number;
  marks: { at: string; label: string }[];
  episode: Episode;
}

export interface RenderedChart {
  png: Uint8Array;
  /** States the numbers (peak, drops, thresholds) for people who cannot see the image. */
  altText: string;
}

export type ChartRenderer = (input: ChartInput) => Promise<RenderedChart>;

/** The renderer used where none is injected (the bot's summaries, `conntrack-ops incident --png`): chart.ts. */
export const defaultChartRenderer: ChartRenderer = (input) => renderEpisodeChart(input);

/** Samples kept around the episode: a little before it opened, up to its end (or now). */
const MARGIN_MS = 5 * 60_000;

export async function chartInputOf(
  watchStore: WatchStore,
  incident: IncidentSummary,
  episode: Episode,
  thresholds: { warnPercent: number; critPercent: number },
  now: Date = new Date(),
): Promise<ChartInput> {
  const from = Date.parse(episode.openedAt) - MARGIN_MS;
  const to = (episode.resolvedAt ? Date.parse(episode.resolvedAt) : now.getTime()) + MARGIN_MS;
  const samples = (await watchStore.samples(episode.gateway, from, to)).map((s) => ({
    at: s.at,
    count: s.count,
    max: s.max,
    drop: s.stats.drop,
    earlyDrop: s.stats.earlyDrop,
    insertFailed: s.stats.insertFailed,
  }));
  return { gateway: episode.gateway, samples, ...thresholds, marks: incident.marks, episode };
}
