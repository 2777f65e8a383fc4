/** The watch's job schedulers on a real Redis with a real BullMQ worker. */
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { QUEUES, type PollJob } from '../../src/queue/jobs.js';
import { spreadOffset, syncSchedulers } from '../../src/monitor/schedulers.js';
import { WatchList, type WatchEntry } from '../../src/monitor/watch-list.js';

function entry(gateway: string, intervalSeconds: number): WatchEntry {
  return { gateway, intervalSeconds, channel: null, by: 'test', since: new Date().toISOString() };
}

describe('watch schedulers (real Redis, real BullMQ)', () => {
  let redis: RedisHandle;
  beforeAll(async () => {
    redis = await openRedis(process.env.REDIS_URL);
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('one scheduler per watched gateway; unwatching removes exactly that one; polls arrive at the interval', async () => {
    const prefix = `sched${Date.now()}`;
    const conn = redis.connect();
    const queue = new Queue<PollJob>(QUEUES.poll, { connection: conn, prefix });
    const list = new WatchList(conn, prefix);
    await list.add(entry('gw-a', 1));
    await list.add(entry('gw-b', 1));
    expect(await syncSchedulers(queue, await list.all())).toEqual({ upserted: ['gw-a', 'gw-b'], removed: [] });
    // syncing again changes nothing (no duplicate schedulers)
    await syncSchedulers(queue, await list.all());
    expect((await queue.getJobSchedulers(0, -1)).map((s) => s.key).sort()).toEqual(['watch-gw-a', 'watch-gw-b']);

    const seen: Record<string, number> = {};
    const worker = new Worker<PollJob>(QUEUES.poll, async (job) => {
      seen[job.data.gateway] = (seen[job.data.gateway] ?? 0) + 1;
    }, { connection: redis.connect(), prefix, concurrency: 4 });
    await new Promise((r) => setTimeout(r, 3_500));
    expect(seen['gw-a']).toBeGreaterThanOrEqual(2);
    expect(seen['gw-a']).toBeLessThanOrEqual(5);
    expect(seen['gw-b']).toBeGreaterThanOrEqual(2);

    expect(await list.remove('gw-b')).toBe(true);
    expect(await syncSchedulers(queue, await list.all())).toEqual({ upserted: ['gw-a'], removed: ['gw-b'] });
    const before = seen['gw-b'] ?? 0;
    await new Promise((r) => setTimeout(r, 2_500));
    expect(seen['gw-b']).toBe(before);
    expect(seen['gw-a']).toBeGreaterThan(2);
    await worker.close();
    await queue.close();
    conn.disconnect();
  }, 30_000);
});

describe('spreadOffset', () => {
  it('spreads 1,000 gateways over a 30 s interval instead of one burst', () => {
    const offsets = Array.from({ length: 1000 }, (_, i) => spreadOffset(`gw-${i}`, 30_000));
    expect(offsets.every((o) => o >= 0 && o < 30_000)).toBe(true);
    // every 3 s slice of the interval gets some of them (no slice more than twice its share)
    const slices = Array.from({ length: 10 }, (_, k) => offsets.filter((o) => Math.floor(o / 3000) === k).length);
    expect(Math.min(...slices)).toBeGreaterThan(50);
    expect(Math.max(...slices)).toBeLessThan(200);
    expect(spreadOffset('gw-3', 30_000)).toBe(spreadOffset('gw-3', 30_000));
  });
});
