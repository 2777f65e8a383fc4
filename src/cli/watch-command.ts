/**
 * `conntrack-ops watch [<gateway>...]`: the watch in a terminal, no Slack needed. The same
 * engine as the bot (job schedulers, the poll processor on warm sessions, the episode state
 * machine in Redis), with a terminal EpisodePublisher that prints one line per event.
 *
 *  - REDIS_URL unset: an embedded redis-server and an in-process worker (polls and the
 *    automatic check at critical, whose findings are printed as one line; never applied).
 *  - REDIS_URL set: the bot's workers poll (and post to Slack as always); this process runs
 *    no worker and follows the gateways' event streams in that Redis, printing every event
 *    of the bot's polls from the moment it started (src/cli/episode-follower.ts).
 *
 * On SIGINT/SIGTERM it unwatches the gateways it started watching (their job schedulers go),
 * leaves alone those that were watched before it started, and says so on stderr.
 */
import { hasSharedRedis } from '../infra/redis.js';
import type { Command } from 'commander';
import { loadEnv } from '../config/env.js';
import { findGateway, gatewayNameSchema, loadInventory, type Inventory } from '../config/inventory.js';
import { unwatchGateway, watchGateways, type WatchControlDeps } from '../monitor/watch-control.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { silentApplyPublisher } from '../worker/ports.js';
import { startWorkers, type RunningWorkers } from '../worker/start.js';
import { followEpisodeEvents, type Follower } from './episode-follower.js';
import { EpisodeLines } from './episode-lines.js';
import { CliError } from './errors.js';
import { parseInterval } from './interval.js';

export interface WatchCliOptions {
  inventory: string;
  interval?: string;
  json?: boolean;
}

export const WATCH_HELP_AFTER = `
Prints one line per episode event: opened, escalated, reopened, reminder, resolved,
poll-failed, poll-recovered (--json: one JSON object per line with event, gateway, at,
level, kind, episodeId, percent, count, max, drops {drop, earlyDrop, insertFailed}).
At critical the engine runs the full check by itself: its findings are printed as one
"check" line (or "check-failed"); nothing is ever applied from here.

Without REDIS_URL everything runs in this process (embedded redis-server) and is gone
when it stops. With REDIS_URL the bot's workers run the polls (and post to Slack as
always) and this process prints every event of them, following that Redis; it needs
the bot's workers to be running (a warning says so when no poll arrives). On exit it
unwatches only what it started watching, and leaves every gateway's episode state and
samples (7 days) in that Redis.`;

/** Which gateways: the named ones (validated, in the inventory), or all of the inventory. */
function selectGateways(inventory: Inventory, names: readonly string[]): string[] {
  const selected = names.length ? names : Object.keys(inventory.gateways).sort();
  if (!selected.length) throw new CliError('the inventory has no gateways to watch', 2);
  for (const raw of selected) {
    const name = gatewayNameSchema.safeParse(raw);
    if (!name.success) throw new CliError(`invalid gateway name "${raw}": ${name.error.issues[0]?.message ?? ''}`, 2);
    findGateway(inventory, name.data);
  }
  return [...new Set(selected)];
}

/** Resolves on the first SIGINT/SIGTERM; a second one exits at once. */
function untilInterrupted(log: (line: string) => void): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const first = (sig: NodeJS.Signals) => {
      process.removeListener('SIGINT', first);
      process.removeListener('SIGTERM', first);
      log(`${sig}: stopping (again to quit at once)`);
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(sig);
    };
    process.on('SIGINT', first);
    process.on('SIGTERM', first);
  });
}

async function stopWatching(rt: Runtime, deps: WatchControlDeps, started: readonly string[], kept: readonly string[], shared: boolean, log: (line: string) => void): Promise<void> {
  for (const g of started) await unwatchGateway(deps, g);
  const left = (await rt.queues.poll.getJobSchedulers(0, -1)).map((s) => s.key);
  const parts = [`unwatched ${started.length ? started.join(', ') : 'nothing'}`];
  if (kept.length) parts.push(`left watching ${kept.join(', ')} (watched before this command)`);
  parts.push(`job schedulers left: ${left.length ? left.join(', ') : 'none'}`);
  if (shared) parts.push('episode state and samples stay in REDIS_URL');
  log(parts.join('; '));
}

