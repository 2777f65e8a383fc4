/**
 * The terminal watch on a shared Redis: it runs no worker (the bot's workers poll, and post
 * to Slack as always); it follows each gateway's event stream in the watch store and prints
 * what the bot's polls found, in order, from the moment it started.
 */
import type { EpisodeEvent } from '../monitor/episodes.js';
import type { WatchStore } from '../monitor/watch-store.js';

export interface Follower {
  stop(): Promise<void>;
}

export async function followEpisodeEvents(
  store: WatchStore,
  gateways: readonly string[],
  onEvent: (ev: EpisodeEvent) => void,
  opts: { everyMs?: number; onError?: (err: Error) => void } = {},
): Promise<Follower> {
  const cursors = new Map<string, string>();
  for (const g of gateways) cursors.set(g, await store.eventsTail(g));
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    for (const g of gateways) {
      for (;;) {
        const { events, next } = await store.eventsAfter(g, cursors.get(g)!);
        cursors.set(g, next);
        for (const ev of events) onEvent(ev);
        if (events.length < 100) break;
      }
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick()
        .catch((err: unknown) => opts.onError?.(err as Error))
        .finally(schedule);
    }, opts.everyMs ?? 500);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      await tick().catch(() => undefined); // what arrived since the last tick
    },
  };
}
