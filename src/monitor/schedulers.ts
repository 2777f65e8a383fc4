/**
 * The one place that creates and removes the watch's BullMQ job schedulers (one per watched
 * gateway, `every` its interval). Upserting the same scheduler from several processes at
 * once has open BullMQ bugs, so only this module does it: at start-up of the listener (or the
 * terminal watch) and when `/conntrack watch` / `unwatch` change the list.
 */
import type { Queue } from 'bullmq';
import { pollSchedulerId, type PollJob } from '../queue/jobs.js';
import type { WatchEntry } from './watch-list.js';

const SCHEDULER_PREFIX = 'watch-';

export interface SchedulerSync {
  upserted: string[];
  removed: string[];
}

/** Makes the queue's schedulers exactly the watch list: one per entry, none for anything else. */
export async function syncSchedulers(queue: Queue<PollJob>, entries: readonly WatchEntry[]): Promise<SchedulerSync> {
  const wanted = new Map(entries.map((e) => [pollSchedulerId(e.gateway), e]));
  const upserted: string[] = [];
  for (const [id, entry] of wanted) {
    const every = entry.intervalSeconds * 1000;
    await queue.upsertJobScheduler(
      id,
      // BullMQ aligns `every` schedulers to multiples of the interval: without an offset all
      // gateways are polled in the same instant (1,000 polls in one burst every 30 s).
      { every, offset: spreadOffset(entry.gateway, every) },
      {
        name: 'poll',
        data: { gateway: entry.gateway },
        // A poll is only worth its moment: never retried, and not kept around.
        opts: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
      },
    );
    upserted.push(entry.gateway);
  }
  const removed: string[] = [];
  const existing = await queue.getJobSchedulers(0, -1);
  for (const s of existing) {
    const id = s.key;
    if (id.startsWith(SCHEDULER_PREFIX) && !wanted.has(id)) {
      await queue.removeJobScheduler(id);
      removed.push(id.slice(SCHEDULER_PREFIX.length));
    }
  }
  return { upserted, removed };
}

/** A stable place for a gateway within its interval (FNV-1a of its name), so polls spread evenly. */
export function spreadOffset(gateway: string, everyMs: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < gateway.length; i++) {
    h ^= gateway.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % everyMs;
}
