/** The watch's Redis memory, on a real redis-server: two workers agree, samples stay bounded. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import type { PollOutcome } from '../../src/monitor/episodes.js';
import { MAX_SAMPLES, WatchStore } from '../../src/monitor/watch-store.js';
import type { RedisConnection } from '../../src/infra/redis.js';

const MAX = 262_144;
const T0 = Date.parse('2026-12-04T10:00:00Z');

function sample(i: number, percent: number): PollOutcome {
  return {
    ok: true,
    sample: { gatewayAtMs: null, at: new Date(T0 + i * 30_000).toISOString(), count: Math.round((MAX * percent) / 100), max: MAX, stats: { drop: 0, earlyDrop: 0, insertFailed: 0 }, tableFullLines: 0 },
  };
}

describe('WatchStore (real Redis)', () => {
  let redis: RedisHandle;
  let a: RedisConnection;
  let b: RedisConnection;
  beforeAll(async () => {
    redis = await openRedis(process.env.REDIS_URL);
    a = redis.connect();
    b = redis.connect();
  });
  afterAll(async () => {
    a.disconnect();
    b.disconnect();
    await redis.stop();
  });

  it('two workers advancing the same polls concurrently open one episode, not two', async () => {
    const prefix = `t${Date.now()}a`;
    const w1 = new WatchStore(a, prefix);
    const w2 = new WatchStore(b, prefix);
    const events: string[] = [];
    for (let i = 0; i < 30; i++) {
      const outcome = sample(i, i < 3 ? 50 : 97);
      const [t1, t2] = await Promise.all([w1.advance('gw-3', outcome), w2.advance('gw-3', outcome)]);
      events.push(...t1.events.map((e) => e.event), ...t2.events.map((e) => e.event));
    }
    expect(events).toEqual(['opened']);
    const state = await w1.state('gw-3');
    expect(state.episode?.status).toBe('open');
    expect(await w1.episodeEvents(state.episode!.id)).toHaveLength(1);
    expect(await w1.samples('gw-3')).toHaveLength(30);
    await w1.close();
    await w2.close();
  });

  it('a new store (a restarted bot) continues the same episode: no second "opened"', async () => {
    const prefix = `t${Date.now()}b`;
    const first = new WatchStore(a, prefix);
    await first.advance('gw-3', sample(0, 85));
    const t = await first.advance('gw-3', sample(1, 85));
    expect(t.events.map((e) => e.event)).toEqual(['opened']);
    await first.close();
    const restarted = new WatchStore(b, prefix);
    for (let i = 2; i < 10; i++) expect((await restarted.advance('gw-3', sample(i, 86))).events).toEqual([]);
    const resolvedAt = [];
    for (let i = 10; i < 13; i++) resolvedAt.push(...(await restarted.advance('gw-3', sample(i, 40))).events.map((e) => e.event));
    expect(resolvedAt).toEqual(['resolved']);
    const id = (await restarted.state('gw-3')).episode!.id;
    expect((await restarted.episodeEvents(id)).map((e) => e.event)).toEqual(['opened', 'resolved']);
    await restarted.close();
  });

  it('keeps at most MAX_SAMPLES samples and none older than 7 days', async () => {
    const prefix = `t${Date.now()}c`;
    const store = new WatchStore(a, prefix);
    // 8 days of samples at 1 per 5 minutes: the first day falls out by age
    const every = 5 * 60_000;
    const n = (8 * 24 * 3600_000) / every;
    for (let i = 0; i < n; i++) {
      await store.advance('gw-age', { ok: true, sample: { gatewayAtMs: null, at: new Date(T0 + i * every).toISOString(), count: 1000, max: MAX, stats: { drop: 0, earlyDrop: 0, insertFailed: 0 }, tableFullLines: 0 } });
    }
    const kept = await store.samples('gw-age');
    const lastMs = T0 + (n - 1) * every;
    expect(Date.parse(kept[0]!.at)).toBeGreaterThanOrEqual(lastMs - 7 * 24 * 3600_000);
    expect(kept.length).toBe(7 * 24 * 12 + 1);
    // 1 s polls: bounded by count
    const pipeline = a.pipeline();
    for (let i = 0; i < MAX_SAMPLES + 500; i++) pipeline.zadd(`${prefix}:samples:gw-fast`, T0 + i * 1000, JSON.stringify({ gatewayAtMs: null, at: new Date(T0 + i * 1000).toISOString(), count: 1, max: MAX, stats: { drop: 0, earlyDrop: 0, insertFailed: 0 }, tableFullLines: 0 }));
    await pipeline.exec();
    await store.advance('gw-fast', { ok: true, sample: { gatewayAtMs: null, at: new Date(T0 + (MAX_SAMPLES + 500) * 1000).toISOString(), count: 1, max: MAX, stats: { drop: 0, earlyDrop: 0, insertFailed: 0 }, tableFullLines: 0 } });
    expect(await a.zcard(`${prefix}:samples:gw-fast`)).toBe(MAX_SAMPLES);
    await store.close();
  }, 60_000);
});