export async function runWatch(gatewayArgs: readonly string[], opts: WatchCliOptions): Promise<void> {
  const interval = opts.interval === undefined ? undefined : parseInterval(opts.interval);
  if (interval && !interval.ok) throw new CliError(interval.error, 2);
  const inventory = await loadInventory(opts.inventory);
  const gateways = selectGateways(inventory, gatewayArgs);
  const log = (line: string) => process.stderr.write(`${line}\n`);

  const env = loadEnv({ ...process.env, INVENTORY: opts.inventory });
  const shared = hasSharedRedis(env);
  const rt = await openRuntime(env, { inventory });
  let workers: RunningWorkers | null = null;
  let follower: Follower | null = null;
  try {
    const lines = new EpisodeLines(process.stdout, opts.json ? 'json' : 'text', new Set(gateways));
    if (shared) {
      // The bot's workers poll and post to Slack; this process only follows what they find.
      follower = await followEpisodeEvents(rt.watchStore, gateways, (ev) => lines.event(ev), { onError: (err) => log(`following the events failed: ${err.message}`) });
    } else {
      // Nothing is applied from here: no apply worker.
      workers = startWorkers(rt, {
        concurrency: 2,
        publishers: { check: () => lines.checkPublisher, apply: () => silentApplyPublisher, episode: lines.episodePublisher },
        only: ['poll', 'check'],
      });
    }
    const deps: WatchControlDeps = { inventory: rt.inventory, watchList: rt.watchList, queues: rt.queues, defaultIntervalSeconds: env.WATCH_INTERVAL_SECONDS };
    const before = await Promise.all(gateways.map(async (g) => ({ g, entry: await rt.watchList.get(g) })));
    const kept = before.filter((b) => b.entry !== null).map((b) => b.g);
    const toStart = before.filter((b) => b.entry === null).map((b) => b.g);
    for (const b of before) if (b.entry) log(`${b.g} is already watched (every ${b.entry.intervalSeconds} s, by ${b.entry.by}): left as it is`);
    const interrupted = untilInterrupted(log);
    const { entries } = await watchGateways(deps, toStart, { intervalSeconds: interval?.seconds, channel: null, by: `cli:${process.env['USER'] ?? 'user'}` });
    const every = [...new Set(entries.map((e) => `${e.intervalSeconds} s`))].join('/') || 'their own intervals';
    log(`watching ${gateways.join(', ')} every ${every} (${shared ? "shared REDIS_URL: the bot's workers poll, this process prints their events" : 'embedded Redis'}); Ctrl-C to stop`);
    const silence = shared ? warnWhenNoPolls(rt, gateways, log) : null;
    await interrupted;
    silence?.stop();
    await stopWatching(rt, deps, toStart, kept, shared, log);
  } finally {
    await follower?.stop();
    await workers?.close();
    await rt.close();
  }
}

/** With a shared Redis nothing polls unless the bot's workers run: say so once, after a while without any poll. */
function warnWhenNoPolls(rt: Runtime, gateways: readonly string[], log: (line: string) => void): { stop(): void } {
  const since = Date.now();
  const timer = setInterval(() => {
    void (async () => {
      const states = await Promise.all(gateways.map((g) => rt.watchStore.state(g)));
      const polled = states.some((s) => s.lastSample && Date.parse(s.lastSample.at) >= since);
      if (!polled && Date.now() - since >= 120_000) {
        log(`no poll of ${gateways.join(', ')} in 2 min: are the bot's workers running on this REDIS_URL (npm run worker)?`);
        clearInterval(timer);
      } else if (polled) clearInterval(timer);
    })().catch(() => undefined);
  }, 10_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .description('watch gateways (all of the inventory when none is named) and print one line per episode event until Ctrl-C')
    .argument('[gateways...]', 'gateway names from the inventory (default: all)')
    .option('-i, --inventory <file>', 'inventory file (YAML)', process.env['INVENTORY'] ?? 'inventory.yml')
    .option('--interval <every>', "poll interval: 30s, 1m or 5 (seconds); default the inventory's watch.intervalSeconds, else WATCH_INTERVAL_SECONDS (30 s)")
    .option('--json', 'one JSON object per line')
    .addHelpText('after', WATCH_HELP_AFTER)
    .action(async (gatewayArgs: string[], opts: WatchCliOptions) => runWatch(gatewayArgs, opts));
}
