/** The gateway history with real Redis (the embedded redis-server): decisions never drown in checks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisConnection, type RedisHandle } from '../../src/infra/redis.js';
import { HistoryStore, type HistoryRecord } from '../../src/store/history-store.js';

let handle: RedisHandle;
let redis: RedisConnection;

beforeAll(async () => {
  handle = await openRedis({ kind: 'embedded' });
  redis = handle.connect();
});
afterAll(async () => {
  redis?.disconnect();
  await handle?.stop();
});

const at = (s: number): string => new Date(Date.UTC(2026, 11, 5, 2, 0, s)).toISOString();
const check = (s: number, actor: string): HistoryRecord => ({ at: at(s), gateway: 'gw-h', event: 'check', actor, planId: `plan-${s}`, summary: 'ok: 1/262144 (0%), ' });

describe('HistoryStore.list', () => {
  it('gives checks only when asked for no decisions (a limit of 0 is not a Redis error)', async () => {
    const history = new HistoryStore(redis, '{hist-test}');
    await history.record(check(1, 'U0A'));
    await history.record({ ...check(2, 'U0B'), event: 'approved', summary: 'approved' });
    await history.record(check(3, 'U0C'));
    expect((await history.list('gw-h', 0, 10)).map((r) => r.actor)).toEqual(['U0C', 'U0A']);
    expect((await history.list('gw-h', 5, 0)).map((r) => r.actor)).toEqual(['U0B']);
    expect((await history.list('gw-h', 5, 5)).map((r) => r.actor)).toEqual(['U0C', 'U0B', 'U0A']);
  });
});
