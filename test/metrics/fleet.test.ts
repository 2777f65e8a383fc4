/**
 * The fleet's series read from a real Redis at scrape time (src/metrics/fleet.ts): what a
 * failing poll, a gateway reboot (cumulative counters going down), a never-polled and an
 * unwatched gateway look like. The end-to-end scrape is metrics-endpoint.test.ts.
 */
import type { RedisConnection } from '../../src/infra/redis.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { fleetRegistry } from '../../src/metrics/fleet.js';
import type { PollOutcome } from '../../src/monitor/episodes.js';
import { WatchList } from '../../src/monitor/watch-list.js';
import { WatchStore } from '../../src/monitor/watch-store.js';
import { openQueues, type Queues } from '../../src/queue/producer.js';
import { parseExposition, promtoolCheckMetrics, seriesKey } from './scrape.js';

const MAX = 262_144;
const T0 = Date.parse('2026-12-04T10:00:00Z');

function ok(i: number, count: number, stats = { drop: 0, earlyDrop: 0, insertFailed: 0 }): PollOutcome {
  return { ok: true, sample: { gatewayAtMs: null, at: new Date(T0 + i * 30_000).toISOString(), count, max: MAX, stats, tableFullLines: 0 } };
}

let handle: RedisHandle;
let redis: RedisConnection;
let queues: Queues;
let store: WatchStore;
let list: WatchList;

beforeAll(async () => {
  handle = await openRedis(undefined);
  redis = handle.connect();
  queues = openQueues(redis, '{fleet-test}');
  store = new WatchStore(redis, '{fleet-test}');
  list = new WatchList(redis, '{fleet-test}');
});

afterAll(async () => {
  await store.close();
  await queues.close();
  redis.disconnect();
  await handle.stop();
});

async function scrapeFleet(): Promise<{ text: string; series: Map<string, number> }> {
  const text = await fleetRegistry({ watchList: list, watchStore: store, queues }).metrics();
  return { text, series: parseExposition(text) };
}

const watch = (gateway: string) => list.add({ gateway, intervalSeconds: 30, channel: null, by: 'test', since: new Date(T0).toISOString() });

describe('fleet series at scrape time', () => {
  it('a watched gateway: entries, limit, counters and the last poll; a failing poll keeps the last values and says 0', async () => {
    await watch('gw-1');
    await store.advance('gw-1', ok(0, 1000, { drop: 7, earlyDrop: 1, insertFailed: 5 }));
    let s = await scrapeFleet();
    const g = { gateway: 'gw-1' };
    expect(s.series.get(seriesKey('conntrack_ops_nf_conntrack_entries', g))).toBe(1000);
    expect(s.series.get(seriesKey('conntrack_ops_nf_conntrack_entries_limit', g))).toBe(MAX);
    expect(s.series.get(seriesKey('conntrack_ops_nf_conntrack_stat_drop', g))).toBe(7);
    expect(s.series.get(seriesKey('conntrack_ops_nf_conntrack_stat_early_drop', g))).toBe(1);
    expect(s.series.get(seriesKey('conntrack_ops_nf_conntrack_stat_insert_failed', g))).toBe(5);
    expect(s.series.get(seriesKey('conntrack_ops_last_poll_timestamp_seconds', g))).toBe(T0 / 1000);
    expect(s.series.get(seriesKey('conntrack_ops_last_poll_success', g))).toBe(1);

    const failedAt = new Date(T0 + 60_000).toISOString();
    await store.advance('gw-1', { ok: false, at: failedAt, error: 'connect ETIMEDOUT' });
    s = await scrapeFleet();
    expect(s.series.get(seriesKey('conntrack_ops_last_poll_success', g))).toBe(0);
    expect(s.series.get(seriesKey('conntrack_ops_last_poll_timestamp_seconds', g))).toBe(Date.parse(failedAt) / 1000);
    expect(s.series.get(seriesKey('conntrack_ops_nf_conntrack_entries', g))).toBe(1000);
  });

  it('a gateway reboot: the counters are exported as read, going down (gauges; rate() takes it for a reset)', async () => {
    await store.advance('gw-1', ok(3, 10, { drop: 0, earlyDrop: 0, insertFailed: 0 }));
    const s = await scrapeFleet();
    expect(s.series.get(seriesKey('conntrack_ops_nf_conntrack_stat_drop', { gateway: 'gw-1' }))).toBe(0);
    expect(s.series.get(seriesKey('conntrack_ops_last_poll_success', { gateway: 'gw-1' }))).toBe(1);
    expect(s.text).toContain('# TYPE conntrack_ops_nf_conntrack_stat_drop gauge');
  });

  it('an open episode is one series by level and kind; a watched gateway never polled has none; an unwatched one is not exported', async () => {
    await watch('gw-2');
    await store.advance('gw-1', ok(4, Math.round(MAX * 0.97)));
    await store.advance('gw-9', ok(0, 5)); // state in Redis, but not watched
    const s = await scrapeFleet();
    expect(s.series.get(seriesKey('conntrack_ops_open_episodes', { gateway: 'gw-1', level: 'critical', kind: 'utilisation' }))).toBe(1);
    expect([...s.series.keys()].filter((k) => k.includes('gw-2'))).toEqual([]);
    expect([...s.series.keys()].filter((k) => k.includes('gw-9'))).toEqual([]);
    for (const q of ['check', 'apply', 'poll']) expect(s.series.get(seriesKey('conntrack_ops_queue_jobs', { queue: q, state: 'waiting' }))).toBe(0);
    const lint = await promtoolCheckMetrics(s.text);
    expect(lint.out).toBe('');
    expect(lint.code).toBe(0);
  });
});
