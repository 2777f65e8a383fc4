/**
 * `conntrack-ops incident <gw>`: the gateway's open (or latest) incident from the bot's Redis,
 * the same data as the Slack summary: text, `--json`, `--markdown` for a postmortem, and
 * `--png FILE` for the chart. Reads only; needs REDIS_URL (the bot's Redis) to read anything.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ApplyRecordStore } from '../apply/store.js';
import { loadEnv } from '../config/env.js';
import { gatewayNameSchema, loadInventory } from '../config/inventory.js';
import { chartInputOf, defaultChartRenderer, type ChartRenderer } from '../incident/chart-port.js';
import { collectIncident } from '../incident/collect.js';
import { renderIncidentMarkdown, renderIncidentText } from '../incident/render-text.js';
import type { IncidentSummary } from '../incident/summary.js';
import { hasSharedRedis, openRedis, redisTarget } from '../infra/redis.js';
import { DEFAULT_EPISODE_RULES } from '../monitor/episodes.js';
import { WatchStore } from '../monitor/watch-store.js';
import { HistoryStore } from '../store/history-store.js';
import { PlanStore } from '../store/plan-store.js';
import { CliError } from './errors.js';

export interface IncidentCliOptions {
  inventory: string;
  json?: boolean;
  markdown?: boolean;
  png?: string;
}

/** The documented JSON shape (issue 13). */
export function toJsonIncident(i: IncidentSummary): Record<string, unknown> {
  return {
    status: i.status,
    severity: i.severity,
    gateway: i.gateway,
    episodeId: i.episodeId,
    kind: i.kind,
    detectedAt: i.detectedAt,
    mitigatedAt: i.mitigatedAt,
    resolvedAt: i.resolvedAt,
    peakPercent: i.peakPercent,
    nowPercent: i.nowPercent,
    max: i.max,
    drops: i.drops,
    refusedPacketsAtMost: i.refusedPacketsAtMost,
    rootCause: i.rootCause,
    actions: i.actions,
    leftToDo: i.leftToDo,
    timeline: i.timeline,
  };
}

/** Thresholds for the chart's lines: the inventory's, else the watch's defaults. */
async function thresholdsOf(inventoryPath: string, gateway: string): Promise<{ warnPercent: number; critPercent: number }> {
  const inventory = await loadInventory(inventoryPath).catch(() => null);
  const t = inventory?.gateways[gateway]?.thresholds;
  return t ? { warnPercent: t.warnPercent, critPercent: t.critPercent } : { warnPercent: DEFAULT_EPISODE_RULES.warnPercent, critPercent: DEFAULT_EPISODE_RULES.critPercent };
}

export async function runIncidentCommand(gatewayArg: string, opts: IncidentCliOptions, chart: ChartRenderer = defaultChartRenderer): Promise<void> {
  const name = gatewayNameSchema.safeParse(gatewayArg);
  if (!name.success) throw new CliError(`invalid gateway name "${gatewayArg}": ${name.error.issues[0]?.message ?? ''}`, 2);
  if (opts.json && opts.markdown) throw new CliError('choose one of --json and --markdown', 2);
  const env = loadEnv({ ...process.env, INVENTORY: opts.inventory });
  if (!hasSharedRedis(env)) {
    throw new CliError(
      'conntrack-ops incident reads what the bot recorded: set REDIS_URL to the Redis of the Slack listener and workers (e.g. REDIS_URL=redis://127.0.0.1:6379). Without it there is nothing to read.',
      2,
    );
  }
  const handle = await openRedis(redisTarget(env));
  const redis = handle.connect();
  const watchStore = new WatchStore(redis, env.QUEUE_PREFIX);
  try {
    const stores = { watchStore, history: new HistoryStore(redis, env.QUEUE_PREFIX), plans: new PlanStore(redis, env.QUEUE_PREFIX), applies: new ApplyRecordStore(redis, env.QUEUE_PREFIX) };
    const now = new Date();
    const incident = await collectIncident(stores, name.data, now);
    if (!incident) throw new CliError(`${name.data} has had no incident (episode) in this Redis: is it watched (\`/conntrack watch ${name.data}\`)?`, 1);
    if (opts.json) process.stdout.write(`${JSON.stringify(toJsonIncident(incident), null, 2)}\n`);
    else if (opts.markdown) process.stdout.write(renderIncidentMarkdown(incident, now));
    else process.stdout.write(`${renderIncidentText(incident, now)}\n`);
    if (opts.png) {
      const episode = (await watchStore.state(name.data)).episode;
      if (!episode) throw new CliError(`the episode of ${name.data} vanished while reading it`, 3);
      const input = await chartInputOf(watchStore, incident, episode, await thresholdsOf(opts.inventory, name.data), now);
      if (input.samples.length === 0) throw new CliError(`no chart: the watch has no samples of ${name.data} for this episode (it was opened by a check, not by polls)`, 1);
      const drawn = await chart(input);
      await writeFile(opts.png, drawn.png);
      process.stderr.write(`chart written to ${opts.png} (${drawn.png.byteLength.toLocaleString('en-US')} bytes): ${drawn.altText}\n`);
    }
  } finally {
    await watchStore.close();
    redis.disconnect();
    await handle.stop();
  }
}

export function registerIncidentCommand(program: Command): void {
  program
    .command('incident')
    .description("a gateway's open (or latest) incident as the bot recorded it: status, root cause, what was done, timeline (needs REDIS_URL)")
    .argument('<gateway>', 'gateway name')
    .option('-i, --inventory <file>', 'inventory file (YAML), for the chart\'s thresholds', process.env.INVENTORY ?? 'inventory.yml')
    .option('--json', 'print the incident as one JSON object')
    .option('--markdown', 'print the incident as Markdown, for a postmortem')
    .option('--png <file>', 'also write the chart of the episode to this PNG file')
    .action(async (gatewayArg: string, opts: IncidentCliOptions) => runIncidentCommand(gatewayArg, opts));
}
