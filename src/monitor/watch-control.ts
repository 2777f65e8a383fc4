/**
 * Starting and stopping the watch of gateways, for every front end (Slack, terminal): the
 * watch list in Redis, then the job schedulers made to match it (src/monitor/schedulers.ts).
 */
import type { Inventory } from '../config/inventory.js';
import type { Queues } from '../queue/producer.js';
import { syncSchedulers, type SchedulerSync } from './schedulers.js';
import type { WatchEntry, WatchList } from './watch-list.js';

export interface WatchControlDeps {
  inventory: () => Inventory;
  watchList: WatchList;
  queues: Pick<Queues, 'poll'>;
  defaultIntervalSeconds: number;
}

/** An explicit interval wins, then the inventory's `watch.intervalSeconds`, then the default. */
export function intervalFor(deps: WatchControlDeps, gateway: string, explicit?: number): number {
  return explicit ?? deps.inventory().gateways[gateway]?.watch.intervalSeconds ?? deps.defaultIntervalSeconds;
}

export async function watchGateways(
  deps: WatchControlDeps,
  gateways: readonly string[],
  opts: { intervalSeconds?: number; channel: string | null; by: string },
): Promise<{ entries: WatchEntry[]; sync: SchedulerSync }> {
  const since = new Date().toISOString();
  const entries = gateways.map((gateway) => ({ gateway, intervalSeconds: intervalFor(deps, gateway, opts.intervalSeconds), channel: opts.channel, by: opts.by, since }));
  for (const e of entries) await deps.watchList.add(e);
  return { entries, sync: await syncSchedulers(deps.queues.poll, await deps.watchList.all()) };
}

export async function unwatchGateway(deps: WatchControlDeps, gateway: string): Promise<boolean> {
  const was = await deps.watchList.remove(gateway);
  await syncSchedulers(deps.queues.poll, await deps.watchList.all());
  return was;
}

/**
 * At start-up of the listener (the one place that creates schedulers): drop entries of
 * gateways that left the inventory, then make the schedulers match the list.
 */
export async function resumeWatching(deps: WatchControlDeps): Promise<SchedulerSync> {
  const inventory = deps.inventory();
  for (const e of await deps.watchList.all()) if (!Object.hasOwn(inventory.gateways, e.gateway)) await deps.watchList.remove(e.gateway);
  return syncSchedulers(deps.queues.poll, await deps.watchList.all());
}
