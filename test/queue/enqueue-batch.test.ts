/**
 * Check enqueues issued together go to Redis as one pipeline (BulkAdder), with the same
 * outcome as one by one: every job there with its data and options, each caller told only
 * once its own job exists, the same request twice is still one job. Real Redis.
 */
import type { RedisConnection } from '../../src/infra/redis.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisHandle } from '../../src/infra/redis.js';
import { enqueueCheck, openQueues, type Queues } from '../../src/queue/producer.js';

let handle: RedisHandle;
let redis: RedisConnection;
let queues: Queues;

beforeAll(async () => {
  handle = await openRedis(process.env['REDIS_URL']);
  redis = handle.connect();
  queues = openQueues(redis, `{cto-test-batch-${process.pid}}`);
}, 30_000);

afterAll(async () => {
  await queues?.check.obliterate({ force: true }).catch(() => undefined);
  await queues?.close();
  redis?.disconnect();
  await handle?.stop();
});

const origin = { kind: 'slack' as const, channel: 'C0TEST' };

describe('check enqueues in one turn', () => {
  it('150 at once: every job is in Redis with its data by the time its caller hears back', async () => {
    const seenByCaller: boolean[] = [];
    const ids = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        enqueueCheck(queues, { gateway: `gw-${i % 7}`, requestedBy: 'U1', requestId: `burst.${i}`, origin }).then(async (id) => {
          seenByCaller[i] = (await queues.check.getJob(id)) !== undefined;
          return id;
        }),
      ),
    );
    expect(new Set(ids).size).toBe(150);
    expect(seenByCaller.every(Boolean)).toBe(true);
    const job = await queues.check.getJob(ids[42] as string);
    expect(job?.data).toMatchObject({ gateway: 'gw-0', requestId: 'burst.42', origin });
    // the queue's default options (retries for the read-only check) still apply
    expect(job?.opts.attempts).toBe(3);
    expect(await queues.check.getWaitingCount()).toBeGreaterThanOrEqual(150);
  });

  it('the same request twice in one turn is one job; a delayed one in the same batch stays delayed', async () => {
    const payload = { gateway: 'gw-dup', requestedBy: 'U1', requestId: 'same.request', origin };
    const [a, b, later] = await Promise.all([
      enqueueCheck(queues, payload),
      enqueueCheck(queues, payload),
      enqueueCheck(queues, { ...payload, requestId: 'follow.up' }, { delayMs: 60_000, attempts: 1 }),
    ]);
    expect(a).toBe(b);
    const jobs = (await queues.check.getJobs(['waiting', 'delayed'])).filter((j) => j.data.gateway === 'gw-dup');
    expect(jobs).toHaveLength(2);
    expect(await (await queues.check.getJob(later))?.getState()).toBe('delayed');
    expect((await queues.check.getJob(later))?.opts.attempts).toBe(1);
  });
});
